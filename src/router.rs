//! Outbound routing: from the stream to the channels of one bridge.
//!
//! Per bridge, one durable consumer (see `Bus::outbound_consumer`) feeds a
//! dispatcher that works out each event's destinations (the bridge's writable
//! channels in the event's room, minus the source channel, minus what the rules
//! ignore) and hands it to one worker task per destination channel. A worker
//! delivers its channel's events strictly in stream order, paced to the
//! platform's limit, coalescing a backlog, retrying failures with backoff; one
//! slow or broken channel only holds up itself. A stream message is acked once
//! every destination has it — after the channel's record of it landed (the id
//! map entry that later edits and deletes need, and the channel's watermark), so
//! a redelivery (crash, another instance) finds the record and is not posted
//! twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::message::{AckKind, Acker};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::bridge::{Action, Bridge, DeliverError, Delivery, default_render};
use crate::bus::{Bus, BusError, IdMap, MarkScope, Posted};
use crate::config::{Config, Rules};
use crate::event::{self, ChatEvent, EventKind};
use crate::ratelimit::Limiter;
use crate::render;

/// Where one bridge's outbound events go, per room.
#[derive(Debug, Default)]
pub struct Routes {
    bridge: String,
    rooms: HashMap<String, RoomRoutes>,
}

#[derive(Debug, Default)]
struct RoomRoutes {
    rules: Rules,
    /// Rules of every channel of the room, by (bridge, channel): a channel's rules
    /// apply to what it sends and to what it receives.
    channel_rules: HashMap<(String, String), Rules>,
    /// This bridge's channels that the room writes to.
    destinations: Vec<String>,
}

impl Routes {
    /// The routes of `bridge` in `config`. Channels of disabled bridges are absent.
    pub fn new(config: &Config, bridge: &str) -> Routes {
        let mut rooms = HashMap::new();
        for room in &config.rooms {
            let destinations: Vec<String> = room
                .channels
                .iter()
                .filter(|c| c.bridge == bridge && c.direction.writes())
                .map(|c| c.channel.clone())
                .collect();
            if destinations.is_empty() {
                continue;
            }
            let channel_rules = room
                .channels
                .iter()
                .filter(|c| !c.rules.is_empty())
                .map(|c| ((c.bridge.clone(), c.channel.clone()), c.rules.clone()))
                .collect();
            rooms.insert(
                room.name.clone(),
                RoomRoutes {
                    rules: room.rules.clone(),
                    channel_rules,
                    destinations,
                },
            );
        }
        Routes {
            bridge: bridge.to_string(),
            rooms,
        }
    }

    /// Stream filters covering every room this bridge writes to.
    pub fn filters(&self) -> Vec<String> {
        let mut f: Vec<String> = self.rooms.keys().map(|r| event::room_filter(r)).collect();
        f.sort();
        f
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The channels of this bridge that should receive `ev`.
    pub fn destinations<'a>(&'a self, ev: &ChatEvent) -> Vec<&'a str> {
        let Some(room) = self.rooms.get(&ev.room) else {
            return Vec::new();
        };
        let source_key = (ev.source.bridge.clone(), ev.source.channel.clone());
        // Rules decide what is relayed; a delete of something never relayed finds no
        // copy and does nothing, so deletes pass.
        let filtered = ev.kind != EventKind::Delete;
        if filtered
            && (ignored(&room.rules, ev)
                || room
                    .channel_rules
                    .get(&source_key)
                    .is_some_and(|r| ignored(r, ev)))
        {
            return Vec::new();
        }
        room.destinations
            .iter()
            // Never back to where it came from.
            .filter(|ch| !(ev.source.bridge == self.bridge && ev.source.channel == **ch))
            .filter(|ch| {
                !filtered
                    || !room
                        .channel_rules
                        .get(&(self.bridge.clone(), (*ch).clone()))
                        .is_some_and(|r| ignored(r, ev))
            })
            .map(String::as_str)
            .collect()
    }
}

/// Whether `rules` say `ev` is not relayed.
pub fn ignored(rules: &Rules, ev: &ChatEvent) -> bool {
    if let Some(a) = &ev.author {
        let id = a.id.to_lowercase();
        let name = a.name.to_lowercase();
        if rules.ignore_authors.iter().any(|x| *x == id || *x == name) {
            return true;
        }
    }
    let plain = render::markup_to_plain(&ev.text);
    rules.ignore_text.iter().any(|re| re.is_match(&plain))
}

/// One stream message awaiting its destinations.
struct Tracker {
    seq: u64,
    remaining: AtomicUsize,
    acker: tokio::sync::Mutex<Acker>,
    settled: AtomicBool,
}

impl Tracker {
    /// One destination is done; the last one acks the stream message.
    async fn done(&self, inflight: &Inflight) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settle(inflight, AckKind::Ack).await;
        }
    }

    /// Give the message back to JetStream for immediate redelivery (shutdown with
    /// work left); destinations already done are skipped then via the id map.
    async fn abandon(&self, inflight: &Inflight) {
        self.settle(inflight, AckKind::Nak(None)).await;
    }

    async fn settle(&self, inflight: &Inflight, kind: AckKind) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        inflight.lock().remove(&self.seq);
        if let Err(e) = self.acker.lock().await.ack_with(kind).await {
            // JetStream redelivers an unacked message; the id map prevents a repost.
            tracing::warn!(seq = self.seq, error = %e, "ack failed");
        }
    }
}

#[derive(Clone, Default)]
struct Inflight(Arc<std::sync::Mutex<HashMap<u64, Arc<Tracker>>>>);

impl Inflight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A unit of work for one channel worker.
struct Item {
    event: Arc<ChatEvent>,
    tracker: Arc<Tracker>,
    /// JetStream delivered it before: check the id map before posting.
    redelivered: bool,
    received: Instant,
}

/// Timing knobs of outbound delivery.
#[derive(Debug, Clone, Copy)]
pub struct OutboundTiming {
    /// How long workers may keep delivering after shutdown begins.
    pub drain: Duration,
    /// When this process started: where a brand-new consumer begins.
    pub since: time::OffsetDateTime,
}

/// How long an outbound lease lasts without renewal: a crashed leader's
/// deliveries are taken over after at most this long.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// Deliver the stream to `bridge`'s channels until `shutdown`, then drain.
///
/// Several instances may run with the same config: each bridge's deliveries are
/// done by one of them at a time (the holder of the lease `out-<bridge>`), so each
/// channel gets every event once and in stream order. A standby takes over when
/// the holder stops renewing (crash) or gives the lease up (shutdown).
pub async fn run_outbound(
    bus: Bus,
    bridge: Arc<dyn Bridge>,
    routes: Arc<Routes>,
    timing: OutboundTiming,
    shutdown: CancellationToken,
) {
    let name = bridge.name().to_string();
    let span = tracing::info_span!("outbound", bridge = %name);
    async move {
        if routes.is_empty() {
            tracing::debug!("no channel to write to");
            return;
        }
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let (idmap, mut lease) = loop {
            let holder = format!("{}-{}", std::process::id(), ulid::Ulid::generate());
            match (
                bus.id_map(&name).await,
                bus.lease(&format!("out-{name}"), &holder, LEASE_TTL).await,
            ) {
                (Ok(m), Ok(l)) => break (m, l),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "outbound state not ready, retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        };
        let recent = Recent::default();
        loop {
            // Wait for the lease.
            let mut announced = false;
            while !lease.try_acquire().await {
                if !announced {
                    tracing::info!("standing by: another instance delivers for this bridge");
                    announced = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(LEASE_TTL / 3) => {}
                }
            }
            tracing::info!("delivering for this bridge");
            let ended = lead(
                &bus, &bridge, &routes, &idmap, &recent, &mut lease, timing, &shutdown,
            )
            .await;
            lease.release().await;
            if ended == Leadership::Shutdown {
                break;
            }
            tracing::warn!("lost the delivery lease; standing by");
        }
        tracing::info!("outbound stopped");
    }
    .instrument(span)
    .await
}

#[derive(Debug, PartialEq, Eq)]
enum Leadership {
    Shutdown,
    Lost,
}

/// Deliver while holding the lease; returns why it stopped. Workers get
/// `timing.drain` to finish what they hold; the rest goes back to JetStream.
#[allow(clippy::too_many_arguments)]
async fn lead(
    bus: &Bus,
    bridge: &Arc<dyn Bridge>,
    routes: &Arc<Routes>,
    idmap: &IdMap,
    recent: &Recent,
    lease: &mut crate::bus::Lease,
    timing: OutboundTiming,
    shutdown: &CancellationToken,
) -> Leadership {
    let name = bridge.name().to_string();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let hard_stop = CancellationToken::new();
    let inflight = Inflight::default();
    let mut workers: HashMap<String, mpsc::UnboundedSender<Item>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut renew = tokio::time::interval(LEASE_TTL / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await;
    let mut renewed = Instant::now();
    let mut first = true;
    let ended = 'outer: loop {
        // Only the first consumer of a leadership checks for a predecessor's
        // unfinished work; later ones (after a NATS hiccup) are our own.
        let created = if first {
            bus.take_over_outbound(&name, routes.filters(), timing.since)
                .await
        } else {
            bus.outbound_consumer(&name, routes.filters(), timing.since)
                .await
                .map(|c| (c, 0))
        };
        let created = match created {
            Ok(c) => bus.stream_epoch().await.map(|epoch| (c, epoch)),
            Err(e) => Err(e),
        };
        let ((consumer, verify_until), epoch) = match created {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "consumer not ready, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break 'outer Leadership::Shutdown,
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
        };
        first = false;
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read consumer, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break 'outer Leadership::Shutdown,
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
        };
        tracing::info!(filters = ?routes.filters(), "reading the stream");
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'outer Leadership::Shutdown,
                _ = renew.tick() => {
                    match lease.renew().await {
                        crate::bus::Renewal::Renewed => renewed = Instant::now(),
                        crate::bus::Renewal::Lost => break 'outer Leadership::Lost,
                        // NATS away: keep going while the lease surely still holds
                        // (nobody can take it without NATS), and stop well before it
                        // can expire for a standby.
                        crate::bus::Renewal::Unreachable => {
                            if renewed.elapsed() > LEASE_TTL * 2 / 3 {
                                break 'outer Leadership::Lost;
                            }
                        }
                    }
                    continue;
                }
                next = messages.next() => next,
            };
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    // Heartbeats missed (NATS restarting) or the consumer went
                    // away: build it again.
                    tracing::warn!(error = %e, "consumer read failed, resubscribing");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'outer Leadership::Shutdown,
                        _ = tokio::time::sleep(backoff.next_delay()) => continue 'outer,
                    }
                }
                None => continue 'outer,
            };
            backoff.reset();
            let (seq, delivered, pending) = match msg.info() {
                Ok(i) => (i.stream_sequence, i.delivered, i.pending),
                Err(e) => {
                    tracing::warn!(error = %e, "message without JetStream metadata");
                    continue;
                }
            };
            metrics::gauge!("jetbridge_consumer_pending", "bridge" => name.clone())
                .set(pending as f64);
            let (message, acker) = msg.split();
            let held = inflight.lock().get(&seq).cloned();
            if let Some(t) = held {
                // Redelivered while we still hold it (a slow channel outlived
                // ack_wait): it is already queued; ack with the newest handle.
                *t.acker.lock().await = acker;
                continue;
            }
            let ev: ChatEvent = match serde_json::from_slice(&message.payload) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(seq, subject = %message.subject, error = %e, "not a chat event, skipping");
                    metrics::counter!("jetbridge_delivery_failures_total", "bridge" => name.clone(), "reason" => "invalid_event").increment(1);
                    let _ = acker.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let destinations = routes.destinations(&ev);
            if destinations.is_empty() {
                let _ = acker.ack().await;
                continue;
            }
            let tracker = Arc::new(Tracker {
                seq,
                remaining: AtomicUsize::new(destinations.len()),
                acker: tokio::sync::Mutex::new(acker),
                settled: AtomicBool::new(false),
            });
            inflight.lock().insert(seq, tracker.clone());
            let ev = Arc::new(ev);
            for ch in destinations {
                let tx = workers.entry(ch.to_string()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    // A channel belongs to one room (the config refuses a second).
                    let scope = Arc::new(MarkScope {
                        stream: epoch.clone(),
                        room: ev.room.clone(),
                    });
                    let worker = Worker {
                        bridge: bridge.clone(),
                        channel: ch.to_string(),
                        idmap: idmap.clone(),
                        inflight: inflight.clone(),
                        limiter: Limiter::new(bridge.spec().rate),
                        hard_stop: hard_stop.clone(),
                        recent: recent.clone(),
                        ledger: Ledger::start(
                            idmap.clone(),
                            ch.to_string(),
                            scope.clone(),
                            inflight.clone(),
                            hard_stop.clone(),
                        ),
                        scope,
                        watermark: None,
                    };
                    let span = tracing::info_span!("channel", channel = %ch);
                    tasks.spawn(worker.run(rx).instrument(span));
                    tx
                });
                let _ = tx.send(Item {
                    event: ev.clone(),
                    tracker: tracker.clone(),
                    // Delivered before, by us or a predecessor: check the id map.
                    redelivered: delivered > 1 || seq <= verify_until,
                    received: Instant::now(),
                });
            }
        }
    };
    // Stop feeding. On shutdown, let workers finish their queues until the drain
    // deadline; with the lease lost, another instance now delivers: stop at once.
    drop(workers);
    let drain = if ended == Leadership::Shutdown {
        timing.drain
    } else {
        Duration::ZERO
    };
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            _ = &mut deadline => {
                hard_stop.cancel();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    ended
}

struct Worker {
    bridge: Arc<dyn Bridge>,
    channel: String,
    idmap: IdMap,
    inflight: Inflight,
    limiter: Limiter,
    hard_stop: CancellationToken,
    /// What was posted lately in this bridge (shared by its workers and kept
    /// across leaderships), so that an edit or delete right behind its message,
    /// or a redelivery after NATS failed, finds the copy before (or without) the
    /// id map write having landed.
    recent: Recent,
    /// Records and acks of what this channel posted, written beside the next
    /// deliveries.
    ledger: Ledger,
    /// Where this channel's watermark holds.
    scope: Arc<MarkScope>,
    /// The channel's stored watermark, read at the first redelivery.
    watermark: Option<u64>,
}

/// Recent posts of one bridge, by (channel, event id).
type Recent = Arc<std::sync::Mutex<RecentPosts>>;

/// Posts of a channel whose records (and acks) may be under way at once; also
/// the most posts of a channel that a crash of the process can repeat. At
/// platform pace a record lands long before the next post, so this binds only
/// when posts come faster than NATS round trips (pacing off, NATS slow).
pub const RECORDING_DEPTH: usize = 64;

/// Writes what one channel posted, beside its next deliveries: the id map
/// entries that later edits, deletes and replies need (for platforms that give
/// ids), then the channel's watermark, then the acks. Posts that pile up while a
/// write is under way share the next round, so a fast channel costs one
/// watermark write per NATS round trip rather than a write per post.
struct Ledger {
    tx: Option<mpsc::UnboundedSender<Entry>>,
    slots: Arc<Semaphore>,
    task: Option<JoinHandle<()>>,
    hard_stop: CancellationToken,
}

struct Entry {
    tracker: Arc<Tracker>,
    /// Event id and copy, when the copy has something to find later.
    record: Option<(String, Posted)>,
    _slot: OwnedSemaphorePermit,
}

impl Ledger {
    fn start(
        idmap: IdMap,
        channel: String,
        scope: Arc<MarkScope>,
        inflight: Inflight,
        hard_stop: CancellationToken,
    ) -> Ledger {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(
            Self::keep(rx, idmap, channel, scope, inflight, hard_stop.clone()).in_current_span(),
        );
        Ledger {
            tx: Some(tx),
            slots: Arc::new(Semaphore::new(RECORDING_DEPTH)),
            task: Some(task),
            hard_stop,
        }
    }

    /// Queue the record of a post; waits while `RECORDING_DEPTH` are under way.
    /// False when stopped meanwhile.
    async fn add(&self, tracker: Arc<Tracker>, record: Option<(String, Posted)>) -> bool {
        let slot = tokio::select! {
            slot = self.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = self.hard_stop.cancelled() => return false,
        };
        let Some(tx) = &self.tx else { return false };
        tx.send(Entry {
            tracker,
            record,
            _slot: slot,
        })
        .is_ok()
    }

    /// Write what was queued, then stop.
    async fn finish(&mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn keep(
        mut rx: mpsc::UnboundedReceiver<Entry>,
        idmap: IdMap,
        channel: String,
        scope: Arc<MarkScope>,
        inflight: Inflight,
        hard_stop: CancellationToken,
    ) {
        let mut round = Vec::with_capacity(RECORDING_DEPTH);
        while rx.recv_many(&mut round, RECORDING_DEPTH).await > 0 {
            // Entries come in stream order; the last is the channel's new mark.
            let through = round.last().map_or(0, |e: &Entry| e.tracker.seq);
            let records = futures::future::join_all(round.iter().filter_map(|e| {
                let (id, posted) = e.record.as_ref()?;
                Some(until_done(id, || idmap.put(&channel, id, posted)))
            }));
            let mark = until_done("watermark", || {
                idmap.put_watermark(&channel, &scope, through)
            });
            tokio::select! {
                _ = futures::future::join(records, mark) => {}
                // Not recorded, so not acked: JetStream redelivers it.
                _ = hard_stop.cancelled() => return,
            }
            for e in round.drain(..) {
                e.tracker.done(&inflight).await;
            }
        }
    }
}

/// Retry a record write until it lands (NATS away: the ack waits for it).
async fn until_done<F, Fut>(what: &str, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), BusError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    while let Err(e) = write().await {
        tracing::warn!(record = what, error = %e, "cannot record delivery yet");
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// A bounded memory of recent posts: key → copy.
#[derive(Default)]
struct RecentPosts {
    map: HashMap<String, Posted>,
    order: VecDeque<String>,
}

impl RecentPosts {
    const MAX: usize = 8192;

    /// Remember (or update) the copy of `id`.
    fn insert(&mut self, id: &str, posted: &Posted) {
        if self.map.insert(id.to_string(), posted.clone()).is_none() {
            self.order.push_back(id.to_string());
            if self.order.len() > Self::MAX
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<&Posted> {
        self.map.get(id)
    }
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Item>) {
        let mut queue: VecDeque<Item> = VecDeque::new();
        let mut closed = false;
        loop {
            while let Ok(item) = rx.try_recv() {
                queue.push_back(item);
            }
            if queue.is_empty() {
                if closed {
                    break;
                }
                tokio::select! {
                    item = rx.recv() => match item {
                        Some(item) => queue.push_back(item),
                        None => closed = true,
                    },
                    _ = self.hard_stop.cancelled() => break,
                }
                continue;
            }
            let wait = self.limiter.delay(Instant::now());
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.hard_stop.cancelled() => break,
                }
                // More may have queued meanwhile: coalesce with it.
                continue;
            }
            let batch = self.take_batch(&mut queue);
            if !self.deliver(batch).await {
                break;
            }
        }
        // Stopped with work left: hand it back to JetStream.
        for item in queue
            .drain(..)
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            item.tracker.abandon(&self.inflight).await;
        }
        // What was posted is recorded and acked before the worker ends.
        self.ledger.finish().await;
    }

    /// The head of the queue, plus the messages behind it when the channel is
    /// behind by more than `coalesce_after` and they fit in one post. Coalesced
    /// lines use the template (`format`), so each keeps its author even where a
    /// single post would otherwise carry one author's name (webhooks, Slack).
    fn take_batch(&self, queue: &mut VecDeque<Item>) -> Vec<(Item, Vec<String>)> {
        // Queue is non-empty here (checked by the caller).
        let head = queue.pop_front().expect("non-empty queue");
        let coalesce_after = self.bridge.common().coalesce_after;
        let lagging = head.received.elapsed() >= coalesce_after;
        let coalescible = |ev: &ChatEvent| ev.kind == EventKind::Message && ev.reply_to.is_none();
        if !(lagging
            && coalescible(&head.event)
            && queue.front().is_some_and(|n| coalescible(&n.event)))
        {
            let parts = self.bridge.render(&head.event, &self.channel);
            return vec![(head, parts)];
        }
        let spec = self.bridge.spec();
        let head_line = default_render(self.bridge.as_ref(), &head.event, &self.channel);
        if head_line.len() != 1 {
            let parts = self.bridge.render(&head.event, &self.channel);
            return vec![(head, parts)];
        }
        let mut len = render::char_len(&head_line[0]);
        let mut batch = vec![(head, head_line)];
        while let Some(next) = queue.front() {
            if !coalescible(&next.event) {
                break;
            }
            let line = default_render(self.bridge.as_ref(), &next.event, &self.channel);
            let add =
                render::char_len(spec.joiner) + line.first().map_or(0, |p| render::char_len(p));
            if line.len() != 1 || len + add > spec.max_chars {
                break;
            }
            len += add;
            // front() was Some.
            let item = queue.pop_front().expect("peeked item");
            batch.push((item, line));
        }
        if batch.len() == 1 {
            // Nothing joined it after all: post it the usual way.
            let (head, _) = batch.pop().expect("one item");
            let parts = self.bridge.render(&head.event, &self.channel);
            return vec![(head, parts)];
        }
        batch
    }

    /// Deliver a batch (one event, or several coalesced into one post). Returns
    /// false when stopped before it was done.
    async fn deliver(&mut self, mut batch: Vec<(Item, Vec<String>)>) -> bool {
        // Skip what an earlier delivery already posted (crash, failover, NATS
        // restart). Our own recent posts are always checked (memory is cheap, and
        // a NATS crash can lose the consumer's record of what it delivered); the
        // id map only for what JetStream says it delivered before.
        let known = |i: &Item| self.remembered(&i.event.id).is_some();
        if batch.iter().any(|(i, _)| i.redelivered || known(i)) {
            let mut kept = Vec::with_capacity(batch.len());
            for (item, parts) in batch {
                let seen = self.remembered(&item.event.id).is_some()
                    || (item.redelivered && self.delivered_before(&item).await);
                if seen {
                    tracing::debug!(event_id = %item.event.id, "already delivered");
                    item.tracker.done(&self.inflight).await;
                } else {
                    kept.push((item, parts));
                }
            }
            batch = kept;
            if batch.is_empty() {
                return true;
            }
        }
        let head = &batch[0].0;
        let ev = head.event.clone();
        let spec = self.bridge.spec();
        // Look up the copies this event refers to.
        let referenced = match ev.kind {
            EventKind::Message => ev.reply_to.clone(),
            EventKind::Edit | EventKind::Delete => ev.target.clone(),
        };
        let reference = match referenced {
            Some(id) => match self.lookup(&id).await {
                Some(p) => Some(p),
                None if ev.kind != EventKind::Message => {
                    // Nothing of ours to edit or delete in this channel.
                    head.tracker.done(&self.inflight).await;
                    return true;
                }
                None => None,
            },
            None => None,
        };
        if ev.kind == EventKind::Edit && !spec.can_edit {
            head.tracker.done(&self.inflight).await;
            return true;
        }
        // The copy is a coalesced post: edits of one member are ignored; deleting
        // one drops its line (or the post, with the last line).
        let mut shrunk: Option<Posted> = None;
        if let Some(c) = reference.as_ref().and_then(|r| r.combined.clone()) {
            let target = ev.target.clone().unwrap_or_default();
            let pos = c.members.iter().position(|m| *m == target);
            let done_now = match (ev.kind, pos) {
                (EventKind::Delete, Some(i)) => {
                    let mut rest = c.clone();
                    rest.members.remove(i);
                    rest.lines.remove(i);
                    if rest.members.is_empty() {
                        false
                    } else if spec.can_edit {
                        let mut updated =
                            reference.clone().expect("reference with a combined post");
                        updated.combined = Some(rest);
                        shrunk = Some(updated);
                        false
                    } else {
                        true
                    }
                }
                _ => true,
            };
            if done_now {
                head.tracker.done(&self.inflight).await;
                return true;
            }
        }
        let parts: Vec<String> = if let Some(c) = shrunk.as_ref().and_then(|p| p.combined.as_ref())
        {
            vec![c.lines.join(spec.joiner)]
        } else if batch.len() == 1 {
            batch[0].1.clone()
        } else {
            vec![
                batch
                    .iter()
                    .map(|(_, p)| p[0].as_str())
                    .collect::<Vec<_>>()
                    .join(spec.joiner),
            ]
        };
        let n_parts = parts.len().max(1);
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let posted = loop {
            let action = match ev.kind {
                EventKind::Message => Action::Post {
                    parts: parts.clone(),
                    reply_to: reference.as_ref(),
                },
                // `reference` is Some for edits and deletes (checked above).
                EventKind::Edit => Action::Edit {
                    target: reference.as_ref().expect("edit target"),
                    parts: parts.clone(),
                },
                EventKind::Delete if shrunk.is_some() => Action::Edit {
                    target: reference.as_ref().expect("delete target"),
                    parts: parts.clone(),
                },
                EventKind::Delete => Action::Delete {
                    target: reference.as_ref().expect("delete target"),
                },
            };
            let delivery = Delivery {
                channel: &self.channel,
                event: &ev,
                action,
                combined: batch.len() > 1,
            };
            let wait = match self.bridge.deliver(delivery).await {
                Ok(posted) => break Some(posted),
                Err(DeliverError::Reject(reason)) => {
                    tracing::error!(event_id = %ev.id, %reason, "delivery rejected, skipping");
                    self.count_failure("rejected");
                    break None;
                }
                Err(DeliverError::RateLimited(after)) => {
                    tracing::warn!(event_id = %ev.id, retry_after = ?after, "rate limited by platform");
                    self.count_failure("rate_limited");
                    self.limiter.block_for(Instant::now(), after);
                    after
                }
                Err(DeliverError::Retry(reason)) => {
                    let d = backoff.next_delay();
                    tracing::warn!(event_id = %ev.id, %reason, retry_in = ?d, "delivery failed, retrying");
                    self.count_failure("retry");
                    d
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.hard_stop.cancelled() => {
                    for (item, _) in &batch {
                        item.tracker.abandon(&self.inflight).await;
                    }
                    return false;
                }
            }
        };
        let now = Instant::now();
        for _ in 0..n_parts {
            self.limiter.record(now);
        }
        let bridge = self.bridge.name().to_string();
        let room = ev.room.clone();
        // A shrunk combined post: its remaining members' records follow.
        if let Some(updated) = &shrunk
            && posted.is_some()
        {
            for member in updated.combined.iter().flat_map(|c| c.members.iter()) {
                self.remember(member, updated);
                if let Err(e) = self.idmap.put(&self.channel, member, updated).await {
                    tracing::warn!(event_id = %member, error = %e, "cannot update a combined post's record");
                }
            }
        }
        let posted = posted.map(|mut p| {
            if batch.len() > 1 {
                p.combined = Some(crate::bus::Combined {
                    members: batch.iter().map(|(i, _)| i.event.id.clone()).collect(),
                    lines: batch.iter().map(|(_, l)| l[0].clone()).collect(),
                });
            }
            p
        });
        for (item, _) in &batch {
            if let Some(posted) = &posted {
                self.remember(&item.event.id, posted);
                let latency = (chrono::Utc::now() - item.event.ts)
                    .to_std()
                    .unwrap_or_default();
                metrics::histogram!("jetbridge_relay_latency_seconds", "bridge" => bridge.clone())
                    .record(latency.as_secs_f64());
            }
            tracing::debug!(event_id = %item.event.id, "delivered");
            metrics::counter!("jetbridge_messages_out_total", "bridge" => bridge.clone(), "room" => room.clone(), "kind" => item.event.kind.as_str())
                .increment(1);
            // Record, then ack: a redelivery after a crash in between finds the
            // record. Both run beside the next deliveries, so the channel does not
            // wait a NATS round trip per post; order between posts is unaffected.
            let record = posted
                .as_ref()
                .filter(|p| p.can_be_referenced())
                .map(|p| (item.event.id.clone(), p.clone()));
            if !self.ledger.add(item.tracker.clone(), record).await {
                return false;
            }
        }
        if batch.len() > 1 {
            tracing::info!(messages = batch.len(), "coalesced a backlog into one post");
            metrics::counter!("jetbridge_coalesced_total", "bridge" => bridge)
                .increment(batch.len() as u64);
        }
        true
    }

    fn remembered(&self, event_id: &str) -> Option<Posted> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.get(&IdMap::key(&self.channel, event_id)).cloned()
    }

    fn remember(&self, event_id: &str, posted: &Posted) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.insert(&IdMap::key(&self.channel, event_id), posted);
    }

    /// Whether a redelivered item was handled before (by us or a predecessor):
    /// at or below the channel's watermark, or with an id map entry.
    async fn delivered_before(&mut self, item: &Item) -> bool {
        if self.watermark.is_none() {
            match self.idmap.watermark(&self.channel, &self.scope).await {
                Ok(w) => self.watermark = Some(w.unwrap_or(0)),
                // Unknown for now: the id map may still tell; asked again next time.
                Err(e) => tracing::warn!(error = %e, "cannot read the channel's watermark"),
            }
        }
        if self.watermark.is_some_and(|w| item.tracker.seq <= w) {
            return true;
        }
        matches!(
            self.idmap.get(&self.channel, &item.event.id).await,
            Ok(Some(_))
        )
    }

    async fn lookup(&self, event_id: &str) -> Option<Posted> {
        if let Some(p) = self.remembered(event_id) {
            return Some(p);
        }
        match self.idmap.get(&self.channel, event_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(event_id, error = %e, "id map lookup failed");
                None
            }
        }
    }

    fn count_failure(&self, reason: &'static str) {
        metrics::counter!("jetbridge_delivery_failures_total", "bridge" => self.bridge.name().to_string(), "reason" => reason)
            .increment(1);
    }
}
