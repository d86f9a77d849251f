//! Sending through Twitch's API (`send = "api"`) against a fake Helix and
//! OAuth server with the documented shapes: each message is decided by
//! Twitch's answer (`is_sent`, `drop_reason`), an expired token is refreshed
//! once and the message goes out, a 429 is waited out until
//! `Ratelimit-Reset`, order holds throughout, and no token or secret reaches
//! the log. Reading stays on IRC (the fake IRC server).

use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::{FakeTwitch, room_id};
use crate::support::fake_twitch_api::{
    BOT_USER_ID, CLIENT_SECRET, FakeTwitchApi, Next, REFRESH_TOKEN,
};
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, http, js, stored, wait_outbound_idle};

#[tokio::test]
async fn twitchs_answer_decides_each_message_and_tokens_refresh_and_429s_wait() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let api = FakeTwitchApi::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let config = ConfigBuilder::new(&nats)
        .http(&listen, "")
        .section("twitch", &format!("{}\n{}", fake.section(), api.api_keys()))
        .room("lobby", &["twitch:#src", "twitch:#dst"])
        .build();
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let js = js(&nats.url()).await;

    // Accepted: sent as the token's user into the channel's chat.
    fake.privmsg("#src", "ann", "Ann", "m1").await;
    assert_eq!(api.wait_sent(1, WAIT).await, ["[twitch] Ann: m1"]);
    let first = &api.chat_calls()[0];
    assert_eq!(first.broadcaster_id, room_id("#dst"));
    assert_eq!(first.sender_id, BOT_USER_ID);
    assert_eq!(api.tokens_issued(), 1);

    // The token stopped working: refreshed once, and the message goes out.
    api.expire_tokens();
    fake.privmsg("#src", "ann", "Ann", "m2").await;
    api.wait_sent(2, WAIT).await;
    assert_eq!(api.tokens_issued(), 2, "refreshed once");
    let m2: Vec<String> = api
        .chat_calls()
        .into_iter()
        .filter(|c| c.message.ends_with("m2"))
        .map(|c| c.outcome)
        .collect();
    assert_eq!(m2, ["401", "sent"]);

    // Dropped by Twitch: said and counted, not sent again; the next one goes.
    api.answer_next(Next::Drop("msg_duplicate"));
    fake.privmsg("#src", "ann", "Ann", "m3").await;
    fake.privmsg("#src", "ann", "Ann", "m4").await;
    api.wait_sent(3, WAIT).await;

    // A 429: waited out until Twitch's reset, then in order.
    api.answer_next(Next::TooMany(1));
    fake.privmsg("#src", "ann", "Ann", "m5").await;
    fake.privmsg("#src", "ann", "Ann", "m6").await;
    let sent = api.wait_sent(5, WAIT).await;
    assert_eq!(
        sent,
        [
            "[twitch] Ann: m1",
            "[twitch] Ann: m2",
            "[twitch] Ann: m4",
            "[twitch] Ann: m5",
            "[twitch] Ann: m6"
        ]
    );
    let outcomes: Vec<(String, String)> = api
        .chat_calls()
        .into_iter()
        .skip_while(|c| !c.message.ends_with("m3"))
        .map(|c| (c.message.replace("[twitch] Ann: ", ""), c.outcome))
        .collect();
    let pairs: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|(m, o)| (m.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("m3", "msg_duplicate"),
            ("m4", "sent"),
            ("m5", "429"),
            ("m5", "sent"),
            ("m6", "sent")
        ]
    );
    wait_outbound_idle(&js, "twitch").await;
    let logs = jb.logs();
    assert!(logs.contains("msg_duplicate"), "{logs}");
    let metrics = http::get(&listen, "/metrics").await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("jetbridge_delivery_failures_total")
                && l.contains("reason=\"rejected\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, "fake-access-s3cr3t"] {
        assert!(!logs.contains(secret), "{secret} in the log");
    }
    assert_eq!(stored(&js, "chat.>").await.len(), 6);
}

#[tokio::test]
async fn a_copy_sent_through_the_api_answers_replies_and_is_deleted_with_its_original() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let api = FakeTwitchApi::start().await;
    let config = ConfigBuilder::new(&nats)
        .section("twitch", &format!("{}\n{}", fake.section(), api.api_keys()))
        .room("lobby", &["twitch:#src", "twitch:#dst"])
        .build();
    let _jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let id = fake.privmsg("#src", "ann", "Ann", "oops").await;
    api.wait_sent(1, WAIT).await;
    // A reply answers the copy, by the id Twitch gave it.
    fake.privmsg_with(
        "#src",
        "zoe",
        "Zoe",
        "00000000-0000-4000-8000-00000000beef",
        "what?",
        &format!("reply-parent-msg-id={id};reply-parent-user-login=ann;reply-parent-display-name=Ann;reply-parent-msg-body=oops;reply-parent-user-id=13"),
    )
    .await;
    api.wait_sent(2, WAIT).await;
    assert_eq!(
        api.chat_calls()[1].reply_parent.as_deref(),
        Some("abc-123-def-0")
    );
    fake.clearmsg("#src", "ann", &id, "oops").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.deleted().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delete reached helix"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(api.deleted(), ["abc-123-def-0"]);
}

#[test]
fn send_api_without_credentials_is_a_config_error_naming_the_key() {
    let toml = "[twitch]\nenabled = true\nlogin = \"bot\"\ntoken = \"oauth:x\"\nsend = \"api\"\nclient_id = \"id\"\n[[rooms]]\nname = \"a\"\nchannels = [\"twitch:#a\"]\n";
    let err = match jetbridge::platforms::from_toml_str(toml) {
        Ok(_) => panic!("accepted send = api without a secret"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("twitch.client_secret"), "{err}");
    let ok = format!(
        "[twitch]\nenabled = true\nlogin = \"bot\"\ntoken = \"oauth:x\"\nsend = \"api\"\nclient_id = \"id\"\nclient_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{REFRESH_TOKEN}\"\n[[rooms]]\nname = \"a\"\nchannels = [\"twitch:#a\"]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.toml");
    std::fs::write(&path, ok).unwrap();
    let (code, out, err) =
        crate::support::run_cli(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("user:write:chat"), "names the scope: {out}");
    assert!(
        !out.contains(CLIENT_SECRET) && !out.contains(REFRESH_TOKEN),
        "{out}"
    );
}
