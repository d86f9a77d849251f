//! The event contract: JSON round trip, deterministic ids, subjects that no
//! channel name can break, and the published JSON Schema.

use crate::support;
use jetbridge::event::{self, Author, ChatEvent, EventKind};

#[test]
fn round_trips_and_ignores_unknown_fields() {
    let mut ev = ChatEvent::message(
        "twitch",
        "#streamer",
        "b34ccfc7",
        Author {
            id: "1337".into(),
            name: "Ronni".into(),
            color: Some("#0000FF".into()),
            ..Default::default()
        },
        "hello **world**".into(),
    );
    ev.room = "lobby".into();
    let json = String::from_utf8(ev.to_json()).unwrap();
    let back: ChatEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, {
        let mut e = ev.clone();
        // Timestamps travel with millisecond precision.
        e.ts = back.ts;
        e
    });
    assert!(json.contains(r#""ts":""#) && json.contains("Z\""), "{json}");
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["future_field"] = serde_json::json!({"x": 1});
    let back: ChatEvent = serde_json::from_value(v).expect("unknown fields are ignored");
    assert_eq!(back.id, "twitch:streamer:b34ccfc7");
}

#[test]
fn a_kind_newer_than_this_build_reads_as_unknown_and_a_notice_round_trips() {
    let mut v: serde_json::Value = serde_json::from_slice(
        &ChatEvent::message("web", "api", "01J", Author::default(), "x".into()).to_json(),
    )
    .unwrap();
    v["kind"] = serde_json::json!("poll");
    v["poll"] = serde_json::json!({"question": "pizza?"});
    let ev: ChatEvent = serde_json::from_value(v).expect("a newer kind still reads");
    assert_eq!(ev.kind, EventKind::Unknown);

    let notice = ChatEvent::notice(
        "twitch",
        "#streamer",
        "n1",
        Author::default(),
        "thanks!".into(),
        event::Notice {
            kind: "resub".into(),
            system_text: "ann subscribed for 6 months!".into(),
            params: [("cumulative-months".to_string(), "6".to_string())].into(),
        },
    );
    let json: serde_json::Value = serde_json::from_slice(&notice.to_json()).unwrap();
    assert_eq!(json["kind"], "notice");
    assert_eq!(json["id"], "twitch:streamer:n1");
    assert_eq!(json["notice"]["type"], "resub");
    assert_eq!(json["notice"]["params"]["cumulative-months"], "6");
    let back: ChatEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back.notice, notice.notice);
}

#[test]
fn ids_are_deterministic() {
    assert_eq!(
        event::message_id("twitch", "#Streamer", "x"),
        "twitch:Streamer:x"
    );
    let original = event::message_id("discord", "123", "456");
    assert_eq!(
        event::edit_id(&original, "2026-11-23T10:00:00.123000+00:00"),
        "discord:123:456:edit:2026-11-23T10:00:00.123000+00:00"
    );
    assert_eq!(event::delete_id(&original), "discord:123:456:delete");
    let e = ChatEvent::edit(
        "slack",
        "C1",
        "1700000000.1234",
        "1700000001.0000",
        None,
        "new".into(),
    );
    assert_eq!(e.kind, EventKind::Edit);
    assert_eq!(e.target.as_deref(), Some("slack:C1:1700000000.1234"));
    assert_eq!(e.id, "slack:C1:1700000000.1234:edit:1700000001.0000");
    let w = ChatEvent::web("lobby", "ann", "hi".into());
    assert!(
        w.id.starts_with("web:api:") && w.id.len() == "web:api:".len() + 26,
        "{}",
        w.id
    );
    assert_eq!(w.subject(), "chat.lobby.web.api");
}

#[test]
fn hostile_channel_names_cannot_break_subjects() {
    for (channel, token) in [
        ("#streamer", "streamer"),
        ("a.b", "a_b"),
        ("*", "_"),
        (">", "_"),
        ("with space", "with_space"),
        ("ünïcödé", "_n_c_d_"),
        ("#", "_"),
        ("", "_"),
        ("..", "__"),
        ("chat.>", "chat__"),
        ("C0123-x_y", "C0123-x_y"),
    ] {
        assert_eq!(event::channel_token(channel), token, "{channel:?}");
        let subject = event::subject("lobby", "twitch", channel);
        assert_eq!(subject.split('.').count(), 4, "{subject}");
        assert!(!subject.contains('*') && !subject.contains('>') && !subject.contains(' '));
    }
}

#[test]
fn schema_describes_the_event() {
    let schema: serde_json::Value = serde_json::from_str(&event::json_schema()).unwrap();
    let props = schema["properties"].as_object().expect("properties");
    for k in [
        "v",
        "id",
        "kind",
        "room",
        "source",
        "author",
        "text",
        "ts",
        "reply_to",
        "target",
        "attachments",
    ] {
        assert!(props.contains_key(k), "schema lacks {k}");
    }
    // Every kind this build writes, and what a notice carries.
    let kinds = schema["$defs"]["EventKind"].to_string();
    for k in ["message", "edit", "delete", "notice", "moderation"] {
        assert!(kinds.contains(&format!("\"{k}\"")), "{k} not in {kinds}");
    }
    assert!(!kinds.contains("unknown"), "never written: {kinds}");
    assert!(props.contains_key("notice") && props.contains_key("moderation"));
    let notice = schema["$defs"]["Notice"]["properties"].as_object().unwrap();
    for k in ["type", "system_text", "params"] {
        assert!(notice.contains_key(k), "notice lacks {k}");
    }
    let (code, out, _) = support::run_cli(&["schema"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        schema
    );
}
