//! Readiness follows each connection: `/readyz` turns 503, naming the bridge,
//! within seconds of its gateway, socket or IRC connection dropping, and 200
//! once a live session is back; a session that could not be resumed catches
//! up on what was said meanwhile.

use crate::support;
use std::time::{Duration, Instant};

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::FakeSlack;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::http::get;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, wait_outbound_idle};
use serde_json::Value;

const DCH: &str = "111111111111111111";
const SCH: &str = "C0001";

/// An outage that lasts until the test ends it.
const OUTAGE: Duration = Duration::from_secs(3600);

/// Wait until `/readyz` says `bridge` is `connected` (or not); returns the body
/// and how long it took.
async fn wait_bridge(addr: &str, bridge: &str, connected: bool) -> (Value, Duration) {
    let started = Instant::now();
    let deadline = support::Deadline::after(WAIT);
    loop {
        let r = get(addr, "/readyz").await;
        let body = r.json();
        let state = body["bridges"][bridge].as_str().unwrap_or("").to_string();
        if (state == "connected") == connected {
            assert_eq!(
                r.status == 200,
                connected
                    && body["bridges"]
                        .as_object()
                        .unwrap()
                        .values()
                        .all(|v| v == "connected"),
                "{body}"
            );
            return (body, started.elapsed());
        }
        deadline
            .step(|| format!("{bridge} connected={connected}; readyz says {body}"))
            .await;
    }
}

#[tokio::test]
async fn readiness_follows_each_connection_and_a_lost_session_catches_up() {
    let nats = NatsServer::start();
    let discord = <FakeDiscord as FakePlatform>::start().await;
    let slack = <FakeSlack as FakePlatform>::start().await;
    let twitch = <FakeTwitch as FakePlatform>::start().await;
    let http = format!("127.0.0.1:{}", free_port());
    let config = ConfigBuilder::new(&nats)
        .http(&http, "")
        .section("discord", &discord.section())
        .section("slack", &slack.section())
        .section("twitch", &twitch.section())
        .room(
            "lobby",
            &[
                &format!("discord:{DCH}"),
                &format!("slack:{SCH}"),
                "twitch:#alpha",
            ],
        )
        .build();
    let jb = Jetbridge::start(&config);
    jb.wait_ready(&http).await;
    let body = get(&http, "/readyz").await.json();
    assert!(body["silent_s"]["discord"].is_u64(), "{body}");
    // Something stored from each channel, so that catch-up has a place to start.
    discord.say(DCH, "Ann", "hello from discord").await;
    slack.say(SCH, "Zoe", "hello from slack").await;
    slack.wait_posts(SCH, 1, WAIT).await;
    discord.wait_posts(DCH, 1, WAIT).await;
    let js = js(&nats.url()).await;
    wait_outbound_idle(&js, "discord").await;

    // Discord's gateway goes away and refuses reconnects; its session ends.
    let identified = discord.identifies().await;
    // Down until the test has seen readiness follow: nothing here races the
    // machine's speed (how soon it follows is printed, not asserted).
    discord.gateway_down_for(OUTAGE).await;
    let (body, took) = wait_bridge(&http, "discord", false).await;
    eprintln!("discord: not ready {took:?} after its gateway went away: {body}");
    discord.message_while_away(DCH, "Ann", "said while the gateway was down");
    discord.gateway_up();
    wait_bridge(&http, "discord", true).await;
    assert!(discord.identifies().await > identified, "no new session");
    let posts = FakePlatform::wait_posts(&slack, SCH, 2, WAIT).await;
    assert!(
        posts[1].text.contains("said while the gateway was down"),
        "{posts:?}"
    );

    // Slack's socket closes and new ones are refused for a while.
    let opened = slack.opened();
    slack.sockets_down_for(OUTAGE).await;
    let (body, took) = wait_bridge(&http, "slack", false).await;
    eprintln!("slack: not ready {took:?} after its socket closed: {body}");
    slack.message_while_away(SCH, "U0002", "said while the socket was down");
    slack.sockets_up();
    wait_bridge(&http, "slack", true).await;
    assert!(slack.opened() > opened);
    let posts = FakePlatform::wait_posts(&discord, DCH, 2, WAIT).await;
    assert!(
        posts[1].text.contains("said while the socket was down"),
        "{posts:?}"
    );

    // Twitch's IRC server goes away for a while.
    twitch.down_for(OUTAGE).await;
    let (body, took) = wait_bridge(&http, "twitch", false).await;
    eprintln!("twitch: not ready {took:?} after its server went away: {body}");
    twitch.up();
    wait_bridge(&http, "twitch", true).await;
}
