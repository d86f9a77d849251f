//! `soak faults SECONDS RATE`: the steady mix of traffic while faults rotate
//! every 30–45 s (a platform answering 500s, a 429 storm, every socket and
//! gateway closed, NATS restarted, jetbridge killed with -9 and started
//! again, a second instance started and stopped), then an account of every
//! delivery: lost, duplicated (and whether around a kill or a dropped
//! connection, where a copy can be made twice), reordered, edits and deletes
//! carried over, and jetbridge's RSS.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::nats::NatsServer;
use crate::support::platform::{Change, FakePlatform, Post};
use crate::support::{Jetbridge, js};
use crate::{Platforms, Traffic, rss_mib, settle};

/// The faults, in the order they come round.
const FAULTS: [&str; 6] = [
    "discord and slack answer 500",
    "429 storm on discord and slack",
    "every socket and gateway closed",
    "nats-server restarted",
    "jetbridge killed (-9) and started again",
    "a second instance started and stopped",
];

/// A stretch of time in which a copy may be made twice: what a killed
/// process had posted but not yet recorded, or what Twitch took on a socket
/// whose answers died with it.
struct Window {
    from: Instant,
    to: Instant,
}

pub async fn run(
    p: Arc<Platforms>,
    mut nats: NatsServer,
    mut jb: Jetbridge,
    config: &str,
    (seconds, rate, first): (u64, u64, usize),
) -> bool {
    let started = Instant::now();
    let (rss_start, _) = rss_mib(jb.pid());
    println!("{seconds} s at {rate} msg/s; a fault every 30-45 s, the last 30 s without one");
    println!("| elapsed s | sent | fault | RSS MiB |");
    println!("|---|---|---|---|");
    p.discord.keep_events_while_away();
    p.twitch.keep_lines_while_away();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (p, stop, sent) = (p.clone(), stop.clone(), sent.clone());
        tokio::spawn(async move {
            let mut t = Traffic::default();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                t.send(&p).await;
                sent.store(t.sent, Ordering::SeqCst);
            }
            t
        })
    };
    let mut windows = Vec::new();
    // Where a second instance ran (and 30 s after it stopped).
    let mut second_runs = Vec::new();
    let mut peak_first_life = rss_start;
    let mut killed = false;
    let end_faults = Duration::from_secs(seconds.saturating_sub(30));
    for i in 0usize.. {
        let gap = Duration::from_secs(30 + (i as u64 * 7) % 16);
        if started.elapsed() + gap >= end_faults {
            break;
        }
        tokio::time::sleep(gap).await;
        let k = (first + i) % FAULTS.len();
        let fault = FAULTS[k];
        let (rss, _) = rss_mib(jb.pid());
        if !killed {
            peak_first_life = peak_first_life.max(rss);
        }
        println!(
            "| {:.0} | {} | {fault} | {rss:.1} |",
            started.elapsed().as_secs_f64(),
            sent.load(Ordering::SeqCst)
        );
        match k {
            0 => {
                p.discord.down_for(Duration::from_secs(8), 500).await;
                let body = serde_json::json!({"ok": false, "error": "internal_error"});
                p.slack.fail_method("chat.postMessage", 10, 500, body).await;
            }
            1 => {
                FakePlatform::rate_limit(&p.discord, 30, Duration::from_secs(1)).await;
                FakePlatform::rate_limit(&p.slack, 30, Duration::from_secs(1)).await;
            }
            2 => {
                let from = Instant::now();
                p.twitch.drop_connections().await;
                p.discord.gateway_down_for(Duration::from_secs(5)).await;
                p.slack.sockets_down_for(Duration::from_secs(5)).await;
                windows.push(Window {
                    from,
                    to: from + Duration::from_secs(30),
                });
            }
            3 => {
                nats.stop();
                tokio::time::sleep(Duration::from_secs(2)).await;
                nats.restart();
            }
            4 => {
                let from = Instant::now();
                jb.kill9().await;
                killed = true;
                // Chat goes on while jetbridge is away.
                tokio::time::sleep(Duration::from_secs(3)).await;
                jb.restart();
                windows.push(Window {
                    from,
                    to: Instant::now() + Duration::from_secs(30),
                });
            }
            _ => {
                let from = Instant::now();
                let mut second = Jetbridge::start(config);
                tokio::time::sleep(Duration::from_secs(15)).await;
                second.terminate().await;
                second_runs.push(Window {
                    from,
                    to: Instant::now() + Duration::from_secs(30),
                });
            }
        }
    }
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let t = sender.await.expect("the sender ran");
    let js = js(&nats.url()).await;
    settle(&js, t.events).await;
    let (rss_end, anon_end) = rss_mib(jb.pid());
    println!(
        "sent {} messages, {} edits, {} deletes ({} events) in {:.0} s",
        t.sent,
        t.edits.len(),
        t.deletes.len(),
        t.events,
        started.elapsed().as_secs_f64()
    );
    let account = Account::of(&p, &t, (&windows, &second_runs)).await;
    account.print();
    if account.failed() {
        // What jetbridge said about catching up and delivering, for the why.
        for line in jb.logs().lines().filter(|l| {
            ["caught up", "missed", "WARN", "ERROR"]
                .iter()
                .any(|k| l.contains(k))
                && !l.contains("API is not configured")
        }) {
            println!("  jetbridge: {line}");
        }
    }
    println!(
        "RSS: start {rss_start:.1} MiB, end {rss_end:.1} MiB (heap and stacks {anon_end:.1}), highest before the first kill {peak_first_life:.1} MiB"
    );
    // A process restarted by the kill starts small again: growth shows as
    // an end above what the first one reached.
    let grew = rss_end > peak_first_life * 1.25;
    if grew {
        println!("memory kept growing");
    }
    account.failed() || grew
}

/// What reached where.
#[derive(Default)]
struct Account {
    expected: usize,
    seen: usize,
    lost: Vec<(u64, &'static str)>,
    /// Deliveries of messages deleted before jetbridge saw them.
    gone_before: usize,
    duplicated: usize,
    duplicated_in_windows: usize,
    reordered: usize,
    reordered_near_second: usize,
    edits: (usize, usize),
    /// Edits of lines coalesced with others into one post.
    edits_coalesced: usize,
    deletes: (usize, usize),
}

/// One destination: its posts, when each arrived, its changes.
struct Seen {
    name: &'static str,
    /// Which platform's messages (n % 3) reach it.
    from: [u64; 2],
    posts: Vec<Post>,
    times: Vec<Instant>,
    changes: Vec<Change>,
}

async fn seen<P: FakePlatform>(
    fake: &P,
    channel: &str,
    name: &'static str,
    from: [u64; 2],
) -> Seen {
    let times = FakePlatform::attempts(fake, channel)
        .await
        .into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(t, _)| t)
        .collect();
    Seen {
        name,
        from,
        posts: FakePlatform::posts(fake, channel).await,
        times,
        changes: FakePlatform::changes(fake, channel).await,
    }
}

/// The message numbers (`m<n>`) a text carries, in order.
fn tokens(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| w.strip_prefix('m').and_then(|d| d.parse().ok()))
        .collect()
}

impl Account {
    async fn of(
        p: &Platforms,
        t: &Traffic,
        (windows, second_runs): (&[Window], &[Window]),
    ) -> Account {
        let dests = [
            seen(&p.twitch, &p.tw, "twitch", [1, 2]).await,
            seen(&p.discord, &p.dc, "discord", [0, 2]).await,
            seen(&p.slack, &p.sl, "slack", [0, 1]).await,
        ];
        let mut a = Account::default();
        for d in &dests {
            // Where each message's copies are, in the order they came.
            let mut at: HashMap<u64, Vec<usize>> = HashMap::new();
            let mut highest: HashMap<u64, u64> = HashMap::new();
            for (i, post) in d.posts.iter().enumerate() {
                for n in tokens(&post.text) {
                    let places = at.entry(n).or_default();
                    places.push(i);
                    if places.len() > 1 {
                        continue;
                    }
                    let top = highest.entry(n % 3).or_insert(0);
                    if n < *top {
                        a.reordered += 1;
                        let when = (d.times.len() == d.posts.len()).then(|| d.times[i]);
                        let near = |w: &[Window]| {
                            when.is_some_and(|t| w.iter().any(|x| x.from <= t && t <= x.to))
                        };
                        if near(second_runs) {
                            a.reordered_near_second += 1;
                        }
                        println!("{}: m{n} came after m{top}", d.name);
                    }
                    *top = (*top).max(n);
                }
            }
            let deleted: HashSet<u64> = t.deletes.iter().copied().collect();
            for n in (0..t.sent).filter(|n| d.from.contains(&(n % 3))) {
                a.expected += 1;
                let Some(places) = at.get(&n) else {
                    // Said and deleted while jetbridge could not see it: a
                    // copy would be wrong.
                    match deleted.contains(&n) {
                        true => a.gone_before += 1,
                        false => a.lost.push((n, d.name)),
                    }
                    continue;
                };
                a.seen += 1;
                for &again in &places[1..] {
                    a.duplicated += 1;
                    // Time unknown (the fake's lists disagree): not excused.
                    let when = (d.times.len() == d.posts.len()).then(|| d.times[again]);
                    if when.is_some_and(|w| windows.iter().any(|x| x.from <= w && w <= x.to)) {
                        a.duplicated_in_windows += 1;
                    } else {
                        println!("{}: m{n} twice, outside a kill or drop", d.name);
                    }
                }
            }
            // Edits reach platforms that edit; deletes those that delete
            // what a bot posted (Twitch needs Helix credentials for that).
            if d.name == "twitch" {
                continue;
            }
            // An edit of what is deleted later may or may not show first.
            let edited = t.edits.iter().filter(|m| !deleted.contains(m));
            for &m in edited.filter(|m| d.from.contains(&(*m % 3))) {
                // A line coalesced into one post with others is not edited
                // (only a deletion shrinks such a post).
                let coalesced = at
                    .get(&m)
                    .is_some_and(|p| tokens(&d.posts[p[0]].text).len() > 1);
                if coalesced {
                    a.edits_coalesced += 1;
                    continue;
                }
                a.edits.1 += 1;
                let edited = d.changes.iter().any(|c| {
                    matches!(c, Change::Edit { text, .. } if tokens(text).contains(&m) && text.contains("(edited)"))
                });
                a.edits.0 += usize::from(edited);
            }
            for &m in t.deletes.iter().filter(|m| d.from.contains(&(*m % 3))) {
                let Some(copy) = at.get(&m).and_then(|p| d.posts[p[0]].id.clone()) else {
                    continue;
                };
                a.deletes.1 += 1;
                let gone = d.changes.iter().any(|c| match c {
                    Change::Delete { id } => *id == copy,
                    // A coalesced post loses the deleted one's line.
                    Change::Edit { id, text } => *id == copy && !tokens(text).contains(&m),
                });
                a.deletes.0 += usize::from(gone);
            }
        }
        a
    }

    fn print(&self) {
        println!(
            "deliveries expected {}, seen {}, not due {} (said and deleted while jetbridge could not see them), lost {}, duplicated {} ({} of them around a kill or a dropped connection), reordered {} ({} of them while a second instance ran or just after)",
            self.expected,
            self.seen,
            self.gone_before,
            self.lost.len(),
            self.duplicated,
            self.duplicated_in_windows,
            self.reordered,
            self.reordered_near_second
        );
        for (n, dest) in self.lost.iter().take(20) {
            println!("  lost: m{n} in {dest}");
        }
        println!(
            "edits applied {}/{} (and {} of lines coalesced into one post, which are not edited), deletes applied {}/{} (Discord and Slack copies)",
            self.edits.0, self.edits.1, self.edits_coalesced, self.deletes.0, self.deletes.1
        );
    }

    fn failed(&self) -> bool {
        !self.lost.is_empty() || self.duplicated > self.duplicated_in_windows || self.reordered > 0
    }
}
