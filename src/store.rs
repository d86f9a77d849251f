//! The inbound [`EventStore`] over JetStream: queued publishing through the
//! bus's [`Publisher`], immediate publishing for callers that must answer with
//! the sequence, and the last stored event of a channel (where catch-up
//! resumes).

use async_trait::async_trait;

use crate::bridge::{EventStore, MediaIndex, StoreError};
use crate::bus::{Bus, MediaBucket, Publisher};
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

/// Media links over the `jetbridge-media` bucket (see `bridge::media`).
pub struct JetStreamMedia {
    bus: Bus,
    /// `http.public_url` (or `http://<listen>`), without a trailing slash.
    base: String,
    bucket: tokio::sync::OnceCell<MediaBucket>,
}

impl JetStreamMedia {
    pub fn new(bus: Bus, base: String) -> Self {
        JetStreamMedia {
            bus,
            base,
            bucket: tokio::sync::OnceCell::new(),
        }
    }

    async fn bucket(&self) -> Option<&MediaBucket> {
        match self
            .bucket
            .get_or_try_init(|| self.bus.media_bucket())
            .await
        {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "media links unavailable");
                None
            }
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MediaEntry {
    bridge: String,
    reference: String,
}

#[async_trait]
impl MediaIndex for JetStreamMedia {
    async fn link(&self, bridge: &str, reference: &str) -> Option<String> {
        // Unguessable, so that the route serves only what a bridge linked to.
        // 80 random bits from the thread CSPRNG, fresh each call.
        let token = ulid::Ulid::generate().to_string().to_lowercase();
        let entry = MediaEntry {
            bridge: bridge.to_string(),
            reference: reference.to_string(),
        };
        // Plain data; cannot fail to serialize.
        let value = serde_json::to_vec(&entry).expect("MediaEntry serializes");
        match self.bucket().await?.put(&token, value).await {
            Ok(()) => Some(format!("{}/media/{token}", self.base)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep a media link; the platform's URL is used");
                None
            }
        }
    }

    async fn resolve(&self, token: &str) -> Option<(String, String)> {
        let raw = self.bucket().await?.get(token).await.ok()??;
        let e: MediaEntry = serde_json::from_slice(&raw).ok()?;
        Some((e.bridge, e.reference))
    }
}
