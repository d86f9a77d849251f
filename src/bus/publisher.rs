//! Inbound publishing: a bounded queue drained in order by one task, through a
//! window of PubAcks. While NATS is connected a full queue makes bridges wait
//! (a burst slows the platform reads down); while it is away the oldest events
//! are dropped, counted and logged. A stop drains for a bounded time whatever
//! NATS is doing, and says how many events it could not store.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Bus, BusError};
use crate::backoff::Backoff;
use crate::event::ChatEvent;
use crate::status::Health;

/// One event waiting to be published.
struct Pending {
    subject: String,
    id: String,
    payload: Bytes,
    queued: Instant,
}

/// The inbound queue and its publisher. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    queue: Arc<Queue>,
}

struct Queue {
    items: std::sync::Mutex<VecDeque<Pending>>,
    capacity: usize,
    notify: Notify,
    /// Signalled when the publisher takes items out (room in the queue).
    space: Notify,
    dropped: AtomicU64,
    health: Health,
    /// Named at first use (the recorder is installed by then), not per event.
    depth_gauge: std::sync::OnceLock<metrics::Gauge>,
}

/// How many publishes are in flight (sent, PubAck awaited) at once.
const PUBLISH_WINDOW: usize = 256;

impl Publisher {
    pub fn new(capacity: usize, health: Health) -> Self {
        Publisher {
            queue: Arc::new(Queue {
                items: std::sync::Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                notify: Notify::new(),
                space: Notify::new(),
                dropped: AtomicU64::new(0),
                health,
                depth_gauge: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Queue an event, waiting for room while NATS is connected: a burst faster
    /// than JetStream takes it slows the platform reads down instead of dropping
    /// anything. While NATS is away the queue drops its oldest (see [`submit`]).
    ///
    /// [`submit`]: Publisher::submit
    pub async fn submit_wait(&self, ev: &ChatEvent) {
        loop {
            let space = self.queue.space.notified();
            if self.depth() < self.queue.capacity || !self.queue.health.nats_connected() {
                self.submit(ev);
                return;
            }
            // Re-check now and then: NATS may go away while we wait.
            let _ = tokio::time::timeout(Duration::from_millis(100), space).await;
        }
    }

    /// Queue an event for publishing. Returns once it is queued (not stored).
    pub fn submit(&self, ev: &ChatEvent) {
        let pending = Pending {
            subject: ev.subject(),
            id: ev.id.clone(),
            payload: Bytes::from(ev.to_json()),
            queued: Instant::now(),
        };
        let dropped = {
            let mut items = self.queue.lock();
            let dropped = if items.len() >= self.queue.capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(pending);
            self.queue.depth_gauge().set(items.len() as f64);
            dropped
        };
        if let Some(d) = dropped {
            let n = self.queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("jetbridge_queue_dropped_total").increment(1);
            tracing::error!(
                event_id = %d.id,
                dropped_total = n,
                capacity = self.queue.capacity,
                "inbound queue full while NATS is unreachable: dropped the oldest event"
            );
        }
        self.queue.notify.notify_one();
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// Events waiting to be published.
    pub fn depth(&self) -> usize {
        self.queue.lock().len()
    }

    async fn next_batch(&self, max: usize) -> Vec<Pending> {
        loop {
            // Register interest before looking, so a submit between the look and
            // the wait is not missed.
            let notified = self.queue.notify.notified();
            {
                let mut items = self.queue.lock();
                if !items.is_empty() {
                    let n = items.len().min(max);
                    let batch: Vec<Pending> = items.drain(..n).collect();
                    self.queue.depth_gauge().set(items.len() as f64);
                    self.queue.space.notify_waiters();
                    return batch;
                }
            }
            notified.await;
        }
    }

    /// Publish queued events in order. Once `shutdown` fires, keep going for at
    /// most `drain` (whatever NATS is doing); stop earlier when `finished` (no
    /// more events will come) has fired and the queue is empty.
    pub async fn run(
        self,
        bus: Bus,
        shutdown: CancellationToken,
        finished: CancellationToken,
        drain: Duration,
    ) {
        let mut stop = StopClock {
            shutdown,
            drain,
            deadline: None,
        };
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
        let mut batch: VecDeque<Pending> = VecDeque::new();
        loop {
            if batch.is_empty() {
                if finished.is_cancelled() && self.depth() == 0 {
                    return;
                }
                let next = stop
                    .bounded(async {
                        tokio::select! {
                            items = self.next_batch(PUBLISH_WINDOW) => Some(items),
                            _ = finished.cancelled() => None,
                        }
                    })
                    .await;
                match next {
                    Some(Some(items)) => batch.extend(items),
                    Some(None) => continue,
                    None => return self.give_up(&batch),
                }
            }
            let Some(result) = stop.bounded(publish_window(&bus.js, &batch)).await else {
                return self.give_up(&batch);
            };
            match result {
                Ok(()) => {
                    batch.clear();
                    backoff.reset();
                }
                Err(WindowFailure {
                    stored_before: first_failed,
                    error: err,
                }) => {
                    // Everything before the first failure is stored; retry the rest
                    // in order. A retried message that was in fact stored collapses
                    // in JetStream's dedupe window.
                    batch.drain(..first_failed);
                    tracing::warn!(error = %err, waiting = batch.len() + self.depth(), "publish failed, retrying");
                    metrics::counter!("jetbridge_publish_retries_total").increment(1);
                    if stop
                        .bounded(tokio::time::sleep(backoff.next_delay()))
                        .await
                        .is_none()
                    {
                        return self.give_up(&batch);
                    }
                }
            }
        }
    }

    /// The drain ran out: say how many events were never confirmed stored.
    fn give_up(&self, in_flight: &VecDeque<Pending>) {
        let lost = in_flight.len() + self.depth();
        if lost > 0 {
            metrics::counter!("jetbridge_queue_lost_at_stop_total").increment(lost as u64);
            tracing::error!(
                lost,
                "stopping with inbound events NATS never acknowledged (not stored)"
            );
        } else {
            tracing::info!("inbound queue drained");
        }
    }
}

/// The drain deadline of a stop, armed when shutdown fires.
struct StopClock {
    shutdown: CancellationToken,
    drain: Duration,
    deadline: Option<tokio::time::Instant>,
}

impl StopClock {
    /// Run `fut` to completion, unless the drain deadline passes first (`None`);
    /// a shutdown that fires meanwhile arms the deadline without interrupting it.
    async fn bounded<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            if self.deadline.is_none() && self.shutdown.is_cancelled() {
                self.deadline = Some(tokio::time::Instant::now() + self.drain);
            }
            let deadline = self.deadline;
            let expiry = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                out = &mut fut => return Some(out),
                _ = self.shutdown.cancelled(), if deadline.is_none() => continue,
                _ = expiry => return None,
            }
        }
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // The queue holds plain data; a panic elsewhere cannot leave it torn.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn depth_gauge(&self) -> &metrics::Gauge {
        self.depth_gauge
            .get_or_init(|| metrics::gauge!("jetbridge_queue_depth"))
    }
}

/// A window that was stored only in part: everything before `stored_before`
/// is stored; that one failed with `error`.
struct WindowFailure {
    stored_before: usize,
    error: BusError,
}

fn window_failure(batch: &VecDeque<Pending>, i: usize, source: super::Source) -> WindowFailure {
    WindowFailure {
        stored_before: i,
        error: BusError::Publish {
            subject: batch[i].subject.to_string(),
            source,
        },
    }
}

async fn publish_window(
    js: &jetstream::Context,
    batch: &VecDeque<Pending>,
) -> Result<(), WindowFailure> {
    let mut acks = Vec::with_capacity(batch.len());
    for (i, p) in batch.iter().enumerate() {
        let publish = jetstream::message::PublishMessage::build()
            .payload(p.payload.clone())
            .message_id(&p.id);
        match js.send_publish(p.subject.clone(), publish).await {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                // Earlier sends may still be acked; wait for them so the index of
                // the first failure is exact.
                return match first_failure(batch, acks).await {
                    Some(f) => Err(f),
                    None => Err(window_failure(batch, i, Box::new(e))),
                };
            }
        }
    }
    let stored = Instant::now();
    match first_failure(batch, acks).await {
        Some(f) => Err(f),
        None => {
            for p in batch {
                metrics::histogram!("jetbridge_publish_latency_seconds")
                    .record(stored.duration_since(p.queued).as_secs_f64());
            }
            metrics::counter!("jetbridge_events_published_total").increment(batch.len() as u64);
            Ok(())
        }
    }
}

async fn first_failure(
    batch: &VecDeque<Pending>,
    acks: Vec<jetstream::context::PublishAckFuture>,
) -> Option<WindowFailure> {
    let mut failed = None;
    for (i, ack) in acks.into_iter().enumerate() {
        let res = ack.await;
        if failed.is_none()
            && let Err(e) = res
        {
            failed = Some(window_failure(batch, i, Box::new(e)));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stop_clock_bounds_work_that_never_ends() {
        let shutdown = CancellationToken::new();
        let mut clock = StopClock {
            shutdown: shutdown.clone(),
            drain: Duration::from_secs(8),
            deadline: None,
        };
        let t0 = tokio::time::Instant::now();
        // Before shutdown, work runs to its end.
        let out = clock
            .bounded(tokio::time::sleep(Duration::from_secs(30)))
            .await;
        assert!(out.is_some());
        // A shutdown in the middle of endless work ends it `drain` later.
        let s = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            s.cancel();
        });
        let t1 = tokio::time::Instant::now();
        let out = clock.bounded(std::future::pending::<()>()).await;
        assert!(out.is_none());
        assert_eq!(t1 - t0, Duration::from_secs(30));
        assert_eq!(tokio::time::Instant::now() - t1, Duration::from_secs(9));
    }
}
