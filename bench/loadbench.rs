//! End-to-end load benchmark: fake platforms → the real `jetbridge` binary (as
//! its own process, so its memory is its own) → a real nats-server → fake
//! platforms, with the raw JetStream publish+consume throughput of the same
//! payloads measured in the same run for comparison.
//!
//!     cargo run --release -p jetbridge-bench --bin loadbench            # all scenarios
//!     cargo run --release -p jetbridge-bench --bin loadbench -- quick   # smaller counts
//!
//! Prints figures; asserts nothing. See BENCHMARKS.md for results.

#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code)] // the benchmark uses the fakes and the process, not the waits of tests
mod support;

mod binary;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use support::fake_discord::FakeDiscord;
use support::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};
use support::fake_twitch::FakeTwitch;
use support::nats::NatsServer;
use support::{Jetbridge, bin};

struct Run {
    name: String,
    sent: usize,
    delivered: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    reordered: usize,
    /// The run's high-water mark, and RSS once its last message arrived.
    peak_rss_kib: u64,
    rss_after_kib: u64,
    /// CPU time per delivered message: jetbridge, nats-server, this process (the
    /// fake platform and the measuring), in µs.
    cpu_us: [f64; 3],
}

/// utime + stime of a process, in seconds (clock ticks are 100 Hz on Linux).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

/// The processes whose CPU time a run reports.
#[derive(Clone, Copy)]
struct Pids {
    jetbridge: u32,
    nats: u32,
}

impl Pids {
    fn cpu(&self) -> [f64; 3] {
        [
            cpu_secs(self.jetbridge),
            cpu_secs(self.nats),
            cpu_secs(std::process::id()),
        ]
    }
}

/// RSS now and its high-water mark.
fn rss_kib(pid: u32) -> (u64, u64) {
    let field = support::proc_status_kib(pid);
    (field("VmRSS:"), field("VmHWM:"))
}

/// Anonymous (heap, stacks) and file-backed (the binary's pages) parts of RSS.
fn rss_split_kib(pid: u32) -> (u64, u64) {
    let field = support::proc_status_kib(pid);
    (field("RssAnon:"), field("RssFile:") + field("RssShmem:"))
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn table_header() {
    println!(
        "| scenario | delivered/sent | throughput | p50 | p99 | max | reordered | peak RSS | RSS after | CPU per message: jetbridge / nats-server / fakes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

fn report(r: &Run) {
    let mut l = r.latencies.clone();
    l.sort();
    let tput = r.delivered as f64 / r.elapsed.as_secs_f64();
    println!(
        "| {} | {}/{} | {:.0} msg/s | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.1} MiB | {:.1} MiB | {:.0} / {:.0} / {:.0} µs |",
        r.name,
        r.delivered,
        r.sent,
        tput,
        pct(&l, 0.50).as_secs_f64() * 1e3,
        pct(&l, 0.99).as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        r.reordered,
        r.peak_rss_kib as f64 / 1024.0,
        r.rss_after_kib as f64 / 1024.0,
        r.cpu_us[0],
        r.cpu_us[1],
        r.cpu_us[2],
    );
}

/// Raw JetStream with the same payloads: publish with windowed PubAcks while a
/// durable pull consumer consumes and acks; msg/s from first publish to last
/// message consumed.
async fn raw_jetstream(url: &str, n: usize, payload: &[u8]) -> f64 {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: "RAW".into(),
            subjects: vec!["raw.>".into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("raw stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("raw consumer");
    let mut msgs = consumer.messages().await.expect("messages");
    let consume = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            let m = msgs.next().await.expect("open").expect("message");
            m.ack().await.expect("ack");
            got += 1;
        }
        Instant::now()
    });
    let start = Instant::now();
    let mut window = std::collections::VecDeque::new();
    for i in 0..n {
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload.to_vec().into())
            .message_id(format!("raw-{i}"));
        window.push_back(
            js.send_publish("raw.bench", publish)
                .await
                .expect("publish"),
        );
        if window.len() >= 256 {
            window.pop_front().unwrap().await.expect("puback");
        }
    }
    for a in window {
        a.await.expect("puback");
    }
    let end = consume.await.expect("consumer");
    n as f64 / (end - start).as_secs_f64()
}

/// Send `n` messages at `rate` per second (None: as fast as possible), message
/// `i` into the source channel of `lanes[i % lanes.len()]`, and measure their
/// arrival in its destination channel (order is kept per destination).
async fn twitch_run(
    name: &str,
    fake: &FakeTwitch,
    pids: Pids,
    first: usize,
    n: usize,
    rate: Option<f64>,
    lanes: &[(String, String)],
) -> Run {
    let before = fake.privmsg_count().await;
    // Each run's own high-water mark: "5" resets it (proc(5), clear_refs).
    let _ = std::fs::write(format!("/proc/{}/clear_refs", pids.jetbridge), "5");
    let mut sent_at = Vec::with_capacity(n);
    let cpu_before = pids.cpu();
    let start = Instant::now();
    for i in 0..n {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            tokio::time::sleep_until(due.into()).await;
        }
        sent_at.push(Instant::now());
        fake.privmsg_with(
            &lanes[i % lanes.len()].0,
            "load",
            "Load",
            &format!("id-{}", first + i),
            &format!("m{}", first + i),
            "",
        )
        .await;
    }
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while fake.privmsg_count().await < before + n && Instant::now() < deadline {
        peak = peak.max(rss_kib(pids.jetbridge).0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_after = pids.cpu();
    let rss_after_kib = rss_kib(pids.jetbridge).0;
    let got: Vec<_> = fake
        .timed_privmsgs()
        .await
        .into_iter()
        .skip(before)
        .collect();
    let mut latencies = Vec::with_capacity(got.len());
    let mut reordered = 0;
    let mut last: std::collections::HashMap<&str, usize> = Default::default();
    let mut last_at = start;
    for (at, s) in &got {
        let Some(i) = s
            .text
            .rsplit('m')
            .next()
            .and_then(|x| x.parse::<usize>().ok())
        else {
            continue;
        };
        if i < first || i >= first + n || s.channel != lanes[i % lanes.len()].1 {
            continue;
        }
        if last.get(s.channel.as_str()).is_some_and(|l| i < *l) {
            reordered += 1;
        }
        last.insert(&s.channel, i);
        latencies.push(at.saturating_duration_since(sent_at[i - first]));
        last_at = *at;
    }
    let delivered = latencies.len().max(1) as f64;
    let cpu_us = [0, 1, 2].map(|i| (cpu_after[i] - cpu_before[i]) * 1e6 / delivered);
    Run {
        cpu_us,
        name: name.into(),
        sent: n,
        delivered: latencies.len(),
        elapsed: last_at - start,
        latencies,
        reordered,
        peak_rss_kib: peak.max(rss_kib(pids.jetbridge).1),
        rss_after_kib,
    }
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let max_n = if quick { 5_000 } else { 20_000 };
    // `cargo run -p jetbridge-bench` builds the library, not the binary: make
    // sure the binary measured is the source's (linking only: the library and
    // its dependencies are the same build).
    binary::build_release();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "machine: {cores} cores, {:.1} GiB; binary {}",
        mem as f64 / 1048576.0,
        bin().display()
    );

    let nats = NatsServer::start();
    let twitch = FakeTwitch::start().await;
    // One channel pair, and eight side by side (Twitch confirms each line of
    // a channel before the next goes: channels are where parallelism is).
    let one = vec![("#src".to_string(), "#dst".to_string())];
    let eight: Vec<(String, String)> = (0..8)
        .map(|l| (format!("#src{l}"), format!("#dst{l}")))
        .collect();
    let lane_rooms: String = eight
        .iter()
        .enumerate()
        .map(|(l, (src, dst))| {
            format!(
                "[[rooms]]\nname = \"lane{l}\"\nchannels = [{{ bridge = \"twitch\", channel = \"{src}\", direction = \"in\" }}, {{ bridge = \"twitch\", channel = \"{dst}\", direction = \"out\" }}]\n"
            )
        })
        .collect();
    let cfg = format!(
        r##"
[nats]
url = "{nats}"
[http]
enabled = false
[twitch]
login = "relaybot"
token = "oauth:x"
server = "{tw}"
tls = false
emotes = []
rate_limit = false
coalesce_after = "1h"
format = "{{text}}"
[[rooms]]
name = "load"
channels = [{{ bridge = "twitch", channel = "#src", direction = "in" }}, {{ bridge = "twitch", channel = "#dst", direction = "out" }}]
{lane_rooms}"##,
        nats = nats.url(),
        tw = twitch.server()
    );
    let jb = Jetbridge::start_with_env(&cfg, &[("RUST_LOG", "warn,jetbridge::router=info")]);
    let mut joined = vec!["#src", "#dst"];
    joined.extend(eight.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]));
    twitch.wait_joined(&joined, Duration::from_secs(20)).await;
    jb.wait_log("delivering for this bridge", Duration::from_secs(20))
        .await;
    let pid = jb.pid();
    let pids = Pids {
        jetbridge: pid,
        nats: nats.pid().expect("nats-server runs"),
    };
    let idle = rss_kib(pid).0;

    // The same payload jetbridge stores for one of these messages.
    let sample = {
        let mut ev = jetbridge::event::ChatEvent::message(
            "twitch",
            "#src",
            "id-00000",
            jetbridge::event::Author {
                id: "14".into(),
                name: "Load".into(),
                color: Some("#0000FF".into()),
                ..Default::default()
            },
            "m00000".into(),
        );
        ev.room = "load".into();
        ev.to_json()
    };
    let raw_cpu_before = pids.cpu();
    let raw = raw_jetstream(&nats.url(), max_n, &sample).await;
    let raw_cpu = {
        let after = pids.cpu();
        [1, 2].map(|i| (after[i] - raw_cpu_before[i]) * 1e6 / max_n as f64)
    };

    println!();
    table_header();
    let runs = [
        twitch_run(
            "twitch→twitch, max rate",
            &twitch,
            pids,
            0,
            max_n,
            None,
            &one,
        )
        .await,
        twitch_run(
            "twitch→twitch, 10 msg/s",
            &twitch,
            pids,
            max_n,
            if quick { 50 } else { 300 },
            Some(10.0),
            &one,
        )
        .await,
        twitch_run(
            "twitch→twitch, 1,000 msg/s",
            &twitch,
            pids,
            max_n + 1000,
            if quick { 2000 } else { 5000 },
            Some(1000.0),
            &one,
        )
        .await,
        twitch_run(
            "8 channel pairs, max rate",
            &twitch,
            pids,
            max_n + 10_000,
            max_n,
            None,
            &eight,
        )
        .await,
        twitch_run(
            "8 channel pairs, 1,000 msg/s",
            &twitch,
            pids,
            2 * max_n + 10_000,
            if quick { 2000 } else { 5000 },
            Some(1000.0),
            &eight,
        )
        .await,
    ];
    for r in &runs {
        report(r);
    }
    let tput = |r: &Run| r.delivered as f64 / r.elapsed.as_secs_f64();
    println!();
    println!(
        "raw JetStream publish+consume, same payloads ({} bytes), same server: {raw:.0} msg/s",
        sample.len()
    );
    println!(
        "raw JetStream CPU per message: nats-server {:.0} µs, client {:.0} µs",
        raw_cpu[0], raw_cpu[1]
    );
    println!(
        "jetbridge / raw JetStream: {:.2} (one channel pair), {:.2} (8 channel pairs)",
        tput(&runs[0]) / raw,
        tput(&runs[3]) / raw
    );
    println!(
        "idle RSS (twitch only, before load): {:.1} MiB",
        idle as f64 / 1024.0
    );
    drop(jb);

    // Idle with every bridge and HTTP enabled.
    let discord = FakeDiscord::start("dtoken").await;
    let slack = FakeSlack::start().await;
    let port = support::nats::free_port();
    let all = format!(
        r##"
[nats]
url = "{nats}"
[http]
listen = "127.0.0.1:{port}"
[twitch]
server = "{tw}"
tls = false
emotes = []
[discord]
token = "dtoken"
api_url = "{dapi}"
[slack]
app_token = "{APP_TOKEN}"
bot_token = "{BOT_TOKEN}"
api_url = "{sapi}"
[[rooms]]
name = "lobby"
channels = ["twitch:#a", "discord:555555555555555555", "slack:C0001"]
"##,
        nats = nats.url(),
        tw = twitch.server(),
        dapi = discord.api_url(),
        sapi = slack.api_url()
    );
    let jb = Jetbridge::start_with_env(&all, &[("RUST_LOG", "warn")]);
    let addr = format!("127.0.0.1:{port}");
    jb.wait_ready(&addr).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // let it sit idle, then read
    let (anon, file) = rss_split_kib(jb.pid());
    println!(
        "idle RSS, twitch + discord + slack + http, ready: {:.1} MiB ({:.1} MiB heap and stacks, {:.1} MiB mapped code and data); threads: {}",
        rss_kib(jb.pid()).0 as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
        threads(jb.pid()),
    );
    drop(jb);

    // 1,000 mapped Twitch channels: 500 rooms of one reading and one writing channel.
    let mut rooms = String::new();
    for r in 0..500 {
        rooms.push_str(&format!(
            "[[rooms]]\nname = \"r{r}\"\nchannels = [{{ bridge = \"twitch\", channel = \"#in{r}\", direction = \"in\" }}, {{ bridge = \"twitch\", channel = \"#out{r}\", direction = \"out\" }}]\n"
        ));
    }
    let many = format!(
        "[nats]\nurl = \"{}\"\n[http]\nenabled = false\n[twitch]\nlogin = \"relaybot\"\ntoken = \"t\"\nserver = \"{}\"\ntls = false\nemotes = []\nrate_limit = false\n{rooms}",
        nats.url(),
        twitch.server()
    );
    let jb = Jetbridge::start_with_env(&many, &[("RUST_LOG", "warn,jetbridge::router=info")]);
    let chans: Vec<String> = (0..500)
        .flat_map(|r| [format!("#in{r}"), format!("#out{r}")])
        .collect();
    let refs: Vec<&str> = chans.iter().map(String::as_str).collect();
    let t = Instant::now();
    twitch.wait_joined(&refs, Duration::from_secs(120)).await;
    let joined_in = t.elapsed();
    // The instance before was killed holding the delivery lease: wait it out.
    jb.wait_log("delivering for this bridge", Duration::from_secs(30))
        .await;
    let after_join = rss_kib(jb.pid()).0;
    let before = twitch.privmsg_count().await;
    let t = Instant::now();
    for r in 0..500 {
        twitch
            .privmsg(&format!("#in{r}"), "load", "Load", "hello")
            .await;
    }
    while twitch.privmsg_count().await < before + 500 && t.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let relayed = twitch.privmsg_count().await - before;
    let js = support::js(&nats.url()).await;
    let stream = js.get_stream("CHAT").await.expect("stream");
    let consumers: Vec<_> = stream.consumer_names().collect::<Vec<_>>().await;
    let (rss, hwm) = rss_kib(jb.pid());
    println!(
        "1,000 channels (500 rooms): joined in {:.1} s; RSS {:.1} MiB after join, {:.1} MiB after one message per room ({relayed}/500 relayed in {:.2} s), peak {:.1} MiB; durable consumers on CHAT: {}",
        joined_in.as_secs_f64(),
        after_join as f64 / 1024.0,
        rss as f64 / 1024.0,
        t.elapsed().as_secs_f64(),
        hwm as f64 / 1024.0,
        consumers.len()
    );

    // The same 1,000 channels at a chat-like pace: 200 msg/s spread over the
    // 500 reading channels, so that what a message costs shows where many
    // channels are mapped and each is quiet.
    let lanes: Vec<(String, String)> = (0..500)
        .map(|r| (format!("#in{r}"), format!("#out{r}")))
        .collect();
    let many_pids = Pids {
        jetbridge: jb.pid(),
        nats: pids.nats,
    };
    let run = twitch_run(
        "1,000 channels, 200 msg/s in all",
        &twitch,
        many_pids,
        10 * max_n,
        if quick { 2000 } else { 6000 },
        Some(200.0),
        &lanes,
    )
    .await;
    println!();
    table_header();
    report(&run);
}
