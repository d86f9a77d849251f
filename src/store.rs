//! The inbound [`EventStore`] over JetStream: queued publishing through the
//! bus's [`Publisher`], immediate publishing for callers that must answer with
//! the sequence, and the last stored event of a channel (where catch-up
//! resumes).

use async_trait::async_trait;

use crate::bridge::{EventStore, StoreError};
use crate::bus::{Bus, Publisher};
use crate::event::ChatEvent;

/// Where every bridge's inbound events go.
pub struct JetStreamStore {
    pub bus: Bus,
    pub publisher: Publisher,
}

#[async_trait]
impl EventStore for JetStreamStore {
    async fn submit(&self, ev: &ChatEvent) {
        self.publisher.submit_wait(ev).await;
    }

    async fn store(&self, ev: &ChatEvent) -> Result<u64, StoreError> {
        self.bus
            .publish_now(ev)
            .await
            .map_err(|e| StoreError(Box::new(e)))
    }

    async fn last_stored(&self, subject: &str) -> Result<Option<ChatEvent>, StoreError> {
        let payload = self
            .bus
            .last_payload(subject)
            .await
            .map_err(|e| StoreError(Box::new(e)))?;
        // Something else under our subject (not a chat event) is no resume point.
        Ok(payload.and_then(|p| serde_json::from_slice(&p).ok()))
    }
}
