//! Nothing lost while jetbridge itself is away: what is said on Discord and
//! Slack while it is stopped (or its session is lost) is read from their
//! history when it comes back, and relayed in order, once.

use crate::support;
use std::time::Duration;

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::{BOT_USER, FakeSlack};
use crate::support::http::get;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle};

const DCH: &str = "111111111111111111";
const DNEW: &str = "222222222222222222";
const SCH: &str = "C0001";

struct Setup {
    nats: NatsServer,
    discord: FakeDiscord,
    slack: FakeSlack,
    http: String,
    config: String,
}

async fn setup(discord_extra: &str) -> Setup {
    let nats = NatsServer::start();
    let discord = <FakeDiscord as FakePlatform>::start().await;
    let slack = <FakeSlack as FakePlatform>::start().await;
    let http = format!("127.0.0.1:{}", free_port());
    let config = ConfigBuilder::new(&nats)
        .http(&http, "")
        .section(
            "discord",
            &format!("{}\n{discord_extra}", discord.section()),
        )
        .section("slack", &slack.section())
        .room(
            "lobby",
            &[
                &format!("discord:{DCH}"),
                &format!("discord:{DNEW}"),
                &format!("slack:{SCH}"),
            ],
        )
        .build();
    Setup {
        nats,
        discord,
        slack,
        http,
        config,
    }
}

/// Texts of the accepted posts in a channel.
async fn texts<P: FakePlatform>(fake: &P, channel: &str) -> Vec<String> {
    fake.posts(channel)
        .await
        .into_iter()
        .map(|p| p.text)
        .collect()
}

/// Wait until `channel`'s posts end with `want`, in that order.
async fn wait_tail<P: FakePlatform>(fake: &P, channel: &str, want: &[&str]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = texts(fake, channel).await;
        let tail: Vec<&str> = got
            .iter()
            .rev()
            .take(want.len())
            .rev()
            .map(String::as_str)
            .collect();
        if tail.len() == want.len() && tail.iter().zip(want).all(|(g, w)| g.contains(w)) {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel}: waited for {want:?} at the end, have {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn backfilled(metrics: &str, bridge: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("jetbridge_backfilled_total")
                && l.contains(&format!("bridge=\"{bridge}\""))
                && l.contains("kind=\"message\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_restart_relays_what_was_said_meanwhile_in_order_and_once() {
    let s = setup("").await;
    let mut jb = Jetbridge::start(&s.config);
    jb.wait_ready(&s.http).await;
    // One message in each channel, so that each has a place on the stream.
    s.discord.say(DCH, "Ann", "before the stop").await;
    s.slack.say(SCH, "Zoe", "slack before the stop").await;
    s.slack.wait_posts(SCH, 1, WAIT).await;
    s.discord.wait_posts(DCH, 1, WAIT).await;
    let js = js(&s.nats.url()).await;
    wait_outbound_idle(&js, "discord").await;
    wait_outbound_idle(&js, "slack").await;
    assert!(jb.terminate().await.success());

    // While jetbridge is away: four on each side, and some in a channel that
    // never had anything stored (it is not backfilled).
    for i in 1..=4 {
        s.discord
            .message_while_away(DCH, "Ann", &format!("discord away {i}"));
        s.slack
            .message_while_away(SCH, "U0002", &format!("slack away {i}"));
    }
    s.discord
        .message_while_away(DNEW, "Ann", "in a new channel");

    jb.restart();
    jb.wait_ready(&s.http).await;
    let slack_got = wait_tail(
        &s.slack,
        SCH,
        &[
            "discord away 1",
            "discord away 2",
            "discord away 3",
            "discord away 4",
        ],
    )
    .await;
    let discord_got = wait_tail(
        &s.discord,
        DCH,
        &[
            "slack away 1",
            "slack away 2",
            "slack away 3",
            "slack away 4",
        ],
    )
    .await;
    wait_outbound_idle(&js, "discord").await;
    wait_outbound_idle(&js, "slack").await;
    let all = format!("{slack_got:?}{discord_got:?}");
    assert!(
        !all.contains("in a new channel"),
        "a new channel was backfilled: {all}"
    );
    // Relayed once: the message from before the stop, then the four.
    assert_eq!(slack_got.len(), 5, "{slack_got:?}");
    assert_eq!(
        texts(&s.discord, DNEW).await.len(),
        10,
        "the other discord channel"
    );
    let metrics = get(&s.http, "/metrics").await.body;
    assert_eq!(backfilled(&metrics, "discord"), 4.0, "{metrics}");
    assert_eq!(backfilled(&metrics, "slack"), 4.0, "{metrics}");

    // Another restart finds nothing new: nothing is relayed twice.
    assert!(jb.terminate().await.success());
    jb.restart();
    jb.wait_ready(&s.http).await;
    // Both bridges caught up at each of the three starts (Slack twice:
    // before its socket opens, then what was said since).
    support::wait_until("the third catch-up", WAIT, || {
        let logs = jb.logs();
        let finished = |bridge: &str| {
            logs.lines()
                .filter(|l| l.contains("catch-up finished") && l.contains(bridge))
                .count()
        };
        finished("discord") >= 3 && finished("slack") >= 6
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    let evs = stored(&js, "chat.>").await;
    assert_eq!(evs.len(), 10, "stored twice: {evs:#?}");
    wait_outbound_idle(&js, "slack").await;
    assert_eq!(texts(&s.slack, SCH).await.len(), 5);
}

#[tokio::test]
async fn backfill_max_keeps_the_newest_and_backfill_false_reads_nothing() {
    let s = setup("backfill_max = 2").await;
    let mut jb = Jetbridge::start(&s.config.replace("[slack]", "[slack]\nbackfill = false"));
    jb.wait_ready(&s.http).await;
    s.discord.say(DCH, "Ann", "seen").await;
    s.slack.say(SCH, "Zoe", "slack seen").await;
    s.slack.wait_posts(SCH, 1, WAIT).await;
    s.discord.wait_posts(DCH, 1, WAIT).await;
    assert!(jb.terminate().await.success());
    for i in 1..=4 {
        s.discord
            .message_while_away(DCH, "Ann", &format!("missed {i}"));
    }
    s.slack.message_while_away(SCH, "U0002", "slack missed");
    jb.restart();
    jb.wait_ready(&s.http).await;
    let got = wait_tail(&s.slack, SCH, &["missed 3", "missed 4"]).await;
    jb.wait_log("more was missed than backfill_max", WAIT).await;
    let js = js(&s.nats.url()).await;
    wait_outbound_idle(&js, "slack").await;
    wait_outbound_idle(&js, "discord").await;
    assert_eq!(got.len(), 3, "{got:?}");
    let discord_got = texts(&s.discord, DCH).await;
    assert!(
        !discord_got.iter().any(|t| t.contains("slack missed")),
        "slack has backfill = false: {discord_got:?}"
    );
}

/// A busy bridged Slack channel is mostly the bot's own copies: those do not
/// count toward `backfill_max`, which bounds what people said meanwhile.
#[tokio::test]
async fn the_bots_own_copies_do_not_count_toward_backfill_max() {
    // Three: two missed, and what was relayed before them (the re-check of
    // the last hour reads it), are all that counts.
    let s = setup("backfill_max = 3").await;
    let mut jb = Jetbridge::start(&s.config.replace("[slack]", "[slack]\nbackfill_max = 3"));
    jb.wait_ready(&s.http).await;
    s.slack.say(SCH, "Zoe", "slack seen").await;
    s.discord.say(DCH, "Ann", "discord seen").await;
    s.discord.wait_posts(DCH, 1, WAIT).await;
    s.slack.wait_posts(SCH, 1, WAIT).await;
    assert!(jb.terminate().await.success());
    s.slack.message_while_away(SCH, "U0002", "slack missed 1");
    s.slack.message_while_away(SCH, BOT_USER, "a copy");
    s.slack.message_while_away(SCH, "U0002", "slack missed 2");
    s.discord.message_while_away(DCH, "Ann", "discord missed 1");
    s.discord.copy_while_away(DCH, "Zoe", "a copy");
    s.discord.message_while_away(DCH, "Ann", "discord missed 2");
    for i in 1..=3 {
        s.slack
            .message_while_away(SCH, BOT_USER, &format!("copy {i}"));
        s.discord.copy_while_away(DCH, "Zoe", &format!("copy {i}"));
    }
    jb.restart();
    jb.wait_ready(&s.http).await;
    wait_tail(&s.discord, DCH, &["slack missed 1", "slack missed 2"]).await;
    wait_tail(&s.slack, SCH, &["discord missed 1", "discord missed 2"]).await;
    let js = js(&s.nats.url()).await;
    wait_outbound_idle(&js, "discord").await;
    wait_outbound_idle(&js, "slack").await;
    let got = texts(&s.discord, DCH).await;
    assert_eq!(got.len(), 3, "the copies are not chat: {got:?}");
    let got = texts(&s.slack, SCH).await;
    assert_eq!(got.len(), 3, "the copies are not chat: {got:?}");
    assert!(
        !jb.logs().contains("more was missed than backfill_max"),
        "two said, two caught up: nothing left out"
    );
    // Each delivery counted once (the channel's meters are named once and
    // kept): the two Discord messages reached Slack, and nothing else did.
    let metrics = get(&s.http, "/metrics").await.body;
    let sample = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("bridge=\"slack\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(
        sample("jetbridge_messages_out_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample("jetbridge_relay_latency_seconds_count"),
        Some(2.0),
        "{metrics}"
    );
}
