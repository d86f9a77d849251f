//! Twitch notices end to end: every USERNOTICE of the collected lines
//! (tests/fixtures/twitch/usernotice.txt, real captures and Twitch's reference
//! shapes) replayed into a channel through the fake IRC server is stored once
//! as a `notice` event; a room relays announcements by default and the types
//! it lists otherwise; a Shared Chat notice follows the Shared Chat rules.

use jetbridge::event::EventKind;

use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::{FakeTwitch, room_id};
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle, wait_stored};

const LINES: &str = include_str!("../fixtures/twitch/usernotice.txt");

/// The collected lines, each moved to `channel` with an id of its own (some
/// captures share one).
fn lines_in(channel: &str) -> Vec<String> {
    LINES
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            let (head, rest) = l.split_once(" USERNOTICE #").unwrap();
            let rest = rest.split_once(' ').map(|(_, r)| format!(" {r}"));
            let id = format!(";id=feed{i:04}-0000-4000-8000-000000000000;");
            let head = with_id(head, &id);
            format!("{head} USERNOTICE {channel}{}", rest.unwrap_or_default())
        })
        .collect()
}

/// `head` with its `id` tag replaced by `id` (given as `;id=…;`).
fn with_id(head: &str, id: &str) -> String {
    let start = head.find(";id=").expect("an id tag");
    let end = head[start + 1..].find(';').unwrap() + start + 1;
    format!("{}{id}{}", &head[..start], &head[end + 1..])
}

fn msg_id(line: &str) -> String {
    let tag = line.split(';').find(|t| t.starts_with("msg-id=")).unwrap();
    tag["msg-id=".len()..].to_string()
}

/// Replay every line into #src of room lobby (with #dst), then a plain
/// message as a marker; the texts #dst got up to that marker.
async fn relayed_with(room_keys: &str) -> (Vec<String>, Vec<jetbridge::event::ChatEvent>) {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let config = ConfigBuilder::new(&nats)
        .section("twitch", &fake.section())
        .room_with("lobby", &["twitch:#src", "twitch:#dst"], room_keys)
        .build();
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let js = js(&nats.url()).await;
    let lines = lines_in("#src");
    for line in &lines {
        fake.raw("#src", line.clone()).await;
    }
    fake.privmsg("#src", "ann", "Ann", "the end").await;
    let evs = wait_stored(&js, "chat.lobby.twitch.src", lines.len() + 1).await;
    let sent = fake.wait_for_line("#dst", "the end", WAIT).await;
    wait_outbound_idle(&js, "twitch").await;
    assert_eq!(
        stored(&js, "chat.>").await.len(),
        lines.len() + 1,
        "{}",
        jb.logs()
    );
    (sent, evs)
}

#[tokio::test]
async fn every_usernotice_is_stored_once_and_announcements_are_relayed_by_default() {
    let (sent, evs) = relayed_with("").await;
    let lines = lines_in("#src");
    let notices: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Notice).collect();
    assert_eq!(notices.len(), lines.len(), "one notice per line");
    for (line, ev) in lines.iter().zip(&notices) {
        let n = ev.notice.as_ref().unwrap();
        assert_eq!(n.kind, msg_id(line), "{line}");
        assert!(ev.author.is_some(), "{line}");
    }
    // The two with tags twitch-irc refuses are there with their words.
    let broken = notices
        .iter()
        .find(|e| e.author.as_ref().unwrap().name == "Broken")
        .expect("the line with a malformed emotes tag");
    assert_eq!(broken.text, "Kappa four months");
    let raid = notices
        .iter()
        .find(|e| e.author.as_ref().unwrap().id == "77777777")
        .expect("the raid without display-name");
    assert_eq!(raid.notice.as_ref().unwrap().params["viewerCount"], "12");
    // An announcement keeps its colour for the page.
    let blue = notices
        .iter()
        .find(|e| e.text.starts_with("Giveaway"))
        .unwrap();
    assert_eq!(blue.notice.as_ref().unwrap().params["color"], "BLUE");

    // Relayed: the announcements only (one of them sent in a partner
    // channel of a Shared Chat session), then the marker.
    assert_eq!(
        sent,
        vec![
            "[twitch] randers: 📣 Announcement: hello pajs pajaH Kappa Keepo",
            "[twitch] Streamer: 📣 Announcement: Giveaway at 8pm, stay tuned!",
            "[twitch] lahoooo: 📣 Announcement: hi this is an announcement from another channel",
            "[twitch] Ann: the end",
        ]
    );
}

#[tokio::test]
async fn a_room_relays_the_types_it_lists_and_none_when_the_list_is_empty() {
    let (sent, _) = relayed_with("notices = [\"raid\", \"sub\"]").await;
    assert_eq!(sent.len(), 5, "{sent:#?}");
    assert!(
        sent[0].starts_with(
            "[twitch] fallenseraphhh: ⭐ fallenseraphhh subscribed with Twitch Prime."
        ),
        "{sent:#?}"
    );
    assert!(
        sent[1].starts_with("[twitch] iamelisabete: 🚀 "),
        "{sent:#?}"
    );
    // A Shared Chat notice counts as what it was where it was sent (a sub).
    assert!(
        sent[2].starts_with("[twitch] Sharer: ⭐ Sharer subscribed at Tier 1."),
        "{sent:#?}"
    );
    assert!(
        sent[3].starts_with("[twitch] nodisplay: 🚀 12 raiders from NoDisplay have joined!"),
        "{sent:#?}"
    );
    assert_eq!(sent[4], "[twitch] Ann: the end");

    let (none, _) = relayed_with("notices = []").await;
    assert_eq!(none, vec!["[twitch] Ann: the end"]);
}

#[tokio::test]
async fn a_shared_chat_notice_is_stored_once_and_not_relayed_inside_the_session() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let config = ConfigBuilder::new(&nats)
        .section("twitch", &fake.section())
        .room("lobby", &["twitch:#alpha", "twitch:#beta", "twitch:#gamma"])
        .build();
    let _jb = Jetbridge::start(&config);
    fake.wait_joined(&["#alpha", "#beta", "#gamma"], WAIT).await;
    let js = js(&nats.url()).await;

    // An announcement in #alpha, which shares its chat with #beta: #beta gets
    // it as a sharedchatnotice naming #alpha.
    let original = "aaaaaaaa-1111-4000-8000-000000000001";
    let announce = |channel: &str, id: &str, extra: &str| {
        format!(
            "@badge-info=;badges=broadcaster/1;color=;display-name=Alpha;emotes=;flags=;id={id};login=alpha;mod=0;msg-id={};msg-param-color=GREEN;room-id={};subscriber=0;system-msg=;tmi-sent-ts=1726118378465;user-id={}{extra};user-type= :tmi.twitch.tv USERNOTICE {channel} :we share chat today",
            if extra.is_empty() {
                "announcement"
            } else {
                "sharedchatnotice"
            },
            room_id(channel),
            room_id("#alpha"),
        )
    };
    // The copy first: when the original is relayed, jetbridge knows the two
    // channels share chat (as it would from any earlier copy).
    let shared = format!(
        ";source-id={original};source-msg-id=announcement;source-room-id={};source-badges=broadcaster/1;source-badge-info=",
        room_id("#alpha")
    );
    fake.raw(
        "#beta",
        announce("#beta", "bbbbbbbb-1111-4000-8000-000000000002", &shared),
    )
    .await;
    fake.raw("#alpha", announce("#alpha", original, "")).await;
    fake.privmsg("#alpha", "ann", "Ann", "marker").await;

    let gamma = fake.wait_for_line("#gamma", "marker", WAIT).await;
    assert_eq!(
        gamma,
        vec![
            "[twitch] Alpha: 📣 Announcement: we share chat today",
            "[twitch] Ann: marker"
        ]
    );
    wait_outbound_idle(&js, "twitch").await;
    let notices: Vec<_> = stored(&js, "chat.>")
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Notice)
        .collect();
    assert_eq!(notices.len(), 1, "stored once: {notices:#?}");
    assert_eq!(notices[0].id, format!("twitch:alpha:{original}"));
    // #alpha and #beta are in one session: their viewers saw it already.
    assert!(
        fake.sent("#beta").await.is_empty(),
        "{:?}",
        fake.sent("#beta").await
    );
}

#[tokio::test]
async fn a_kind_this_build_does_not_know_is_passed_by_and_chat_goes_on() {
    let (nats, fake, config) = crate::support::twitch_src_dst().await;
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let js = js(&nats.url()).await;
    fake.privmsg("#src", "ann", "Ann", "before").await;
    fake.wait_for_line("#dst", "before", WAIT).await;
    // What a later version might write: a kind and a field this one lacks.
    let mut ev = jetbridge::event::ChatEvent::web("lobby", "someone", "a poll".into());
    ev.room = "lobby".into();
    let mut v: serde_json::Value = serde_json::from_slice(&ev.to_json()).unwrap();
    v["kind"] = serde_json::json!("poll");
    v["poll"] = serde_json::json!({"question": "pizza?"});
    js.publish(ev.subject(), serde_json::to_vec(&v).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    fake.privmsg("#src", "ann", "Ann", "after").await;
    let dst = fake.wait_for_line("#dst", "after", WAIT).await;
    assert_eq!(dst, ["[twitch] Ann: before", "[twitch] Ann: after"]);
    wait_outbound_idle(&js, "twitch").await;
    assert!(!jb.logs().contains("not a chat event"), "{}", jb.logs());
}
