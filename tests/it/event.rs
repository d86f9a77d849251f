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
    let (code, out, _) = support::run_cli(&["schema"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        schema
    );
}
