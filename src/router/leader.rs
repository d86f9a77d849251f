//! Leadership and dispatch for one bridge. Several instances may run with the
//! same config: each bridge's deliveries are done by one of them at a time (the
//! holder of the lease `out-<bridge>`), so each channel gets every event once
//! and in stream order. A standby takes over when the holder stops renewing
//! (crash) or gives the lease up (shutdown). The leader reads the bridge's
//! consumer and hands each event to the workers of its destination channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::item::Item;
use super::ledger::Ledger;
use super::meters::Meters;
use super::mirror::{self, Mirror};
use super::recent::Recent;
use super::tracker::{Inflight, Tracker};
use super::worker::Worker;
use super::{Backbone, Lease, Records, Routes};
use crate::backoff::Backoff;
use crate::bridge::Bridge;
use crate::bus::{MarkScope, Renewal};
use crate::event::ChatEvent;
use crate::ratelimit::Limiter;

/// Timing knobs of outbound delivery.
#[derive(Debug, Clone, Copy)]
pub struct OutboundTiming {
    /// How long workers may keep delivering after shutdown begins.
    pub drain: Duration,
    /// When this process started: where a brand-new consumer begins.
    pub since: time::OffsetDateTime,
    /// The wall clock that held messages are timed against.
    pub clock: crate::clock::Clock,
}

/// How long an outbound lease lasts without renewal: a crashed leader's
/// deliveries are taken over after at most this long.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// Deliver the stream to `bridge`'s channels until `shutdown`, then drain.
pub async fn run_outbound(
    backbone: Arc<dyn Backbone>,
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
        let (records, verdicts, mut lease) = loop {
            let holder = format!("{}-{}", std::process::id(), ulid::Ulid::generate());
            let state = async {
                (
                    backbone.records(&name).await,
                    backbone.verdicts().await,
                    backbone
                        .lease(&format!("out-{name}"), &holder, LEASE_TTL)
                        .await,
                )
            };
            let Some(state) = unless_stopped(&shutdown, state).await else {
                return;
            };
            match state {
                (Ok(r), Ok(v), Ok(l)) => break (r, v, l),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    tracing::warn!(error = %e, "outbound state not ready, retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        };
        let recent = Recent::default();
        let mirror = Arc::new(Mirror {
            backbone: backbone.clone(),
            records: records.clone(),
            verdicts: verdicts.clone(),
            routes: routes.clone(),
            recent: recent.clone(),
        });
        let leader = Leader {
            backbone,
            bridge_name: Arc::from(name.as_str()),
            bridge,
            routes,
            records,
            verdicts,
            mirror,
            recent,
            timing,
        };
        loop {
            let mut announced = false;
            loop {
                match unless_stopped(&shutdown, lease.try_acquire()).await {
                    None => return,
                    Some(true) => break,
                    Some(false) => {}
                }
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
            let ended = leader.lead(lease.as_mut(), &shutdown).await;
            // With NATS away this cannot happen; the lease then expires by itself.
            let _ = tokio::time::timeout(Duration::from_secs(1), lease.release()).await;
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

/// `work`, unless `shutdown` fires first (NATS calls can take their full
/// timeout while the server is away; a stop should not wait for them).
async fn unless_stopped<F: std::future::Future>(
    shutdown: &CancellationToken,
    work: F,
) -> Option<F::Output> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        out = work => Some(out),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Leadership {
    Shutdown,
    Lost,
}

/// What stays across leaderships of one bridge.
struct Leader {
    backbone: Arc<dyn Backbone>,
    bridge: Arc<dyn Bridge>,
    bridge_name: Arc<str>,
    routes: Arc<Routes>,
    records: Arc<dyn Records>,
    verdicts: Arc<dyn super::Verdicts>,
    mirror: Arc<Mirror>,
    /// What was posted lately (kept across leaderships).
    recent: Recent,
    timing: OutboundTiming,
}

/// One leadership's workers.
struct Dispatch {
    workers: HashMap<String, mpsc::UnboundedSender<Item>>,
    tasks: JoinSet<()>,
    inflight: Inflight,
    hard_stop: CancellationToken,
}

impl Leader {
    /// Deliver while holding the lease; returns why it stopped. Workers get
    /// `timing.drain` to finish what they hold; the rest goes back to JetStream.
    async fn lead(&self, lease: &mut dyn Lease, shutdown: &CancellationToken) -> Leadership {
        let name = self.bridge.name().to_string();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut dispatch = Dispatch {
            workers: HashMap::new(),
            tasks: JoinSet::new(),
            inflight: Inflight::default(),
            hard_stop: CancellationToken::new(),
        };
        let mut renew = tokio::time::interval(LEASE_TTL / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        let mut renewed = Instant::now();
        // Only the first read of a leadership checks for a predecessor's
        // unfinished work; later ones (after a NATS hiccup) are our own.
        let mut first = true;
        let ended = 'outer: loop {
            let opening =
                self.backbone
                    .open(&name, self.routes.filters(), self.timing.since, first);
            let opened = match unless_stopped(shutdown, opening).await {
                None => break 'outer Leadership::Shutdown,
                Some(Ok(o)) => o,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer not ready, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'outer Leadership::Shutdown,
                        _ = tokio::time::sleep(backoff.next_delay()) => continue,
                    }
                }
            };
            first = false;
            let mut messages = opened.messages;
            tracing::info!(filters = ?self.routes.filters(), "reading the stream");
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break 'outer Leadership::Shutdown,
                    _ = renew.tick() => {
                        let renewal = tokio::time::timeout(LEASE_TTL / 3, lease.renew())
                            .await
                            .unwrap_or(Renewal::Unreachable);
                        match renewal {
                            Renewal::Renewed => renewed = Instant::now(),
                            Renewal::Lost => break 'outer Leadership::Lost,
                            // NATS away: keep going while the lease surely still holds
                            // (nobody can take it without NATS), and stop well before it
                            // can expire for a standby.
                            Renewal::Unreachable => {
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
                metrics::gauge!("jetbridge_consumer_pending", "bridge" => name.clone())
                    .set(msg.pending as f64);
                self.dispatch(&mut dispatch, msg, &opened.epoch, opened.verify_until)
                    .await;
            }
        };
        // Stop feeding. On shutdown, let workers finish their queues until the
        // drain deadline; with the lease lost, another instance now delivers:
        // stop at once.
        let Dispatch {
            workers,
            mut tasks,
            hard_stop,
            ..
        } = dispatch;
        drop(workers);
        let drain = if ended == Leadership::Shutdown {
            self.timing.drain
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

    /// Hand one stream message to the workers of its destinations.
    async fn dispatch(
        &self,
        d: &mut Dispatch,
        msg: super::Incoming,
        epoch: &str,
        verify_until: u64,
    ) {
        let seq = msg.seq;
        let held = d.inflight.lock().get(&seq).cloned();
        if let Some(t) = held {
            // Redelivered while we still hold it: it is already queued.
            t.replace_handle(msg.ack).await;
            return;
        }
        let ev: ChatEvent = match serde_json::from_slice(&msg.payload) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::error!(seq, error = %e, "not a chat event, skipping");
                metrics::counter!("jetbridge_delivery_failures_total", "bridge" => self.bridge.name().to_string(), "reason" => "invalid_event").increment(1);
                if let Err(e) = msg.ack.term().await {
                    // JetStream delivers it again, and it is skipped again.
                    super::tracker::settle_failed(self.bridge.name(), "term", seq, &e);
                }
                return;
            }
        };
        let destinations = self.routes.destinations(&ev);
        let follow = mirror::may_follow(&self.bridge_name, &self.routes, &ev);
        if destinations.is_empty() && !follow {
            if let Err(e) = msg.ack.ack().await {
                // JetStream delivers it again; it still goes nowhere.
                super::tracker::settle_failed(self.bridge.name(), "ack", seq, &e);
            }
            return;
        }
        let tracker = Arc::new(Tracker::new(
            seq,
            self.bridge_name.clone(),
            destinations.len() + usize::from(follow),
            msg.ack,
        ));
        let hold_until = match (ev.kind, self.routes.hold(&ev.room)) {
            (kind, Some(hold)) if kind.is_post() => Some(
                self.timing
                    .clock
                    .instant_at(ev.ts + chrono::Duration::from_std(hold).unwrap_or_default()),
            ),
            _ => None,
        };
        d.inflight.lock().insert(seq, tracker.clone());
        let ev = Arc::new(ev);
        if follow {
            let (mirror, ev, tracker) = (self.mirror.clone(), ev.clone(), tracker.clone());
            let (inflight, hard_stop) = (d.inflight.clone(), d.hard_stop.clone());
            d.tasks.spawn(
                async move {
                    let mut backoff =
                        Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
                    // Not done when stopped: JetStream gives it to the next leader.
                    loop {
                        let followed = tokio::select! {
                            r = mirror.follow(&ev) => r,
                            _ = hard_stop.cancelled() => break tracker.abandon(&inflight).await,
                        };
                        match followed {
                            Ok(()) => break tracker.done(&inflight).await,
                            Err(e) => tracing::warn!(error = %e, event_id = %ev.id, "cannot follow a deleted copy yet"),
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff.next_delay()) => {}
                            _ = hard_stop.cancelled() => break tracker.abandon(&inflight).await,
                        }
                    }
                }
                .in_current_span(),
            );
        }
        for ch in destinations {
            let tx = d.workers.entry(ch.to_string()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                // A channel belongs to one room (the config refuses a second).
                let scope = Arc::new(MarkScope {
                    stream: epoch.to_string(),
                    room: ev.room.clone(),
                });
                let back_links = self.routes.reads(ch);
                let worker = Worker {
                    bridge: self.bridge.clone(),
                    channel: ch.to_string(),
                    back_links,
                    records: self.records.clone(),
                    inflight: d.inflight.clone(),
                    limiter: Limiter::new(self.bridge.spec().rate),
                    hard_stop: d.hard_stop.clone(),
                    recent: self.recent.clone(),
                    ledger: Ledger::start(
                        self.records.clone(),
                        ch.to_string(),
                        back_links,
                        scope.clone(),
                        d.inflight.clone(),
                        d.hard_stop.clone(),
                    ),
                    scope,
                    watermark: None,
                    clock: self.timing.clock,
                    verdicts: self.verdicts.clone(),
                    refused: None,
                    meters: Meters::new(self.bridge.name()),
                };
                let span = tracing::info_span!("channel", channel = %ch);
                d.tasks.spawn(worker.run(rx).instrument(span));
                tx
            });
            let _ = tx.send(Item {
                event: ev.clone(),
                tracker: tracker.clone(),
                // Delivered before, by us or a predecessor: check the records.
                redelivered: msg.delivered > 1 || seq <= verify_until,
                received: Instant::now(),
                due: hold_until,
            });
        }
    }
}
