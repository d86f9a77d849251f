//! Several instances, crashes and NATS outages, through real processes: what
//! docs/events.md §5 promises about delivery, tested by killing things.

use crate::support;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::http::get;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, stored, wait_stored};
use jetbridge::router::RECORDING_DEPTH;

/// Twitch #alpha in, #beta out; `listen` turns HTTP on; `twitch` adds keys.
fn config(nats_url: &str, fake: &FakeTwitch, listen: Option<&str>, twitch: &str) -> String {
    let mut c = ConfigBuilder::with_url(nats_url)
        .nats("ack_wait = \"5s\"")
        // Keep every post separate: these tests count lines.
        .section(
            "twitch",
            &format!("{}\ncoalesce_after = \"1h\"\n{twitch}", fake.section()),
        )
        .room(
            "lobby",
            &[
                "{ bridge = \"twitch\", channel = \"#alpha\", direction = \"in\" }",
                "{ bridge = \"twitch\", channel = \"#beta\", direction = \"out\" }",
            ],
        );
    if let Some(listen) = listen {
        c = c.http(listen, "");
    }
    c.build()
}

/// Posts show who wrote them, so lines can be counted per author.
const NAMED: &str = "format = \"[{name}] {text}\"";

/// Texts posted to #beta, and how many of them were posts seen before.
async fn beta_lines(fake: &FakeTwitch) -> (Vec<String>, usize) {
    let sent = fake.sent("#beta").await;
    let mut seen = HashSet::new();
    let mut unique = Vec::new();
    let mut dups = 0;
    for l in sent {
        if seen.insert(l.clone()) {
            unique.push(l);
        } else {
            dups += 1;
        }
    }
    (unique, dups)
}

async fn wait_beta(fake: &FakeTwitch, n: usize, timeout: Duration) -> (Vec<String>, usize) {
    let deadline = support::Deadline::after(timeout);
    loop {
        let (unique, dups) = beta_lines(fake).await;
        if unique.len() >= n {
            return (unique, dups);
        }
        deadline
            .step(|| {
                let missing: Vec<usize> = (0..n)
                    .filter(|i| !unique.iter().any(|l| l.ends_with(&format!(" m{i:03}"))))
                    .collect();
                format!(
                    "only {} of {n} lines reached #beta (missing: {missing:?}; duplicates: {dups})",
                    unique.len()
                )
            })
            .await;
    }
}

fn expected(range: std::ops::Range<usize>, who: &str) -> Vec<String> {
    range.map(|i| format!("[{who}] m{i:03}")).collect()
}

#[tokio::test]
async fn two_instances_deliver_once_in_order_and_survive_losing_the_leader() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let cfg = config(&nats.url(), &fake, None, NAMED);
    let mut a = Jetbridge::start(&cfg);
    let mut b = Jetbridge::start(&cfg);
    let deadline = support::Deadline::after(WAIT);
    while fake.joined_connections("#alpha").await < 2 {
        deadline
            .step(|| "both instances must join".to_string())
            .await;
    }
    // One of them leads the deliveries.
    support::wait_until("a leader", WAIT, || {
        a.logs().contains("delivering for this bridge")
            || b.logs().contains("delivering for this bridge")
    })
    .await
    .unwrap();
    let a_leads = a.logs().contains("delivering for this bridge");

    for i in 0..100 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("m{i:03}"))
            .await;
    }
    wait_beta(&fake, 30, WAIT).await;
    // Kill the leader mid-burst; the standby takes over its deliveries.
    if a_leads {
        a.kill9().await
    } else {
        b.kill9().await
    }
    for i in 100..200 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("m{i:03}"))
            .await;
    }
    let (unique, dups) = wait_beta(&fake, 200, Duration::from_secs(60)).await;
    assert_eq!(unique, expected(0..200, "Ronni"), "lost or reordered");
    // Posts whose record was still being written when the leader died may come
    // twice (at most the recording depth); nothing else.
    assert!(dups <= RECORDING_DEPTH, "{dups} duplicate posts");
    eprintln!("duplicates after killing the leader: {dups}");
    // Both instances saw every Twitch message; each is stored once.
    let js = js(&nats.url()).await;
    let evs = wait_stored(&js, "chat.lobby.twitch.alpha", 200).await;
    assert_eq!(evs.len(), 200);
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_nothing_on_restart() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let cfg = config(&nats.url(), &fake, None, NAMED);
    let mut jb = Jetbridge::start(&cfg);
    fake.wait_joined(&["#beta"], WAIT).await;
    jb.wait_log("delivering for this bridge", WAIT).await;
    // 500 events stored (here straight from another producer of the stream).
    let js = js(&nats.url()).await;
    let mut acks = Vec::new();
    for i in 0..500 {
        let ev = jetbridge::event::ChatEvent::web("lobby", "Web", format!("m{i:03}"));
        acks.push(js.publish(ev.subject(), ev.to_json().into()).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    wait_beta(&fake, 50, WAIT).await;
    jb.kill9().await;
    let at_kill = beta_lines(&fake).await.0.len();
    jb.restart();
    let (unique, dups) = wait_beta(&fake, 500, Duration::from_secs(60)).await;
    assert_eq!(unique, expected(0..500, "Web"));
    assert!(dups <= RECORDING_DEPTH, "{dups} duplicates");
    eprintln!("killed after {at_kill} of 500 posts; duplicates after restart: {dups}");
}

#[tokio::test]
async fn nats_down_at_start_is_waited_for_and_readyz_says_why() {
    let mut nats = NatsServer::reserve();
    let fake = FakeTwitch::start().await;
    let port = free_port();
    let cfg = config(&nats.url(), &fake, Some(&format!("127.0.0.1:{port}")), "");
    let jb = Jetbridge::start(&cfg);
    let addr = format!("127.0.0.1:{port}");
    support::wait_until("http up", WAIT, || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    // Twitch is connected; NATS is not: not ready, and it says why.
    let deadline = support::Deadline::after(WAIT);
    let r = loop {
        let r = get(&addr, "/readyz").await;
        if r.json()["bridges"]["twitch"] == "connected" {
            break r;
        }
        deadline
            .step(|| format!("twitch never connected: {}", r.body))
            .await;
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["nats"].as_str().unwrap().starts_with("connecting"),
        "{}",
        r.body
    );
    // A message while NATS is away waits in the queue.
    fake.privmsg("#alpha", "ronni", "Ronni", "early").await;
    nats.restart();
    let deadline = support::Deadline::after(WAIT);
    while get(&addr, "/readyz").await.status != 200 {
        deadline
            .step(|| format!("never ready\n{}", jb.logs()))
            .await;
    }
    fake.privmsg("#alpha", "ronni", "Ronni", "later").await;
    let got = fake.wait_sent("#beta", 2, WAIT).await;
    assert_eq!(got, vec!["[twitch] Ronni: early", "[twitch] Ronni: later"]);
}

#[tokio::test]
async fn nats_down_30s_during_traffic_loses_nothing_and_keeps_order() {
    let mut nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let cfg = config(&nats.url(), &fake, None, NAMED);
    let jb = Jetbridge::start(&cfg);
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    jb.wait_log("delivering for this bridge", WAIT).await;
    for i in 0..10 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("m{i:03}"))
            .await;
    }
    wait_beta(&fake, 10, WAIT).await;
    nats.stop();
    jb.wait_log("nats disconnected", WAIT).await;
    // 30 s of traffic with NATS away.
    for i in 10..40 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("m{i:03}"))
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await; // traffic pacing, not synchronization
    }
    nats.restart();
    for i in 40..50 {
        fake.privmsg("#alpha", "ronni", "Ronni", &format!("m{i:03}"))
            .await;
    }
    let (unique, dups) = wait_beta(&fake, 50, Duration::from_secs(60)).await;
    assert_eq!(unique, expected(0..50, "Ronni"));
    assert_eq!(
        dups,
        0,
        "repeated posts in {:?}\n{}",
        fake.sent("#beta").await,
        jb.logs()
    );
    let js = js(&nats.url()).await;
    assert_eq!(stored(&js, "chat.lobby.>").await.len(), 50);
}

#[tokio::test]
async fn a_channel_watermark_counts_only_in_the_stream_and_room_it_was_written_for() {
    use jetbridge::bus::{Bus, MarkScope};
    let nats = NatsServer::start();
    let cfg = jetbridge::config::NatsConfig {
        url: nats.url(),
        ..Default::default()
    };
    let bus = Bus::connect(&cfg, jetbridge::status::Health::default(), false)
        .await
        .unwrap();
    bus.ensure_stream().await.unwrap();
    let ids = bus.id_map("twitch").await.unwrap();
    let scope = |stream: &str, room: &str| MarkScope {
        stream: stream.into(),
        room: room.into(),
    };
    let first = bus.stream_epoch().await.unwrap();
    ids.put_watermark("#beta", &scope(&first, "lobby"), 42)
        .await
        .unwrap();
    let mark = |channel: &'static str, scope: MarkScope| {
        let ids = ids.clone();
        async move { ids.watermark(channel, &scope).await.unwrap() }
    };
    assert_eq!(mark("#beta", scope(&first, "lobby")).await, Some(42));
    assert_eq!(mark("#alpha", scope(&first, "lobby")).await, None);
    // Moved to another room, the channel never handled that room's events.
    assert_eq!(mark("#beta", scope(&first, "stage")).await, None);
    // Deleted and created again, the stream numbers from 1: the old mark would
    // skip new events, so it must not count.
    js(&nats.url()).await.delete_stream("CHAT").await.unwrap();
    bus.ensure_stream().await.unwrap();
    let second = bus.stream_epoch().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(mark("#beta", scope(&second, "lobby")).await, None);
}

#[tokio::test]
async fn sigterm_while_nats_is_down_stops_within_the_drain_and_counts_what_was_not_stored() {
    let mut nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let mut jb = Jetbridge::start(&config(&nats.url(), &fake, None, ""));
    fake.wait_joined(&["#alpha"], WAIT).await;
    jb.wait_log("stream ready", WAIT).await;
    nats.stop();
    jb.wait_log("nats disconnected", WAIT).await;
    for i in 0..5 {
        fake.privmsg("#alpha", "ann", "Ann", &format!("queued {i}"))
            .await;
    }
    support::wait_until("five events queued", WAIT, || {
        jb.logs()
            .lines()
            .filter(|l| l.contains(" inbound ") && l.contains("twitch:alpha:"))
            .count()
            >= 5
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    let asked = Instant::now();
    let status = jb.terminate().await;
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}\n{}", jb.logs());
    // docs/events.md §5.1: a stop drains for at most 10 s, whatever NATS is doing.
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    let logs = jb.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("never acknowledged"))
        .unwrap_or_else(|| panic!("no word of what was lost:\n{logs}"));
    assert!(line.contains("lost") && line.contains('5'), "{line}");
}
