//! What is particular to Twitch, end to end (the shared cases are in
//! conformance.rs): contract fields of a PRIVMSG, splitting at 500, NATS outages,
//! directions and rules, refused logins. Fake Twitch IRC ↔ jetbridge ↔ real
//! nats-server -js.

use crate::support;
use std::time::Duration;

use crate::support::config::ConfigBuilder;
use crate::support::fake_emotes::{self, FakeEmotes, Mode};
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, run_cli, stored, wait_outbound_idle, wait_stored};

/// A config with one logged-in Twitch account on `fake` and `extra` appended.
fn config(nats: &NatsServer, fake: &FakeTwitch, extra: &str) -> String {
    // Acks lost in a NATS crash come back quickly; the id map keeps them from
    // being posted twice.
    ConfigBuilder::new(nats)
        .nats("ack_wait = \"3s\"")
        .section("twitch", &fake.section())
        .raw(extra)
        .build()
}

const TWO_CHANNELS: &str = r##"
[[rooms]]
name = "lobby"
channels = ["twitch:#alpha", "twitch:#Beta"]
"##;

#[tokio::test]
async fn two_channels_relay_both_ways_with_names_and_contract_fields() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let jb = Jetbridge::start(&config(&nats, &fake, TWO_CHANNELS));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    let js = js(&nats.url()).await;

    fake.privmsg_with(
            "#alpha",
            "ronni",
            "Ronni",
            "b34ccfc7-4977-403a-8a94-33c6bac34fb8",
            "hello **world**",
            "reply-parent-msg-id=11111111-2222-3333-4444-555555555555;reply-parent-display-name=Ann;reply-parent-user-login=ann;reply-parent-user-id=7;reply-parent-msg-body=hi",
        )
        .await;
    let got = fake.wait_sent("#beta", 1, WAIT).await;
    assert_eq!(got, vec!["[twitch] Ronni: hello **world**"]);

    // The stored event carries every contract field.
    let evs = wait_stored(&js, "chat.lobby.twitch.alpha", 1).await;
    let ev = &evs[0];
    assert_eq!(ev.v, 1);
    assert_eq!(ev.id, "twitch:alpha:b34ccfc7-4977-403a-8a94-33c6bac34fb8");
    assert_eq!(ev.kind, jetbridge::event::EventKind::Message);
    assert_eq!(ev.room, "lobby");
    assert_eq!(ev.source.bridge, "twitch");
    assert_eq!(ev.source.channel, "#alpha");
    assert_eq!(ev.source.message_id, "b34ccfc7-4977-403a-8a94-33c6bac34fb8");
    let author = ev.author.as_ref().expect("author");
    assert_eq!(author.name, "Ronni");
    assert_eq!(author.color.as_deref(), Some("#0000FF"));
    assert!(!author.id.is_empty());
    assert!(!author.bot);
    // Twitch text is plain: markup characters are escaped in the common markup.
    assert_eq!(ev.text, r"hello \*\*world\*\*");
    assert_eq!(
        ev.reply_to.as_deref(),
        Some("twitch:alpha:11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(ev.target, None);
    assert!(ev.attachments.is_empty());
    // The raw JSON has exactly the documented keys.
    let raw = serde_json::to_value(ev).unwrap();
    let keys: Vec<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
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
        assert!(keys.contains(&k), "missing {k} in {raw}");
    }

    // And the other way, from the channel configured as "#Beta".
    fake.privmsg("#beta", "zoe", "Zoe", "hi alpha").await;
    let got = fake.wait_sent("#alpha", 1, WAIT).await;
    assert_eq!(got, vec!["[twitch] Zoe: hi alpha"]);

    // No loops: once everything is handled, each channel got exactly one post.
    wait_outbound_idle(&js, "twitch").await;
    assert_eq!(fake.sent("#alpha").await.len(), 1);
    assert_eq!(fake.sent("#beta").await.len(), 1);
    assert_eq!(stored(&js, "chat.>").await.len(), 2, "{}", jb.logs());
}

#[tokio::test]
async fn long_message_is_split_into_lines_of_at_most_500() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let jb = Jetbridge::start(&config(
        &nats,
        &fake,
        r##"
[[rooms]]
name = "lobby"
channels = ["twitch:#alpha"]
"##,
    ));
    fake.wait_joined(&["#alpha"], WAIT).await;
    let words: String = (0..240).map(|i| format!("w{i:03} ")).collect(); // 1,200 chars
    let text = words.trim_end();
    assert_eq!(text.chars().count(), 1199);
    let cfg = jb.config.to_str().unwrap().to_string();
    let (code, out, err) = run_cli(
        &["send", "lobby", text, "--as", "ann", "--config", &cfg],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");

    let got = fake.wait_sent("#alpha", 3, WAIT).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    for line in &got {
        assert!(
            line.chars().count() <= 500,
            "{} chars",
            line.chars().count()
        );
        assert!(line.starts_with("[web] ann: "), "{line}");
    }
    // Nothing lost, nothing cut inside a word.
    let rejoined: Vec<&str> = got
        .iter()
        .map(|l| l.trim_start_matches("[web] ann: "))
        .collect();
    assert_eq!(rejoined.join(" "), text);
}

#[tokio::test]
async fn nats_outage_loses_nothing_and_keeps_order() {
    let mut nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let jb = Jetbridge::start(&config(&nats, &fake, TWO_CHANNELS));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    let js_client = js(&nats.url()).await;
    fake.privmsg("#alpha", "ronni", "Ronni", "before 0").await;
    fake.wait_sent("#beta", 1, WAIT).await;

    nats.stop();
    jb.wait_log("nats disconnected", WAIT).await;
    for i in 1..=20 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("during {i}"))
            .await;
    }
    // Queued, not lost; the bridge keeps reading Twitch meanwhile.
    fake.privmsg("#alpha", "ronni", "Ronni", "during last")
        .await;
    nats.restart();
    for i in 1..=5 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("after {i}"))
            .await;
    }

    // The backlog may be coalesced into fewer posts (" | "-joined): compare lines.
    let lines_of = |posts: Vec<String>| -> Vec<String> {
        posts
            .iter()
            .flat_map(|p| p.split(" | ").map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let deadline = support::Deadline::after(Duration::from_secs(60));
    let got = loop {
        let got = lines_of(fake.sent("#beta").await);
        if got.len() >= 27 {
            break got;
        }
        deadline
            .step(|| format!("only {got:#?}\n{}", jb.logs()))
            .await;
    };
    let mut want = vec!["[twitch] Ronni: before 0".to_string()];
    want.extend((1..=20).map(|i| format!("[twitch] Ronni: during {i}")));
    want.push("[twitch] Ronni: during last".into());
    want.extend((1..=5).map(|i| format!("[twitch] Ronni: after {i}")));
    assert_eq!(got, want, "{}", jb.logs());
    drop(js_client);
    let js = js(&nats.url()).await;
    wait_outbound_idle(&js, "twitch").await;
    assert_eq!(lines_of(fake.sent("#beta").await).len(), 27);
}

#[tokio::test]
async fn a_bridge_with_a_bad_server_retries_while_others_work_and_disabled_never_connects() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    // Accepts and hangs up at once: a server that is there but broken.
    let flaky = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flaky_addr = flaky.local_addr().unwrap();
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = attempts.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = flaky.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    let never = FakeTwitch::start().await;
    let extra = format!(
        r##"
[bridges.broken]
platform = "twitch"
login = "otherbot"
token = "t"
server = "{flaky_addr}"
tls = false

[bridges.off]
platform = "twitch"
enabled = false
server = "{never}"
tls = false

[[rooms]]
name = "lobby"
channels = ["twitch:#alpha", "twitch:#beta", "broken:#gamma", "off:#delta"]
"##,
        never = never.server()
    );
    let jb = Jetbridge::start(&config(&nats, &fake, &extra));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    fake.privmsg("#alpha", "ronni", "Ronni", "still relaying")
        .await;
    assert_eq!(
        fake.wait_sent("#beta", 1, WAIT).await,
        vec!["[twitch] Ronni: still relaying"]
    );
    support::wait_until("3 connection attempts to the broken server", WAIT, || {
        attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    assert_eq!(never.accepted(), 0, "a disabled bridge connected");
    assert!(
        jb.logs()
            .contains("off:#delta belongs to bridge \"off\", which is disabled")
    );
}

#[tokio::test]
async fn a_refused_login_is_reported_clearly_and_secrets_stay_out_of_logs() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    fake.reject_logins(true);
    let jb = Jetbridge::start(&config(&nats, &fake, TWO_CHANNELS));
    jb.wait_log("bridge login refused", WAIT).await;
    let logs = jb.logs();
    assert!(logs.contains("check twitch.token"), "{logs}");
    assert!(!logs.contains("s3cr3t-token"), "secret in logs:\n{logs}");
    // After the operator fixes it (here: the server accepts again), it recovers.
    fake.reject_logins(false);
    fake.wait_joined(&["#alpha", "#beta"], Duration::from_secs(60))
        .await;
}

#[tokio::test]
async fn directions_and_rules_decide_what_is_relayed() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let jb = Jetbridge::start(&config(
        &nats,
        &fake,
        r##"
[[rooms]]
name = "lobby"
ignore_authors = ["NightBot"]
ignore_text = ["^!"]
channels = [
  "twitch:#alpha",
  { bridge = "twitch", channel = "#readonly", direction = "in" },
  { bridge = "twitch", channel = "#writeonly", direction = "out", ignore_authors = ["zoe"] },
]
"##,
    ));
    fake.wait_joined(&["#alpha", "#readonly", "#writeonly"], WAIT)
        .await;
    let js = js(&nats.url()).await;
    fake.privmsg("#alpha", "nightbot", "Nightbot", "ad").await;
    fake.privmsg("#alpha", "ronni", "Ronni", "!command").await;
    fake.privmsg("#writeonly", "ronni", "Ronni", "not read")
        .await;
    fake.privmsg("#readonly", "zoe", "Zoe", "from readonly")
        .await;
    fake.privmsg("#alpha", "ronni", "Ronni", "plain").await;

    // Ignored messages are stored all the same; "not read" is not.
    let evs = wait_stored(&js, "chat.lobby.>", 4).await;
    let texts: Vec<&str> = evs.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, vec!["ad", "!command", "from readonly", "plain"]);
    wait_outbound_idle(&js, "twitch").await;
    assert_eq!(
        fake.sent("#alpha").await,
        vec!["[twitch] Zoe: from readonly"]
    );
    assert_eq!(fake.sent("#readonly").await, Vec::<String>::new());
    // zoe is ignored for #writeonly only.
    assert_eq!(
        fake.sent("#writeonly").await,
        vec!["[twitch] Ronni: plain"],
        "{}",
        jb.logs()
    );
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let mut jb = Jetbridge::start(&config(&nats, &fake, TWO_CHANNELS));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    fake.privmsg("#alpha", "ronni", "Ronni", "last words").await;
    fake.wait_sent("#beta", 1, WAIT).await;
    let status = jb.terminate().await;
    assert!(status.success(), "exit {status:?}\n{}", jb.logs());
    let logs = jb.logs();
    assert!(logs.contains("stopped"));
    // Written to a pipe, not a terminal: no colour codes.
    assert!(!logs.contains('\u{1b}'), "escape codes in logs:\n{logs}");
}

#[tokio::test]
async fn shared_chat_is_stored_once_and_not_relayed_into_the_shared_channel() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let rooms = r##"
[[rooms]]
name = "lobby"
channels = ["twitch:#alpha", "twitch:#beta", "twitch:#gamma"]
"##;
    let _jb = Jetbridge::start(&config(&nats, &fake, rooms));
    fake.wait_joined(&["#alpha", "#beta", "#gamma"], WAIT).await;
    let js = js(&nats.url()).await;

    // #alpha and #beta share their chat: a message sent in #alpha arrives in
    // both, the copy in #beta naming where it was sent.
    let original = "aaaaaaaa-0000-4000-8000-000000000001";
    let shared = |source: &str, id: &str| {
        format!(
            "source-room-id={};source-id={id};source-badges=subscriber/12;source-badge-info=;source-only=0",
            support::fake_twitch::room_id(source)
        )
    };
    fake.privmsg_with(
        "#alpha",
        "ann",
        "Ann",
        original,
        "hello all",
        &shared("#alpha", original),
    )
    .await;
    fake.privmsg_with(
        "#beta",
        "ann",
        "Ann",
        "bbbbbbbb-0000-4000-8000-000000000002",
        "hello all",
        &shared("#alpha", original),
    )
    .await;
    // Sent in a channel of the session that jetbridge does not read: the copy
    // in #beta is the one stored, saying where it came from.
    let elsewhere = "cccccccc-0000-4000-8000-000000000003";
    fake.privmsg_with(
        "#beta",
        "zoe",
        "Zoe",
        "dddddddd-0000-4000-8000-000000000004",
        "from a partner channel",
        &format!(
            "source-room-id=999999;source-id={elsewhere};source-badges=;source-badge-info=;source-only=0"
        ),
    )
    .await;

    let gamma = fake.wait_sent("#gamma", 2, WAIT).await;
    assert_eq!(
        gamma,
        vec![
            "[twitch] Ann: hello all",
            "[twitch] Zoe: from a partner channel"
        ]
    );
    wait_outbound_idle(&js, "twitch").await;
    let evs = stored(&js, "chat.>").await;
    assert_eq!(evs.len(), 2, "stored twice: {evs:#?}");
    assert_eq!(evs[0].id, format!("twitch:alpha:{original}"));
    assert!(evs[0].shared_chat.is_none());
    let from = evs[1].shared_chat.as_ref().expect("where it came from");
    assert_eq!(
        (from.room_id.as_str(), from.message_id.as_str()),
        ("999999", elsewhere)
    );
    assert_eq!(evs[1].source.channel, "#beta");
    // #alpha and #beta are in the session: their viewers saw both already.
    assert!(
        fake.sent("#beta").await.is_empty(),
        "{:?}",
        fake.sent("#beta").await
    );
    assert!(
        fake.sent("#alpha").await.is_empty(),
        "{:?}",
        fake.sent("#alpha").await
    );
}

/// Twitch config with third-party emotes from `emotes` (all three providers).
fn emote_config(nats: &NatsServer, fake: &FakeTwitch, emotes: &FakeEmotes) -> String {
    ConfigBuilder::new(nats)
        .section(
            "twitch",
            &fake.section().replace("emotes = []", &emotes.emote_api()),
        )
        .raw(TWO_CHANNELS)
        .build()
}

/// Say `text` in `channel` until its stored event lists `n` emotes (the sets
/// arrive in the background); the last event.
async fn say_until_emotes(
    fake: &FakeTwitch,
    js: &async_nats::jetstream::Context,
    channel: &str,
    text: &str,
    n: usize,
) -> jetbridge::event::ChatEvent {
    let subject = format!("chat.lobby.twitch.{}", channel.trim_start_matches('#'));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let before = stored(js, &subject).await.len();
        fake.privmsg(channel, "probe", "Probe", text).await;
        let evs = wait_stored(js, &subject, before + 1).await;
        let last = evs.last().unwrap().clone();
        if last.emotes.len() >= n {
            return last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel}: emotes never arrived, have {:?}",
            last.emotes
        );
    }
}

#[tokio::test]
async fn bttv_ffz_and_7tv_emotes_name_words_and_leave_the_relayed_text_alone() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let emotes = FakeEmotes::start().await;
    let _jb = Jetbridge::start(&emote_config(&nats, &fake, &emotes));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    let js = js(&nats.url()).await;

    // Global sets and #alpha's (its room id from ROOMSTATE) are fetched.
    let room = fake_emotes::known_room();
    let paths = [
        "/bttv/3/cached/emotes/global".to_string(),
        format!("/bttv/3/cached/users/twitch/{room}"),
        "/ffz/v1/set/global".to_string(),
        format!("/ffz/v1/room/id/{room}"),
        "/7tv/v3/emote-sets/global".to_string(),
        format!("/7tv/v3/users/twitch/{room}"),
    ];
    support::wait_until("every emote set requested", WAIT, || {
        paths.iter().all(|p| emotes.requests(p) >= 1)
    })
    .await
    .unwrap();
    say_until_emotes(
        &fake,
        &js,
        "#alpha",
        "catJAM monkaS peepoHey OhMyGoodness",
        4,
    )
    .await;

    let text = "Kappa catJAM SoSnowy hi ffzHyper NotForEveryone monkaS RainTime pepeJAM ZreknarF peepoHey OhMyGoodness catJAM";
    fake.privmsg_with(
        "#alpha",
        "ronni",
        "Ronni",
        "e0000000-0000-4000-8000-000000000001",
        text,
        "emotes=25:0-4",
    )
    .await;
    // The relayed text is the text as said. (The probe may have been said,
    // and relayed, more than once: its line is not counted on.)
    let want = format!("[twitch] Ronni: {text}");
    let deadline = support::Deadline::after(WAIT);
    while !fake.sent("#beta").await.contains(&want) {
        let sent = fake.sent("#beta").await;
        deadline
            .step(|| format!("never relayed as said: {sent:?}"))
            .await;
    }
    let evs = wait_stored(&js, "chat.lobby.twitch.alpha", 2).await;
    let ev = evs.iter().find(|e| e.text == text).expect("stored");
    let got: Vec<(&str, &str, bool)> = ev
        .emotes
        .iter()
        .map(|e| (e.name.as_str(), e.url.as_str(), e.zero_width))
        .collect();
    assert_eq!(
        got,
        [
            (
                "Kappa",
                "https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0",
                false
            ),
            (
                "catJAM",
                "https://cdn.betterttv.net/emote/5f1b0186cf6d2144653d2971/1x",
                false
            ),
            (
                "SoSnowy",
                "https://cdn.betterttv.net/emote/5849c9a4f52be01a7ee5f79d/1x",
                true
            ),
            ("monkaS", "https://cdn.frankerfacez.com/emote/2/1", false),
            (
                "RainTime",
                "https://cdn.7tv.app/emote/01F6MZGCNG000255K4X1K0NNYW/1x.webp",
                true
            ),
            (
                "pepeJAM",
                "https://cdn.betterttv.net/emote/5b1740221c5a6065a7bad4b5/1x",
                false
            ),
            ("ZreknarF", "https://cdn.frankerfacez.com/emote/9/1", false),
            (
                "peepoHey",
                "https://cdn.7tv.app/emote/01GB2R1EKG0009X7PEW3EX8F4T/1x.webp",
                false
            ),
            (
                "OhMyGoodness",
                "https://cdn.betterttv.net/emote/54fa925e01e468494b85b54d/1x",
                false
            ),
        ]
    );

    // #beta's channel is unknown to every provider (404): only global ones.
    let ev = say_until_emotes(&fake, &js, "#beta", "catJAM OhMyGoodness", 1).await;
    let names: Vec<&str> = ev.emotes.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["OhMyGoodness"]);
    // Each set once: new messages and channels do not fetch again.
    for p in &paths {
        assert_eq!(emotes.requests(p), 1, "{p}");
    }
}

#[tokio::test]
async fn an_emote_provider_down_or_hanging_never_delays_chat() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let emotes = FakeEmotes::start().await;
    emotes.set("7tv", Mode::Hang);
    emotes.set("bttv", Mode::Fail);
    let jb = Jetbridge::start(&emote_config(&nats, &fake, &emotes));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    let js = js(&nats.url()).await;
    // 7TV holds the global request and both channels'.
    emotes.wait_hanging("7tv", 3, WAIT).await;

    fake.privmsg("#alpha", "ann", "Ann", "RainTime peepoHey hello")
        .await;
    let relayed = fake.wait_sent("#beta", 1, WAIT).await;
    assert_eq!(relayed, ["[twitch] Ann: RainTime peepoHey hello"]);
    // Stored and relayed while 7TV was still answering nothing.
    assert_eq!(emotes.hanging("7tv"), 3);
    let evs = wait_stored(&js, "chat.lobby.twitch.alpha", 1).await;
    assert!(evs[0].emotes.is_empty(), "{:?}", evs[0].emotes);
    jb.wait_log("cannot fetch emotes", WAIT).await;
    assert!(jb.logs().contains("bttv"), "{}", jb.logs());

    // Once 7TV answers, later messages have its emotes.
    emotes.set("7tv", Mode::Answer);
    let ev = say_until_emotes(&fake, &js, "#alpha", "RainTime peepoHey", 2).await;
    let names: Vec<&str> = ev.emotes.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["RainTime", "peepoHey"]);
}

#[tokio::test]
async fn a_line_with_a_malformed_or_missing_tag_is_stored_with_its_text_and_author() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let jb = Jetbridge::start(&config(&nats, &fake, TWO_CHANNELS));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    let js = js(&nats.url()).await;
    // As Twitch has sent them: twitch-irc refuses each as a PRIVMSG.
    let lines = [
        ("a1", "Kappa a malformed emotes tag", "emotes=25:04"),
        ("a2", "a badge without a version", "badges=subscriber24"),
        ("a3", "no display-name at all", "-display-name"),
    ];
    for (id, text, tags) in lines {
        fake.privmsg_with("#alpha", "ronni", "Ronni", id, text, tags)
            .await;
    }
    let evs = wait_stored(&js, "chat.lobby.twitch.alpha", 3).await;
    for ((id, text, _), ev) in lines.iter().zip(&evs) {
        assert_eq!(ev.source.message_id, *id);
        assert_eq!(ev.text, *text);
        assert!(
            ev.author
                .as_ref()
                .is_some_and(|a| a.name.eq_ignore_ascii_case("ronni")),
            "{ev:?}"
        );
    }
    let sent = fake.wait_sent("#beta", 3, WAIT).await;
    assert!(sent[2].contains("no display-name at all"), "{sent:?}");
    jb.wait_log("stored without them", WAIT).await;
    assert!(!jb.logs().contains("could not be read"), "{}", jb.logs());
}
