//! One delivery against the platform, retried until it is accepted or
//! refused for good: a 429 waits exactly its retry-after, anything else backs
//! off, and a split post that fails at part k resumes at part k.

use std::time::Duration;

use tokio::time::Instant;

use super::worker::{Plan, Worker};
use crate::backoff::Backoff;
use crate::bridge::{Action, DeliverError, Delivery, Posted};
use crate::event::ChatEvent;

impl Worker {
    /// Deliver until the platform accepts (or rejects for good); `None` when
    /// stopped first. A split post that fails at part k resumes at part k.
    pub(super) async fn attempt(
        &mut self,
        ev: &ChatEvent,
        plan: &Plan,
        parts: &[String],
        (reference, thread): (Option<&Posted>, Option<&Posted>),
        combined: bool,
    ) -> Option<Option<Posted>> {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        self.refused = None;
        let mut done = Posted::default();
        let mut sent = 0;
        loop {
            let action = match (plan, reference) {
                (Plan::Post, _) => Action::Post {
                    parts: &parts[sent..],
                    first: sent,
                    reply_to: reference,
                    thread,
                },
                (Plan::Edit, Some(target)) => Action::Edit { target, parts },
                (Plan::Shrink(_), Some(target)) => Action::Edit { target, parts },
                (Plan::Delete, Some(target)) => Action::Delete { target },
                (Plan::React { changes, .. }, Some(target)) => {
                    let Some((emoji, add)) = changes.first() else {
                        return Some(Some(Posted::default()));
                    };
                    Action::React {
                        target,
                        emoji,
                        add: *add,
                    }
                }
                // Edits and deletes are planned only with a reference.
                (_, None) => return Some(None),
            };
            let delivery = Delivery {
                channel: &self.channel,
                event: ev,
                action,
                combined,
            };
            let failure = match self.bridge.deliver(delivery).await {
                Ok(posted) => {
                    done.extend(posted);
                    return Some(Some(done));
                }
                Err(f) => f,
            };
            if matches!(plan, Plan::Post) && failure.accepted > 0 {
                sent = (sent + failure.accepted).min(parts.len());
                done.extend(failure.partial);
                tracing::debug!(event_id = %ev.id, parts_accepted = sent, "part of a split post accepted");
                if sent == parts.len() {
                    return Some(Some(done));
                }
            }
            let wait = match failure.error {
                DeliverError::Reject(reason) => {
                    tracing::error!(event_id = %ev.id, %reason, "delivery rejected, skipping");
                    self.count_failure("rejected");
                    self.refused = Some(reason.to_string());
                    // Parts already on the platform stay reachable for deletes.
                    return Some((sent > 0).then_some(done));
                }
                DeliverError::RateLimited(after) => {
                    tracing::warn!(event_id = %ev.id, retry_after = ?after, "rate limited by platform");
                    self.count_failure("rate_limited");
                    self.limiter.block_for(Instant::now(), after);
                    after
                }
                DeliverError::Retry(reason) => {
                    let d = backoff.next_delay();
                    tracing::warn!(event_id = %ev.id, %reason, retry_in = ?d, "delivery failed, retrying");
                    self.count_failure("retry");
                    d
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.hard_stop.cancelled() => return None,
            }
        }
    }
}
