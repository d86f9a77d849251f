//! Mixed traffic through Twitch, Discord and Slack (fakes) → the real
//! `jetbridge` release binary → a real nats-server, for memory over time:
//! messages from each platform in turn, with edits, deletes and long messages,
//! and jetbridge's RSS read from /proc as it goes.
//!
//!     cargo run --release -p jetbridge-bench --bin soak -- messages 100000   # RSS every 10k relayed
//!     cargo run --release -p jetbridge-bench --bin soak -- steady 3600 20    # an hour at 20 msg/s
//!     cargo run --release -p jetbridge-bench --bin soak -- faults 600 20     # with faults (scripts/soak)
//!     cargo run --release -p jetbridge-bench --bin soak -- faults 120 20 2   # the third fault first
//!
//! `messages` sends in batches of 1,000 and waits until each batch is stored
//! and every bridge's deliveries are done before the next, so a reading is
//! "after N relayed messages". `steady` sends at a fixed rate and reads RSS
//! every minute; it exits non-zero when RSS after warm-up (the first ten
//! minutes, or a sixth of a shorter run) grows by more than 10%. Both end
//! by checking that every message reached both other platforms. `faults`
//! is `steady` with faults rotating, and a full account at the end (see
//! faults.rs).
//! `JB_BIN` runs another binary (a wrapper under heaptrack, say).

#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code)] // the soak uses the fakes and the process, not the waits of tests
mod support;

mod binary;
mod faults;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::config::ConfigBuilder;
use support::fake_discord::FakeDiscord;
use support::fake_slack::FakeSlack;
use support::fake_twitch::{FakeTwitch, privmsg_line};
use support::fake_twitch_api::FakeTwitchApi;
use support::nats::NatsServer;
use support::platform::FakePlatform;
use support::{Jetbridge, js, wait_outbound_idle};

/// jetbridge's RSS and its anonymous part (heap, stacks), in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let field = support::proc_status_kib(pid);
    (
        field("VmRSS:") as f64 / 1024.0,
        field("RssAnon:") as f64 / 1024.0,
    )
}

/// The three fakes and the one channel of each in room `lobby`.
struct Platforms {
    twitch: FakeTwitch,
    /// Twitch's recent-messages service: lines said while jetbridge is away.
    history: FakeTwitchApi,
    discord: FakeDiscord,
    slack: FakeSlack,
    tw: String,
    dc: String,
    sl: String,
}

impl Platforms {
    /// A Twitch line, kept by the history service as well.
    async fn say_twitch(&self, n: u64, user: &str, text: &str) -> String {
        let id = format!("00000000-5000-4000-8000-{n:012}");
        let line = privmsg_line(&self.tw, &user.to_lowercase(), user, &id, text, "");
        self.history.saw(&self.tw, &line);
        self.twitch.raw(&self.tw, line).await;
        id
    }

    /// A moderator deletes Twitch line `id`, and the history service marks it.
    async fn delete_twitch(&self, user: &str, id: &str) {
        self.history.deleted_in_history(&self.tw, id);
        FakePlatform::delete(&self.twitch, &self.tw, user, id).await;
    }
}

/// What was sent: message `n` from platform `n % 3`, its id there.
#[derive(Default)]
struct Traffic {
    sent: u64,
    /// Events jetbridge should store: messages, edits, deletes.
    events: u64,
    ids: Vec<String>,
    /// Messages edited, and deleted.
    edits: Vec<u64>,
    deletes: Vec<u64>,
}

const LONG: usize = 2_600;

impl Traffic {
    /// Send message `n` (and, now and then, an edit or a delete of an earlier one).
    async fn send(&mut self, p: &Platforms) {
        let n = self.sent;
        let user = ["Ann", "Bea", "Cy", "Dee", "Eli"][(n % 5) as usize];
        let mut text = format!("m{n} from {user}");
        if n % 20 == 7 {
            // Split on Discord, truncated on Twitch.
            text.push(' ');
            text.push_str(&"long words ".repeat(LONG / 11));
        }
        let id = match n % 3 {
            0 => p.say_twitch(n, user, &text).await,
            1 => FakePlatform::say(&p.discord, &p.dc, user, &text).await,
            _ => FakePlatform::say(&p.slack, &p.sl, user, &text).await,
        };
        self.ids.push(id);
        self.sent += 1;
        self.events += 1;
        // Edit the message of 9 before (Discord and Slack only: Twitch has none).
        if n >= 9 && n.is_multiple_of(10) {
            let m = n - 9;
            let user = ["Ann", "Bea", "Cy", "Dee", "Eli"][(m % 5) as usize];
            let id = self.ids[m as usize].clone();
            let edited = format!("m{m} from {user} (edited)");
            match m % 3 {
                1 => FakePlatform::edit(&p.discord, &p.dc, user, &id, &edited).await,
                2 => FakePlatform::edit(&p.slack, &p.sl, user, &id, &edited).await,
                _ => return,
            }
            self.edits.push(m);
            self.events += 1;
        }
        // Delete the message of 14 before.
        if n >= 14 && n.is_multiple_of(15) {
            let m = n - 14;
            let user = ["Ann", "Bea", "Cy", "Dee", "Eli"][(m % 5) as usize];
            let id = self.ids[m as usize].clone();
            match m % 3 {
                0 => p.delete_twitch(user, &id).await,
                1 => FakePlatform::delete(&p.discord, &p.dc, user, &id).await,
                _ => FakePlatform::delete(&p.slack, &p.sl, user, &id).await,
            }
            self.deletes.push(m);
            self.events += 1;
        }
    }
}

/// Wait until `events` are stored and every bridge has delivered them.
async fn settle(js: &async_nats::jetstream::Context, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = match js.get_stream("CHAT").await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        if stored >= events {
            break;
        }
        if Instant::now() > deadline {
            println!("  (stored {stored} of {events} events after 120 s; going on)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for bridge in ["twitch", "discord", "slack"] {
        wait_outbound_idle(js, bridge).await;
    }
}

/// Tokens `m<n>` that reached `channel` of `fake`.
async fn seen<P: FakePlatform>(fake: &P, channel: &str) -> HashSet<u64> {
    FakePlatform::posts(fake, channel)
        .await
        .iter()
        .flat_map(|p| {
            p.text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter_map(|w| w.strip_prefix('m').and_then(|d| d.parse().ok()))
                .collect::<Vec<u64>>()
        })
        .collect()
}

/// Every message on both other platforms? Prints and returns how many are missing.
async fn lost(p: &Platforms, sent: u64) -> usize {
    let tw = seen(&p.twitch, &p.tw).await;
    let dc = seen(&p.discord, &p.dc).await;
    let sl = seen(&p.slack, &p.sl).await;
    let mut missing = 0;
    for n in 0..sent {
        let wanted: [&HashSet<u64>; 2] = match n % 3 {
            0 => [&dc, &sl],
            1 => [&tw, &sl],
            _ => [&tw, &dc],
        };
        missing += wanted.iter().filter(|s| !s.contains(&n)).count();
    }
    println!("deliveries expected {}, missing {missing}", sent * 2);
    missing
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("messages");
    if std::env::var_os("JB_BIN").is_none() {
        binary::build_release();
    }
    let nats = NatsServer::start();
    let p = Platforms {
        twitch: FakeTwitch::start().await,
        history: FakeTwitchApi::start().await,
        discord: <FakeDiscord as FakePlatform>::start().await,
        slack: <FakeSlack as FakePlatform>::start().await,
        tw: "#alpha".into(),
        dc: "111111111111111111".into(),
        sl: "C0001".into(),
    };
    let config = ConfigBuilder::new(&nats)
        .section(
            "twitch",
            &format!(
                "{}\nhistory_url = \"{}\"",
                p.twitch.section(),
                p.history.history_url()
            ),
        )
        .section("discord", &p.discord.section())
        .section("slack", &p.slack.section())
        .room(
            "lobby",
            &[
                &format!("twitch:{}", p.tw),
                &format!("discord:{}", p.dc),
                &format!("slack:{}", p.sl),
            ],
        )
        .build();
    let jb = Jetbridge::start_with_env(
        &config,
        &[(
            "RUST_LOG",
            "warn,jetbridge::router=info,jetbridge::bridge=info",
        )],
    );
    p.twitch
        .wait_joined(&[&p.tw], Duration::from_secs(30))
        .await;
    FakePlatform::wait_connected(&p.discord, Duration::from_secs(30)).await;
    FakePlatform::wait_connected(&p.slack, Duration::from_secs(30)).await;
    jb.wait_log("delivering for this bridge", Duration::from_secs(30))
        .await;
    let js = js(&nats.url()).await;
    let pid = jb.pid();
    let (rss, anon) = rss_mib(pid);
    println!("ready: RSS {rss:.1} MiB (heap and stacks {anon:.1} MiB)");
    if mode == "faults" {
        let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(600);
        let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
        // Which fault comes first (0-5, see faults.rs), to look at one.
        let first: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
        let failed = faults::run(Arc::new(p), nats, jb, &config, (seconds, rate, first)).await;
        std::process::exit(i32::from(failed));
    }
    let mut t = Traffic::default();
    let started = Instant::now();
    let mut failed = false;
    match mode {
        "messages" => {
            let total: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
            println!("| relayed messages | RSS MiB | heap and stacks MiB | elapsed s |");
            println!("|---|---|---|---|");
            while t.sent < total {
                for _ in 0..1_000.min(total - t.sent) {
                    t.send(&p).await;
                }
                settle(&js, t.events).await;
                if t.sent.is_multiple_of(10_000) || t.sent == total {
                    let (rss, anon) = rss_mib(pid);
                    println!(
                        "| {} | {rss:.1} | {anon:.1} | {:.0} |",
                        t.sent,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
        "steady" => {
            let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(600);
            let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
            let warm = Duration::from_secs((seconds / 6).min(600));
            let every = Duration::from_secs(60.min(seconds / 10).max(1));
            println!(
                "{seconds} s at {rate} msg/s; RSS after warm-up ({warm:?}) must stay within 10%"
            );
            println!("| elapsed s | sent | RSS MiB | heap and stacks MiB |");
            println!("|---|---|---|---|");
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            let mut next_read = every;
            let mut at_warm: Option<f64> = None;
            let mut highest_after = 0.0f64;
            while started.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                t.send(&p).await;
                if started.elapsed() >= next_read {
                    next_read += every;
                    let (rss, anon) = rss_mib(pid);
                    println!(
                        "| {:.0} | {} | {rss:.1} | {anon:.1} |",
                        started.elapsed().as_secs_f64(),
                        t.sent
                    );
                    match at_warm {
                        None if started.elapsed() >= warm => at_warm = Some(rss),
                        Some(_) => highest_after = highest_after.max(rss),
                        None => {}
                    }
                }
            }
            settle(&js, t.events).await;
            let (rss, _) = rss_mib(pid);
            highest_after = highest_after.max(rss);
            if let Some(w) = at_warm {
                let growth = (highest_after - w) / w * 100.0;
                println!(
                    "RSS at warm-up {w:.1} MiB, highest after {highest_after:.1} MiB ({growth:+.1}%)"
                );
                failed |= growth > 10.0;
            }
        }
        other => panic!("unknown mode {other:?} (messages | steady | faults)"),
    }
    println!(
        "sent {} messages ({} events) in {:.0} s",
        t.sent,
        t.events,
        started.elapsed().as_secs_f64()
    );
    failed |= lost(&p, t.sent).await > 0;
    if failed {
        std::process::exit(1);
    }
}
