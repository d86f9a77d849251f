//! The router against memory (see [`memory`]): time is paused, so pacing,
//! coalescing, retry-after and lease expiry are exact and instant.

mod memory;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::bus::MarkScope;
use crate::clock::Clock;
use crate::event::{Author, ChatEvent, EventKind, Reaction, ReactionOp};
use crate::ratelimit::Rate;
use memory::{Did, Memory, Recorder, Script};

/// Routes of bridge `mem`: one channel `out` in room `lobby`.
fn routes() -> Arc<Routes> {
    let config =
        crate::config::from_toml_str("[[rooms]]\nname = \"lobby\"\n", &[]).expect("config");
    let mut routes = Routes::new(&config, "mem");
    routes.add_destination("lobby", "out");
    Arc::new(routes)
}

fn message(n: u32, text: &str) -> ChatEvent {
    let mut ev = ChatEvent::message(
        "src",
        "#in",
        &format!("m{n}"),
        Author {
            id: "1".into(),
            name: "Ann".into(),
            ..Default::default()
        },
        text.to_string(),
    );
    ev.room = "lobby".into();
    ev
}

fn delete_of(n: u32) -> ChatEvent {
    let mut ev = ChatEvent::delete("src", "#in", &format!("m{n}"), None);
    ev.room = "lobby".into();
    ev
}

struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(mem: &Arc<Memory>, bridge: &Arc<Recorder>) -> Running {
    start_with(mem, bridge, routes())
}

fn start_with(mem: &Arc<Memory>, bridge: &Arc<Recorder>, routes: Arc<Routes>) -> Running {
    start_timed(mem, bridge, routes, Clock::System)
}

/// Started with its wall clock `clock`.
fn start_timed(
    mem: &Arc<Memory>,
    bridge: &Arc<Recorder>,
    routes: Arc<Routes>,
    clock: Clock,
) -> Running {
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_outbound(
        mem.clone(),
        bridge.clone(),
        routes,
        OutboundTiming {
            drain: Duration::from_secs(5),
            since: time::OffsetDateTime::now_utc(),
            clock,
        },
        stop.clone(),
    ));
    Running { stop, task }
}

/// Wait (in paused time) until the log has `line`.
async fn logged(mem: &Memory, line: &str) {
    let found = tokio::time::timeout(Duration::from_secs(600), async {
        while !mem.log().iter().any(|l| l == line) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "never logged {line:?}: {:?}", mem.log());
}

fn one_per_second() -> Option<Rate> {
    Some(Rate {
        messages: 1,
        per: Duration::from_secs(1),
    })
}

#[tokio::test(start_paused = true)]
async fn a_backlog_waiting_longer_than_coalesce_after_becomes_one_post_in_order() {
    let mem = Memory::new();
    let bridge = Recorder::new(one_per_second(), 2000);
    let _run = start(&mem, &bridge);
    for n in 1..=6 {
        mem.publish(&message(n, &format!("line {n}")));
    }
    let did = bridge.wait(3).await;
    assert_eq!(
        did,
        vec![
            Did::Post(vec!["Ann: line 1".into()]),
            // One second later (the pace) the backlog is not 2 s old yet.
            Did::Post(vec!["Ann: line 2".into()]),
            Did::Post(vec![
                "Ann: line 3\nAnn: line 4\nAnn: line 5\nAnn: line 6".into()
            ]),
        ]
    );
    let t = bridge.times();
    assert_eq!(t[1] - t[0], Duration::from_secs(1));
    assert_eq!(t[2] - t[0], Duration::from_secs(2));
    for seq in 1..=6 {
        logged(&mem, &format!("ack {seq}")).await;
    }
}

#[tokio::test(start_paused = true)]
async fn deleting_members_of_a_coalesced_post_drops_their_lines_then_the_post() {
    let mem = Memory::new();
    let bridge = Recorder::new(one_per_second(), 2000);
    let _run = start(&mem, &bridge);
    for n in 1..=5 {
        mem.publish(&message(n, &format!("line {n}")));
    }
    bridge.wait(3).await;
    let post_ids = match &bridge.did()[2] {
        Did::Post(p) => {
            assert_eq!(
                p,
                &vec!["Ann: line 3\nAnn: line 4\nAnn: line 5".to_string()]
            );
            // The third post got the third id given out.
            vec!["102".to_string()]
        }
        other => panic!("{other:?}"),
    };
    mem.publish(&delete_of(4));
    let did = bridge.wait(4).await;
    assert_eq!(
        did[3],
        Did::Edit(post_ids.clone(), vec!["Ann: line 3\nAnn: line 5".into()])
    );
    // Every remaining member points at the shrunk post: deleting them both
    // leaves the first edit's survivor, then removes the post.
    mem.publish(&delete_of(3));
    let did = bridge.wait(5).await;
    assert_eq!(
        did[4],
        Did::Edit(post_ids.clone(), vec!["Ann: line 5".into()])
    );
    mem.publish(&delete_of(5));
    let did = bridge.wait(6).await;
    assert_eq!(did[5], Did::Delete(post_ids));
}

#[tokio::test(start_paused = true)]
async fn records_land_before_the_ack_and_the_watermark_covers_what_was_handled() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    let _run = start(&mem, &bridge);
    for n in 1..=3 {
        mem.publish(&message(n, "hi"));
    }
    bridge.wait(3).await;
    logged(&mem, "ack 3").await;
    let log = mem.log();
    for seq in 1..=3 {
        let ack = log.iter().position(|l| *l == format!("ack {seq}")).unwrap();
        let put = log
            .iter()
            .position(|l| *l == format!("put src:in:m{seq}"))
            .unwrap();
        let mark = log
            .iter()
            .position(|l| {
                l.strip_prefix("mark ")
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|m| m >= seq)
            })
            .unwrap();
        assert!(put < ack && mark < ack, "seq {seq}: {log:?}");
    }
    let scope = MarkScope {
        stream: "epoch-1".into(),
        room: "lobby".into(),
    };
    assert_eq!(mem.records.watermark("out", &scope).await.unwrap(), Some(3));
    let rec = mem.records.get("out", "src:in:m2").await.unwrap().unwrap();
    assert_eq!(rec.ids, vec!["101".to_string()]);
    // Read both ways, the copy leads back to its original.
    assert_eq!(
        mem.records.copy_of("out", "101").await.unwrap().as_deref(),
        Some("src:in:m2")
    );
}

/// The watermark says the channel posted everything up to it: a successor
/// skips what it covers. A post whose platform has not answered yet (a
/// Twitch line in flight) may never have arrived, so the mark waits for it.
#[tokio::test(start_paused = true)]
async fn the_watermark_waits_for_the_posts_it_covers_to_be_answered() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    bridge.then(Script::IdsAfter(Duration::from_secs(10)));
    let _run = start(&mem, &bridge);
    mem.publish(&message(1, "hi"));
    bridge.wait(1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = mem.log();
    assert!(
        !log.iter()
            .any(|l| l.starts_with("mark") || l.starts_with("put")),
        "nothing is recorded before the answer: {log:?}"
    );
    logged(&mem, "ack 1").await;
    let log = mem.log();
    let put = log.iter().position(|l| l == "put src:in:m1").unwrap();
    let mark = log.iter().position(|l| l == "mark 1").unwrap();
    assert!(put < mark, "{log:?}");
}

/// A round's mark goes beside the next round's records rather than after
/// them: a busy channel pays one write's wait per round, not two.
#[tokio::test(start_paused = true)]
async fn a_rounds_mark_travels_with_the_next_rounds_records() {
    let mem = Memory::new();
    mem.records.set_latency(Duration::from_secs(1));
    let bridge = Recorder::new(None, 2000);
    let _run = start(&mem, &bridge);
    let began = Instant::now();
    mem.publish(&message(1, "one"));
    bridge.wait(1).await;
    // Half way through the first record's write, a second post.
    tokio::time::sleep(Duration::from_millis(500)).await;
    mem.publish(&message(2, "two"));
    bridge.wait(2).await;
    logged(&mem, "ack 2").await;
    // put m1 (1 s), then put m2 beside mark 1 (1 s), then mark 2 (1 s).
    let took = began.elapsed();
    assert!(
        took < Duration::from_millis(3100),
        "took {took:?}: {:?}",
        mem.log()
    );
    let log = mem.log();
    let at = |line: &str| log.iter().position(|l| l == line).unwrap();
    assert!(
        at("mark 1") < at("ack 1") && at("ack 1") < at("mark 2"),
        "{log:?}"
    );
    assert!(
        at("put src:in:m2") < at("mark 2") && at("mark 2") < at("ack 2"),
        "{log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_channel_nothing_reads_keeps_its_records_without_the_way_back() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    let config =
        crate::config::from_toml_str("[[rooms]]\nname = \"lobby\"\n", &[]).expect("config");
    let mut routes = Routes::new(&config, "mem");
    routes.add_write_only_destination("lobby", "out");
    let _run = start_with(&mem, &bridge, Arc::new(routes));
    for n in 1..=2 {
        mem.publish(&message(n, "hi"));
    }
    bridge.wait(2).await;
    logged(&mem, "ack 2").await;
    // A delete of the original still finds its copy...
    let rec = mem.records.get("out", "src:in:m1").await.unwrap().unwrap();
    assert!(!rec.ids.is_empty());
    // ...but nothing said in the channel can name the copy: no entry back.
    for id in &rec.ids {
        assert_eq!(mem.records.copy_of("out", id).await.unwrap(), None);
    }
    mem.publish(&delete_of(1));
    let did = bridge.wait(3).await;
    assert!(matches!(did[2], Did::Delete(_)), "{did:?}");
    // ...and deleting it has no way back to forget first.
    logged(&mem, "ack 3").await;
    let log = mem.log();
    assert!(!log.iter().any(|l| l.starts_with("forget")), "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn a_redelivery_below_the_watermark_is_not_posted_by_the_next_leader() {
    let mem = Memory::new();
    let first = Recorder::new(None, 2000);
    let run = start(&mem, &first);
    let events: Vec<ChatEvent> = (1..=3).map(|n| message(n, "hi")).collect();
    for ev in &events {
        mem.publish(ev);
    }
    first.wait(3).await;
    logged(&mem, "ack 3").await;
    run.stop.cancel();
    run.task.await.unwrap();

    // A new leader (no memory of the posts) is offered them again, as after a
    // crash that lost the acks, plus one new message.
    let second = Recorder::new(None, 2000);
    let _run = start(&mem, &second);
    for (i, ev) in events.iter().enumerate() {
        mem.deliver_again(i as u64 + 1, ev, 2);
    }
    mem.publish(&message(4, "new"));
    let did = second.wait(1).await;
    assert_eq!(did, vec![Did::Post(vec!["Ann: new".into()])]);
    logged(&mem, "ack 4").await;
    assert_eq!(second.did().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_split_post_that_fails_at_part_two_resumes_there() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 20);
    bridge.then(Script::AcceptThenRetry(1));
    bridge.then(Script::Retry);
    let _run = start(&mem, &bridge);
    mem.publish(&message(1, "aaaa bbbb cccc dddd eeee ffff gggg"));
    let did = bridge.wait(2).await;
    let Did::Post(first) = &did[0] else { panic!() };
    let Did::Post(rest) = &did[1] else { panic!() };
    assert_eq!(first.len(), 1, "{did:?}");
    assert!(!rest.contains(&first[0]), "part one posted again: {did:?}");
    let all: Vec<&String> = first.iter().chain(rest).collect();
    assert_eq!(all.len(), 3, "{did:?}");
    logged(&mem, "ack 1").await;
    // The record holds every part's id, the first attempt's included.
    let rec = mem.records.get("out", "src:in:m1").await.unwrap().unwrap();
    assert_eq!(rec.ids.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_exactly_its_retry_after() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    bridge.then(Script::RateLimited(Duration::from_millis(1500)));
    let _run = start(&mem, &bridge);
    let t0 = Instant::now();
    mem.publish(&message(1, "slow down"));
    bridge.wait(1).await;
    assert_eq!(bridge.times()[0] - t0, Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn the_lease_passes_on_a_stop_at_once_and_on_a_crash_after_it_expires() {
    let mem = Memory::new();
    let a = Recorder::new(None, 2000);
    let b = Recorder::new(None, 2000);
    let run_a = start(&mem, &a);
    // Let A take the lease before B asks.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let run_b = start(&mem, &b);
    mem.publish(&message(1, "one"));
    a.wait(1).await;
    assert!(b.did().is_empty());

    // A stops: it gives the lease up, and B (polling every TTL/3) takes over.
    let stopped = Instant::now();
    run_a.stop.cancel();
    run_a.task.await.unwrap();
    mem.publish(&message(2, "two"));
    b.wait(1).await;
    assert!(b.times()[0] - stopped <= LEASE_TTL / 3 + Duration::from_millis(100));

    // B crashes (no release): C gets the lease only once it expired.
    let c = Recorder::new(None, 2000);
    let crashed = Instant::now();
    run_b.task.abort();
    let _ = run_b.task.await;
    let _run_c = start(&mem, &c);
    mem.publish(&message(3, "three"));
    c.wait(1).await;
    let waited = c.times()[0] - crashed;
    assert!(
        waited >= LEASE_TTL - LEASE_TTL / 3,
        "took over after {waited:?}"
    );
    assert!(waited <= LEASE_TTL + LEASE_TTL / 3 + Duration::from_millis(100));
    assert_eq!(c.did(), vec![Did::Post(vec!["Ann: three".into()])]);
}

#[tokio::test(start_paused = true)]
async fn a_held_message_waits_out_the_hold_and_one_deleted_meanwhile_is_never_posted() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    let mut held = routes().as_ref().clone();
    held.set_hold("lobby", Duration::from_secs(3));
    // Wall time moves with the paused clock: the hold is exact.
    let clock = Clock::following_tokio(chrono::Utc::now());
    let _run = start_timed(&mem, &bridge, Arc::new(held), clock);
    let t0 = Instant::now();
    let at_now = |mut ev: ChatEvent| {
        ev.ts = clock.now();
        ev
    };
    mem.publish(&at_now(message(1, "spam")));
    mem.publish(&at_now(message(2, "fine")));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A moderator removes the first within the hold.
    mem.publish(&at_now(delete_of(1)));
    let did = bridge.wait(1).await;
    assert_eq!(did, vec![Did::Post(vec!["Ann: fine".into()])]);
    // Exactly when the hold ends, measured from when it was sent.
    assert_eq!(bridge.times()[0] - t0, Duration::from_secs(3));
    logged(&mem, "ack 1").await;
    logged(&mem, "ack 3").await;
    assert_eq!(bridge.did().len(), 1, "{:?}", bridge.did());
}

/// A reaction to message `n` by `user` on bridge `src`.
fn reaction(n: u32, user: &str, emoji: &str, op: ReactionOp) -> ChatEvent {
    let who = Author {
        id: user.into(),
        name: user.into(),
        ..Default::default()
    };
    let r = Reaction {
        emoji: emoji.into(),
        op,
    };
    // Each reaction its own, as the platform's time makes them.
    static MARK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mark = MARK
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        .to_string();
    let mut ev = ChatEvent::reaction("src", "#in", &format!("m{n}"), Some(who), r, Some(&mark));
    ev.room = "lobby".into();
    ev
}

#[tokio::test(start_paused = true)]
async fn the_bot_reacts_once_per_emoji_while_anyone_on_the_other_side_does() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    let _run = start(&mem, &bridge);
    mem.publish(&message(1, "hi"));
    bridge.wait(1).await;
    let copy = vec!["100".to_string()];
    let (add, remove) = (ReactionOp::Add, ReactionOp::Remove);
    for ev in [
        reaction(1, "u1", "👍", add),
        reaction(1, "u2", "👍", add),
        reaction(1, "u1", "🎉", add),
        reaction(1, "u1", "👍", remove),
        // Taken back twice, or by someone who never reacted: nothing.
        reaction(1, "u1", "👍", remove),
        reaction(1, "u9", "👍", remove),
        reaction(1, "u2", "👍", remove),
    ] {
        mem.publish(&ev);
    }
    logged(&mem, "ack 8").await;
    assert_eq!(
        bridge.did()[1..],
        [
            Did::React(copy.clone(), "👍".into(), true),
            Did::React(copy.clone(), "🎉".into(), true),
            Did::React(copy.clone(), "👍".into(), false),
        ]
    );
    // A moderator clearing an emoji (no one named) takes the bot's back too.
    let mut cleared = reaction(1, "x", "🎉", remove);
    cleared.author = None;
    mem.publish(&cleared);
    let did = bridge.wait(5).await;
    assert_eq!(did[4], Did::React(copy.clone(), "🎉".into(), false));
    // Every emoji of the message removed on its platform: the bot's go.
    mem.publish(&reaction(1, "u1", "👍", add));
    mem.publish(&reaction(1, "u2", "🎉", add));
    bridge.wait(7).await;
    let mut all = reaction(1, "x", "*", remove);
    all.author = None;
    mem.publish(&all);
    let did = bridge.wait(9).await;
    let mut gone = did[7..].to_vec();
    gone.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(
        gone,
        [
            Did::React(copy.clone(), "🎉".into(), false),
            Did::React(copy, "👍".into(), false)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_copy_leads_to_its_original_and_our_own_deletions_do_not() {
    let mem = Memory::new();
    let bridge = Recorder::new(None, 2000);
    let _run = start(&mem, &bridge);
    mem.publish(&message(1, "spam"));
    mem.publish(&message(2, "fine"));
    bridge.wait(2).await;
    logged(&mem, "ack 2").await;
    // A moderator deletes our copy of m1 (id 100) in `out`.
    let mut deleted = ChatEvent::delete("mem", "out", "100", None);
    deleted.room = "lobby".into();
    mem.publish(&deleted);
    // The original's delete goes out: to `out` too (other parts of the copy).
    let did = bridge.wait(3).await;
    assert_eq!(did[2], Did::Delete(vec!["100".into()]));
    logged(&mem, "ack 4").await;
    // Our own deletion of the copy comes back from the platform: its way
    // back to the original was forgotten first, so nothing follows.
    let mut echo = ChatEvent::delete("mem", "out", "100", None);
    echo.id.push_str(":again");
    echo.room = "lobby".into();
    mem.publish(&echo);
    mem.publish(&message(3, "after"));
    bridge.wait(4).await;
    // m1, m2, the deletion, the original's delete, the record, the echo, m3.
    logged(&mem, "ack 7").await;
    let stream: Vec<String> = mem.published().iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        stream
            .iter()
            .filter(|id| id.as_str() == "src:in:m1:delete")
            .count(),
        1,
        "{stream:?}"
    );
    assert!(
        mem.published()
            .iter()
            .any(|e| e.kind == EventKind::Moderation && e.id == "mem:out:mod:mirror:100")
    );
    assert!(!bridge.did().contains(&Did::Delete(vec!["101".into()])));
}
