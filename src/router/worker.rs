//! The worker of one outbound channel: delivers the channel's events strictly
//! in stream order, paced to the platform's limit, coalescing a backlog,
//! retrying failures (a 429 after exactly its retry-after, anything else with
//! backoff), resuming a split post at the part that failed, and skipping what
//! an earlier delivery (crash, failover) already posted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::coalesce::{self, MemberChange};
use super::item::{Item, withdrawn};
use super::ledger::Ledger;
use super::meters::Meters;
use super::recent::Recent;
use super::tracker::Inflight;
use super::{Records, Verdicts};
use crate::backoff::Backoff;
use crate::bridge::{Bridge, Posted};
use crate::bus::{MarkScope, Reactors, Verdict};
use crate::event::{self, EventKind};
use crate::ratelimit::Limiter;

pub struct Worker {
    pub bridge: Arc<dyn Bridge>,
    pub channel: String,
    /// Whether the channel's copies lead back to their originals (see
    /// `Routes::reads`).
    pub back_links: bool,
    pub records: Arc<dyn Records>,
    pub inflight: Inflight,
    pub limiter: Limiter,
    pub hard_stop: CancellationToken,
    pub recent: Recent,
    pub ledger: Ledger,
    /// Where this channel's watermark holds.
    pub scope: Arc<MarkScope>,
    /// The channel's stored watermark, read at the first redelivery.
    pub watermark: Option<u64>,
    /// The wall clock event times are measured against.
    pub clock: crate::clock::Clock,
    /// Where this channel says what it did for a delete carried out
    /// everywhere (a mirrored or console delete).
    pub verdicts: Arc<dyn Verdicts>,
    /// Why the platform refused the last delivery for good, if it did.
    pub refused: Option<String>,
    pub meters: Meters,
}

/// What one delivery does to the channel.
pub(super) enum Plan {
    Post,
    Edit,
    /// Edit a coalesced post to drop a deleted member's line.
    Shrink(Posted),
    Delete,
    /// Add (`true`) or take back the bot's reaction with each emoji, then
    /// keep `reactors`.
    React {
        changes: Vec<(String, bool)>,
        reactors: Reactors,
    },
}

impl Worker {
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Item>) {
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
            // Held back: keep taking what arrives (a delete of it, say) until due.
            if let Some(due) = queue
                .front()
                .and_then(|i| i.due)
                .filter(|d| *d > Instant::now())
            {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    item = rx.recv() => match item {
                        Some(item) => queue.push_back(item),
                        None => closed = true,
                    },
                    _ = self.hard_stop.cancelled() => break,
                }
                continue;
            }
            if let Some(head) = queue.front()
                && head.due.is_some()
                && withdrawn(&queue, &head.event.id)
            {
                // Deleted while held: never posted anywhere.
                if let Some(head) = queue.pop_front() {
                    tracing::info!(event_id = %head.event.id, "deleted during the hold: not relayed");
                    metrics::counter!("jetbridge_held_back_total", "bridge" => self.bridge.name().to_string())
                        .increment(1);
                    head.tracker.done(&self.inflight).await;
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
            let batch = coalesce::take_batch(self.bridge.as_ref(), &self.channel, &mut queue);
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

    /// Deliver a batch (one event, or several coalesced into one post). Returns
    /// false when stopped before it was done.
    async fn deliver(&mut self, mut batch: Vec<(Item, Vec<String>)>) -> bool {
        // Skip what an earlier delivery already posted (crash, failover, NATS
        // restart). Our own recent posts are always checked (memory is cheap, and
        // a NATS crash can lose the consumer's record of what it delivered); the
        // records only for what JetStream says it delivered before.
        let known = |w: &Self, i: &Item| w.recent.contains(&w.channel, &i.event.id);
        if batch.iter().any(|(i, _)| i.redelivered || known(self, i)) {
            let mut kept = Vec::with_capacity(batch.len());
            for (item, parts) in batch {
                let seen =
                    known(self, &item) || (item.redelivered && self.delivered_before(&item).await);
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
        let ev = batch[0].0.event.clone();
        let spec = self.bridge.spec();
        // The copy this event refers to, in this channel.
        let referenced = match ev.kind {
            EventKind::Message | EventKind::Notice => ev.reply_to.as_deref(),
            EventKind::Edit | EventKind::Delete => ev.target.as_deref(),
            EventKind::Reaction if spec.can_react => ev.target.as_deref(),
            // Nothing to do here: a platform without reactions, and what
            // routes never send.
            EventKind::Reaction | EventKind::Moderation | EventKind::Unknown => {
                return self.skip(&batch[0].0).await;
            }
        };
        let mut reference = match referenced {
            Some(id) => self.lookup(id).await,
            None => None,
        };
        // A delete carried out everywhere, and a reaction to a copy, reach
        // the original too.
        if matches!(ev.kind, EventKind::Delete | EventKind::Reaction)
            && reference.is_none()
            && let Some(id) =
                referenced.and_then(|t| event::said_in(t, self.bridge.name(), &self.channel))
        {
            reference = Some(Posted {
                ids: vec![id.to_string()],
                ..Default::default()
            });
        }
        let answer_for = ev.is_foreign_delete().then(|| ev.id.clone());
        // The thread's first message here: its copy, or the original itself.
        let thread = match ev.thread.as_deref() {
            Some(id) if ev.kind.is_post() => match self.lookup(id).await {
                Some(p) => Some(p),
                None => event::said_in(id, self.bridge.name(), &self.channel).map(|pid| Posted {
                    ids: vec![pid.to_string()],
                    ..Default::default()
                }),
            },
            _ => None,
        };
        let plan = match (ev.kind, &reference) {
            (EventKind::Message | EventKind::Notice, _) => Plan::Post,
            // Nothing of ours to edit or delete in this channel.
            (_, None) => {
                if let Some(id) = &answer_for
                    && !self.answer(id, &Verdict::Absent).await
                {
                    batch[0].0.tracker.abandon(&self.inflight).await;
                    return false;
                }
                return self.skip(&batch[0].0).await;
            }
            (EventKind::Edit, Some(_)) if !spec.can_edit => return self.skip(&batch[0].0).await,
            (EventKind::Reaction, Some(_)) => {
                let Some((reactors, changes)) = self.reacted(&ev).await else {
                    batch[0].0.tracker.abandon(&self.inflight).await;
                    return false;
                };
                match changes.is_empty() {
                    false => Plan::React { changes, reactors },
                    // Others reacted with it already, or still do: the
                    // bot's reaction stays as it is.
                    true => {
                        let target = ev.target.as_deref().unwrap_or_default();
                        if !self.keep_reactors(target, &reactors).await {
                            batch[0].0.tracker.abandon(&self.inflight).await;
                            return false;
                        }
                        return self.skip(&batch[0].0).await;
                    }
                }
            }
            (kind, Some(r)) => {
                let target = ev.target.as_deref().unwrap_or_default();
                match coalesce::member_change(r, kind, target, spec.can_edit) {
                    Some(MemberChange::Ignore) => return self.skip(&batch[0].0).await,
                    Some(MemberChange::Shrink(p)) => Plan::Shrink(p),
                    Some(MemberChange::DeleteAll) => Plan::Delete,
                    None if kind == EventKind::Edit => Plan::Edit,
                    None => Plan::Delete,
                }
            }
        };
        let parts: Vec<String> = match &plan {
            Plan::Shrink(p) => {
                let lines = p.combined.as_ref().map(|c| c.lines.join(spec.joiner));
                vec![lines.unwrap_or_default()]
            }
            _ if batch.len() == 1 => batch[0].1.clone(),
            _ => vec![
                batch
                    .iter()
                    .map(|(_, p)| p[0].as_str())
                    .collect::<Vec<_>>()
                    .join(spec.joiner),
            ],
        };
        // Our own deletion of a copy, coming back from its platform, must not
        // pass for a moderator's: the copy stops leading to its original first.
        let unlinked = match (&plan, &reference) {
            (Plan::Delete, Some(r)) => r.ids.as_slice(),
            (Plan::Edit, Some(r)) => r.ids.get(parts.len()..).unwrap_or_default(),
            _ => &[],
        };
        let mut posted = None;
        if let Plan::React { changes, .. } = &plan {
            posted = self.react_all(&ev, changes, reference.as_ref()).await;
        } else if unlinked.is_empty()
            // Nothing reads the channel: its copies have no way back to forget.
            || !self.back_links
            || self.forget(unlinked).await
        {
            posted = self
                .attempt(
                    &ev,
                    &plan,
                    &parts,
                    (reference.as_ref(), thread.as_ref()),
                    batch.len() > 1,
                )
                .await;
        }
        if let (Some(_), Plan::React { reactors, .. }) = (&posted, &plan) {
            let target = ev.target.as_deref().unwrap_or_default();
            if !self.keep_reactors(target, reactors).await {
                posted = None;
            }
        }
        if let (Some(_), Some(id)) = (&posted, &answer_for) {
            let verdict = match self.refused.take() {
                Some(error) => Verdict::Refused { error },
                None => Verdict::Done,
            };
            if !self.answer(id, &verdict).await {
                posted = None;
            }
        }
        let Some(posted) = posted else {
            for (item, _) in &batch {
                item.tracker.abandon(&self.inflight).await;
            }
            return false;
        };
        let now = Instant::now();
        for _ in 0..parts.len().max(1) {
            self.limiter.record(now);
        }
        self.settle(batch, &plan, posted).await
    }

    /// Count, remember and record what a delivery posted; false when stopped.
    async fn settle(
        &mut self,
        batch: Vec<(Item, Vec<String>)>,
        plan: &Plan,
        posted: Option<Posted>,
    ) -> bool {
        // A shrunk coalesced post: its remaining members' records follow.
        if let (Plan::Shrink(updated), Some(_)) = (plan, &posted) {
            for member in updated.combined.iter().flat_map(|c| c.members.iter()) {
                self.recent
                    .insert(&self.channel, member, updated.clone(), self.back_links);
                let put = self
                    .records
                    .put(&self.channel, member, updated, self.back_links);
                if let Err(e) = put.await {
                    tracing::warn!(event_id = %member, error = %e, "cannot update a coalesced post's record");
                }
            }
        }
        let posted = posted.map(|mut p| {
            if batch.len() > 1 {
                p.combined = Some(coalesce::combined(&batch));
            }
            p
        });
        let n = batch.len();
        for (item, _) in batch {
            tracing::debug!(event_id = %item.event.id, "delivered");
            self.meters.delivered(&item.event.room, item.event.kind);
            // Record, then ack: a redelivery after a crash in between finds the
            // record. Both run beside the next deliveries, so the channel does not
            // wait a NATS round trip per post; order between posts is unaffected.
            let record = posted
                .as_ref()
                .filter(|p| p.can_be_referenced())
                .map(|p| (item.event.id.clone(), p.clone()));
            let Ok(recorded) = self.ledger.add(item.tracker.clone(), record).await else {
                return false;
            };
            if let Some(posted) = &posted {
                // Ids still to come: found here as what the ledger recorded.
                let posted = match recorded {
                    Some(later) => Posted {
                        later: Some(later),
                        ..posted.clone()
                    },
                    None => posted.clone(),
                };
                self.recent
                    .insert(&self.channel, &item.event.id, posted, self.back_links);
                self.meters.relayed_after(self.clock.since(item.event.ts));
            }
        }
        if n > 1 {
            tracing::info!(messages = n, "coalesced a backlog into one post");
            metrics::counter!("jetbridge_coalesced_total", "bridge" => self.bridge.name().to_string())
                .increment(n as u64);
        }
        true
    }

    /// Nothing to do for this item here: it counts as handled.
    async fn skip(&self, item: &Item) -> bool {
        item.tracker.done(&self.inflight).await;
        true
    }

    /// Whether a redelivered item was handled before (by us or a predecessor):
    /// at or below the channel's watermark, or with a record.
    async fn delivered_before(&mut self, item: &Item) -> bool {
        if self.watermark.is_none() {
            match self.records.watermark(&self.channel, &self.scope).await {
                Ok(w) => self.watermark = Some(w.unwrap_or(0)),
                // Unknown for now: the records may still tell; asked again next time.
                Err(e) => tracing::warn!(error = %e, "cannot read the channel's watermark"),
            }
        }
        if self.watermark.is_some_and(|w| item.tracker.seq <= w) {
            return true;
        }
        matches!(
            self.records.get(&self.channel, &item.event.id).await,
            Ok(Some(_))
        )
    }

    /// Retry `write` until it lands; false when stopped first.
    pub(super) async fn persist<F, Fut>(&self, what: &str, mut write: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::bus::BusError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            match write().await {
                Ok(()) => return true,
                Err(e) => tracing::warn!(record = what, error = %e, "cannot write yet"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = self.hard_stop.cancelled() => return false,
            }
        }
    }

    /// Forget where the copies `ids` lead (see `Records::forget_copies`).
    async fn forget(&self, ids: &[String]) -> bool {
        self.recent.forget_copies(&self.channel, ids);
        self.persist("copies", || self.records.forget_copies(&self.channel, ids))
            .await
    }

    /// Say what this channel did for the delete `delete_id`.
    async fn answer(&self, delete_id: &str, verdict: &Verdict) -> bool {
        tracing::info!(
            delete_id,
            ?verdict,
            "delete carried out everywhere: this channel's part"
        );
        let bridge = self.bridge.name();
        self.persist("verdict", || {
            self.verdicts
                .report(delete_id, bridge, &self.channel, verdict)
        })
        .await
    }

    async fn lookup(&self, event_id: &str) -> Option<Posted> {
        if let Some(p) = self.recent.get(&self.channel, event_id) {
            // A copy whose ids were still to come: once its record is written.
            return Some(p.settled().await);
        }
        match self.records.get(&self.channel, event_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(event_id, error = %e, "record lookup failed");
                None
            }
        }
    }

    pub(super) fn count_failure(&self, reason: &'static str) {
        metrics::counter!("jetbridge_delivery_failures_total", "bridge" => self.bridge.name().to_string(), "reason" => reason)
            .increment(1);
    }
}
