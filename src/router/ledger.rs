//! The ledger of one channel: what it posted, written beside its next
//! deliveries. Each round writes the records later edits, deletes and replies
//! need (for platforms that give ids), once each post was answered; the
//! round's watermark then goes beside the next round's records, and its posts
//! are acked once the mark landed.
//! Posts that pile up while a write is under way share the next round, so a
//! fast channel costs one NATS round trip per round rather than a write per
//! post. A copy whose ids come later (Twitch's answer to a line) is
//! recorded once they came, and its post acked only then.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Records;
use super::tracker::{Inflight, Tracker};
use crate::backoff::Backoff;
use crate::bridge::{Later, Posted};
use crate::bus::{BusError, MarkScope};

/// Posts of a channel whose records (and acks) may be under way at once; also
/// the most posts of a channel that a crash of the process can repeat. At
/// platform pace a record lands long before the next post, so this binds only
/// when posts come faster than NATS round trips (pacing off, NATS slow).
pub const RECORDING_DEPTH: usize = 64;

pub struct Ledger {
    tx: Option<mpsc::UnboundedSender<Entry>>,
    slots: Arc<Semaphore>,
    task: Option<JoinHandle<()>>,
    hard_stop: CancellationToken,
}

struct Entry {
    tracker: Arc<Tracker>,
    /// Event id and copy, when the copy has something to find later.
    record: Option<(String, Posted)>,
    /// Told the copy's ids once its record is written, when they were still
    /// to come (see [`Ledger::add`]).
    recorded: Option<oneshot::Sender<Vec<String>>>,
    _slot: OwnedSemaphorePermit,
}

/// The ledger stopped before the entry was queued.
#[derive(Debug)]
pub struct Stopped;

impl Ledger {
    /// With `back_links`, each copy's platform ids are recorded as leading
    /// back to its event (see `Records::put`).
    pub fn start(
        records: Arc<dyn Records>,
        channel: String,
        back_links: bool,
        scope: Arc<MarkScope>,
        inflight: Inflight,
        hard_stop: CancellationToken,
    ) -> Ledger {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(
            keep(
                rx,
                records,
                channel,
                back_links,
                scope,
                inflight,
                hard_stop.clone(),
            )
            .in_current_span(),
        );
        Ledger {
            tx: Some(tx),
            slots: Arc::new(Semaphore::new(RECORDING_DEPTH)),
            task: Some(task),
            hard_stop,
        }
    }

    /// Queue the record of a post; waits while `RECORDING_DEPTH` are under way.
    /// A copy whose ids are still to come is recorded once they came; then
    /// what is returned gives them, so that an edit or delete of the copy
    /// acts only after its record (and the way back from the copy) landed.
    pub async fn add(
        &self,
        tracker: Arc<Tracker>,
        record: Option<(String, Posted)>,
    ) -> Result<Option<Later>, Stopped> {
        let slot = tokio::select! {
            slot = self.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = self.hard_stop.cancelled() => return Err(Stopped),
        };
        let (recorded, ids) = match record.as_ref().is_some_and(|(_, p)| p.later.is_some()) {
            true => {
                let (tell, ids) = oneshot::channel();
                // Stopped before: no ids (the copy is found as unknown).
                let later = Later::new(async move { ids.await.unwrap_or_default() }.boxed());
                (Some(tell), Some(later))
            }
            false => (None, None),
        };
        let tx = self.tx.as_ref().ok_or(Stopped)?;
        tx.send(Entry {
            tracker,
            record,
            recorded,
            _slot: slot,
        })
        .map_err(|_| Stopped)?;
        Ok(ids)
    }

    /// Write what was queued, then stop.
    pub async fn finish(&mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn keep(
    mut rx: mpsc::UnboundedReceiver<Entry>,
    records: Arc<dyn Records>,
    channel: String,
    back_links: bool,
    scope: Arc<MarkScope>,
    inflight: Inflight,
    hard_stop: CancellationToken,
) {
    let mut round = Vec::with_capacity(RECORDING_DEPTH);
    // The round whose records landed and whose mark is still to write.
    let mut marking: Vec<Entry> = Vec::with_capacity(RECORDING_DEPTH);
    loop {
        if marking.is_empty() {
            if rx.recv_many(&mut round, RECORDING_DEPTH).await == 0 {
                return;
            }
        } else {
            // Only what is already there: the mark must not wait for posts.
            while round.len() < RECORDING_DEPTH {
                let Ok(entry) = rx.try_recv() else { break };
                round.push(entry);
            }
        }
        // The mark says every post up to it arrived, and a successor skips
        // what it covers: it goes only once each post it covers was answered
        // (a line still in flight when the process dies may never have
        // arrived). It travels beside the next round's records, so a busy
        // channel still pays one NATS round trip per round.
        let mark = async {
            // Entries come in stream order; the last is the channel's new mark.
            let Some(through) = marking.last().map(|e| e.tracker.seq) else {
                return;
            };
            until_done("watermark", || {
                records.put_watermark(&channel, &scope, through)
            })
            .await;
            for e in marking.drain(..) {
                e.tracker.done(&inflight).await;
            }
        };
        let writes = record(&mut round, &records, &channel, back_links);
        tokio::select! {
            _ = futures::future::join(mark, writes) => {}
            // Not marked, so not acked: JetStream redelivers it.
            _ = hard_stop.cancelled() => return,
        }
        std::mem::swap(&mut marking, &mut round);
    }
}

/// Write the records of `round`, each once its post was answered, and tell
/// whoever waits for a copy's ids.
async fn record(round: &mut [Entry], records: &Arc<dyn Records>, channel: &str, back_links: bool) {
    futures::future::join_all(round.iter_mut().filter_map(|e| {
        let (id, posted) = e.record.as_ref()?;
        let recorded = e.recorded.take();
        Some(async move {
            let posted = posted.clone().settled().await;
            if posted.can_be_referenced() {
                until_done(id, || records.put(channel, id, &posted, back_links)).await;
            }
            if let Some(tell) = recorded {
                let _ = tell.send(posted.ids);
            }
        })
    }))
    .await;
}

/// Retry a record write until it lands (NATS away: the ack waits for it).
pub async fn until_done<F, Fut>(what: &str, mut write: F)
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
