//! Platforms failing: an outage of one platform loses nothing and holds up no
//! other, a storm of 429s is honoured without a busy loop, and a backlog behind
//! a slow channel is coalesced rather than left to grow.

use crate::support;
use std::time::{Duration, Instant};

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::{FakeDiscord, Req};
use crate::support::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT};
use serde_json::json;

const DCH: &str = "444444444444444444";

fn config(nats: &NatsServer, twitch: &FakeTwitch, discord: &FakeDiscord) -> String {
    ConfigBuilder::new(nats)
        .section("twitch", &twitch.section())
        .section(
            "discord",
            &format!("{}\ncoalesce_after = \"1h\"", discord.section()),
        )
        .room(
            "lobby",
            &[
                "{ bridge = \"twitch\", channel = \"#alpha\", direction = \"in\" }",
                "twitch:#beta",
                &format!("discord:{DCH}"),
            ],
        )
        .build()
}

#[tokio::test]
async fn a_platform_outage_loses_nothing_keeps_order_and_holds_up_no_one_else() {
    let nats = NatsServer::start();
    let twitch = FakeTwitch::start().await;
    let discord = FakeDiscord::start("dtoken").await;
    let jb = Jetbridge::start(&config(&nats, &twitch, &discord));
    twitch.wait_joined(&["#alpha", "#beta"], WAIT).await;
    jb.wait_log("discord ready", WAIT).await;

    // Down until the test says otherwise: what happens meanwhile does not
    // depend on how fast this machine is.
    discord.down_for(Duration::from_secs(3600), 503).await;
    let down = Instant::now();
    for i in 0..20 {
        twitch
            .privmsg("#alpha", "ronni", "Ronni", &format!("m{i:02}"))
            .await;
    }
    // Twitch is not held up by Discord's outage: all of it arrives while
    // Discord is still refusing.
    let got = twitch.wait_sent("#beta", 20, WAIT).await;
    assert_eq!(got.len(), 20);
    let refused = |r: &Req| r.body["_status"] == 503;
    discord
        .wait_for("a post refused", WAIT, |rs| rs.iter().any(refused))
        .await;
    let accepted = discord
        .posts(DCH)
        .await
        .iter()
        .filter(|r| !refused(r))
        .count();
    assert_eq!(accepted, 0, "discord accepted posts while down");
    discord.up().await;
    let outage = down.elapsed();

    let posts = discord.wait_posts(DCH, 20, Duration::from_secs(90)).await;
    let texts: Vec<&str> = posts
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    assert_eq!(texts, want, "{}", jb.logs());
    // Retries backed off: a few per second of outage at most, not a busy loop.
    let failed = discord
        .requests()
        .await
        .iter()
        .filter(|r| refused(r))
        .count();
    assert!(
        (failed as u64) < 3 * outage.as_secs() + 10,
        "{failed} failed attempts in {outage:?}"
    );
}

#[tokio::test]
async fn a_storm_of_429s_is_honoured_without_a_busy_loop() {
    let nats = NatsServer::start();
    let twitch = FakeTwitch::start().await;
    let discord = FakeDiscord::start("dtoken").await;
    let jb = Jetbridge::start(&config(&nats, &twitch, &discord));
    twitch.wait_joined(&["#alpha"], WAIT).await;
    jb.wait_log("discord ready", WAIT).await;
    discord
        .fail_next(
            15,
            429,
            json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false}),
        )
        .await;
    let start = Instant::now();
    for i in 0..5 {
        twitch
            .privmsg("#alpha", "ronni", "Ronni", &format!("s{i}"))
            .await;
    }
    let posts = discord.wait_posts(DCH, 5, Duration::from_secs(60)).await;
    let texts: Vec<&str> = posts
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["s0", "s1", "s2", "s3", "s4"]);
    // 15 refusals, each waited out for its 0.2 s: at least 3 s, and one attempt
    // per refusal (plus the 5 that succeeded), no more.
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let attempts = discord.posts(DCH).await.len();
    assert_eq!(attempts, 20, "attempts");
}

#[tokio::test]
async fn a_2000_message_burst_into_a_paced_slack_channel_is_coalesced_in_order() {
    let nats = NatsServer::start();
    let twitch = FakeTwitch::start().await;
    let slack = FakeSlack::start().await;
    let jb = Jetbridge::start(&format!(
        r##"
[nats]
url = "{nats}"
[http]
enabled = false
[twitch]
server = "{tw}"
tls = false
[slack]
app_token = "{APP_TOKEN}"
bot_token = "{BOT_TOKEN}"
api_url = "{api}"
# Slack's pace: about one message per second per channel.
rate_limit = true
[[rooms]]
name = "lobby"
channels = [{{ bridge = "twitch", channel = "#alpha", direction = "in" }}, "slack:C0001"]
"##,
        nats = nats.url(),
        tw = twitch.server(),
        api = slack.api_url()
    ));
    twitch.wait_joined(&["#alpha"], WAIT).await;
    slack.wait_connected(0, WAIT).await;
    let start = Instant::now();
    for i in 0..2000 {
        twitch
            .privmsg("#alpha", "ronni", "Ronni", &format!("line {i:04}"))
            .await;
    }
    let lines_of = |cs: &[support::fake_slack::Call]| -> Vec<String> {
        cs.iter()
            .filter(|c| c.method == "chat.postMessage" && c.status == 200)
            .flat_map(|c| {
                c.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .map(|l| l.rsplit(": ").next().unwrap_or(l).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let calls = slack
        .wait_for("2000 lines in Slack", Duration::from_secs(120), |cs| {
            lines_of(cs).len() >= 2000
        })
        .await;
    let elapsed = start.elapsed();
    let want: Vec<String> = (0..2000).map(|i| format!("line {i:04}")).collect();
    assert_eq!(lines_of(&calls), want, "{}", jb.logs());
    let posts: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.status == 200)
        .collect();
    for p in &posts {
        assert!(p.params["text"].as_str().unwrap().chars().count() <= 4000);
    }
    // One post a second: 2,000 separate posts would take over half an hour.
    assert!(posts.len() < 40, "{} posts", posts.len());
    eprintln!("2000 lines in {} posts, {elapsed:?}", posts.len());
}

#[tokio::test]
async fn deleting_one_member_of_a_coalesced_post_drops_just_its_line() {
    let nats = NatsServer::start();
    let twitch = FakeTwitch::start().await;
    let slack = FakeSlack::start().await;
    let _jb = Jetbridge::start(&format!(
        r##"
[nats]
url = "{nats}"
[http]
enabled = false
[twitch]
server = "{tw}"
tls = false
[slack]
app_token = "{APP_TOKEN}"
bot_token = "{BOT_TOKEN}"
api_url = "{api}"
rate_limit = true
coalesce_after = "500ms"
[[rooms]]
name = "lobby"
channels = [{{ bridge = "twitch", channel = "#alpha", direction = "in" }}, "slack:C0001"]
"##,
        nats = nats.url(),
        tw = twitch.server(),
        api = slack.api_url()
    ));
    twitch.wait_joined(&["#alpha"], WAIT).await;
    slack.wait_connected(0, WAIT).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            twitch
                .privmsg("#alpha", "ronni", "Ronni", &format!("c{i}"))
                .await,
        );
    }
    // The first goes alone; the backlog behind it (paced at 1/s) is coalesced.
    let posts = slack.wait_posts("C0001", 2, WAIT).await;
    let combined = posts[1]["text"].as_str().unwrap().to_string();
    assert_eq!(combined.lines().count(), 5, "{combined}");
    // A moderator deletes c3 on Twitch: only its line leaves the combined post.
    twitch.clearmsg("#alpha", "ronni", &ids[3], "c3").await;
    let calls = slack
        .wait_for("chat.update of the combined post", WAIT, |cs| {
            cs.iter().any(|c| c.method == "chat.update")
        })
        .await;
    let upd = calls.iter().find(|c| c.method == "chat.update").unwrap();
    let text = upd.params["text"].as_str().unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        !text.contains("c3") && text.contains("c2") && text.contains("c4"),
        "{text}"
    );
    // Deleting another member keeps the first deletion.
    twitch.clearmsg("#alpha", "ronni", &ids[5], "c5").await;
    let calls = slack
        .wait_for("second chat.update", WAIT, |cs| {
            cs.iter().filter(|c| c.method == "chat.update").count() >= 2
        })
        .await;
    let upd = calls
        .iter()
        .filter(|c| c.method == "chat.update")
        .nth(1)
        .unwrap();
    let text = upd.params["text"].as_str().unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(!text.contains("c3") && !text.contains("c5"), "{text}");
    assert!(
        !calls.iter().any(|c| c.method == "chat.delete"),
        "the combined post was deleted whole"
    );
}

#[tokio::test]
async fn a_burst_while_nats_stalls_waits_at_the_socket_and_loses_nothing() {
    const N: usize = 20_000;
    let nats = NatsServer::start();
    let twitch = FakeTwitch::start().await;
    let port = support::nats::free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = format!(
        r##"
[nats]
url = "{nats}"
queue_size = 100
[http]
listen = "{addr}"
[twitch]
server = "{tw}"
tls = false
[[rooms]]
name = "lobby"
channels = [{{ bridge = "twitch", channel = "#alpha", direction = "in" }}]
"##,
        nats = nats.url(),
        tw = twitch.server()
    );
    let jb = Jetbridge::start(&cfg);
    twitch.wait_joined(&["#alpha"], WAIT).await;
    jb.wait_ready(&addr).await;
    let before = peak_rss_mib(jb.pid());
    assert!(before > 0.0, "no VmHWM for jetbridge");
    // NATS stops answering but stays connected, so nothing may be dropped: the
    // bridge must wait, and a burst must wait in the socket, not in memory.
    nats.pause();
    for i in 0..N {
        twitch
            .privmsg("#alpha", "ronni", "Ronni", &format!("m{i:05}"))
            .await;
    }
    let paused = "jetbridge_inbound_read_paused_total{bridge=\"twitch\"}";
    let deadline = support::Deadline::after(WAIT);
    while !support::http::get(&addr, "/metrics")
        .await
        .body
        .contains(paused)
    {
        deadline
            .step(|| format!("reads never paused:\n{}", jb.logs()))
            .await;
    }
    nats.resume();
    let js = support::js(&nats.url()).await;
    let evs = support::wait_stored(&js, "chat.lobby.twitch.alpha", N).await;
    let texts: Vec<String> = evs.iter().map(|e| e.text.clone()).collect();
    let want: Vec<String> = (0..N).map(|i| format!("m{i:05}")).collect();
    assert_eq!(texts, want, "lost, repeated or reordered");
    // Held in memory, the burst's parsed messages alone would be ~70 MiB.
    let grew = peak_rss_mib(jb.pid()) - before;
    eprintln!("peak RSS grew by {grew:.1} MiB during a burst of {N}");
    assert!(
        grew < 32.0,
        "peak RSS grew by {grew:.1} MiB during the burst"
    );
}

/// The high-water mark of a process's resident memory, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    support::proc_status_kib(pid)("VmHWM:") as f64 / 1024.0
}

#[tokio::test]
async fn a_split_post_failing_at_part_two_resumes_there_without_repeating_part_one() {
    let nats = NatsServer::start();
    let discord = FakeDiscord::start("dtoken").await;
    let http = format!("127.0.0.1:{}", support::nats::free_port());
    let cfg = ConfigBuilder::new(&nats)
        .http(&http, "api-token")
        .section("discord", &discord.section())
        .room("lobby", &[&format!("discord:{DCH}")])
        .build();
    let jb = Jetbridge::start(&cfg);
    jb.wait_ready(&http).await;
    // 2,000 characters, then the second part with its marker.
    let text = format!("{}SECONDPART {}", "a ".repeat(1000), "b ".repeat(400));
    discord
        .fail_containing("SECONDPART", 500, Duration::from_secs(2))
        .await;
    let body = serde_json::json!({ "text": text, "author": "Ann" }).to_string();
    let r = support::http::request(
        &http,
        "POST",
        "/rooms/lobby/messages",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer api-token"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let posts = discord.wait_posts(DCH, 2, WAIT).await;
    let js = support::js(&nats.url()).await;
    support::wait_outbound_idle(&js, "discord").await;
    let attempts = discord.posts(DCH).await;
    let failed = attempts
        .iter()
        .filter(|r| r.body.get("_status").is_some())
        .count();
    assert!(failed >= 2, "the second part never failed: {attempts:#?}");
    let ok: Vec<String> = attempts
        .iter()
        .filter(|r| r.body.get("_status").is_none())
        .map(|r| r.body["content"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ok.len(), 2, "part one posted again: {ok:#?}");
    assert!(ok[0].starts_with("a a") && !ok[0].contains("SECONDPART"));
    assert!(ok[1].starts_with("SECONDPART"));
    assert_eq!(posts.len(), 2);
}
