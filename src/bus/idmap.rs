//! The id map of one bridge: event id → what the bridge posted for it (a
//! record the caller serializes), plus one watermark per channel. It is what
//! lets a later edit or delete find the copies, and a redelivery be recognised.

use async_nats::jetstream::kv;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Bus, BusError, kv_error};
use crate::event;

/// Event id → record for one bridge. The key is `<channel token>.<event id>`,
/// with the event id escaped to the key alphabet.
///
/// Beside the entries, each channel has a watermark (`<channel token>.=wm`, a
/// key no escaped event id can produce): the last stream sequence the channel
/// handled. A channel handles its events in stream order, so everything of the
/// channel at or below the watermark was posted (or deliberately skipped).
///
/// And each copy the other way round (`<channel token>.=cp<escaped platform
/// id>` → event id), so that a copy deleted on its platform leads back to
/// its original (a mirrored delete). A copy jetbridge deletes itself loses
/// that entry first: its deletion coming back is then not a moderator's.
#[derive(Clone)]
pub struct IdMap {
    store: kv::Store,
    bucket: String,
}

/// What a channel's watermark holds for: the stream's incarnation (see
/// [`Bus::stream_epoch`]; a recreated stream numbers from 1 again) and the room
/// the channel was in (moved to another room, the channel never handled that
/// room's earlier events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkScope {
    pub stream: String,
    pub room: String,
}

#[derive(Serialize, Deserialize)]
struct Watermark {
    seq: u64,
    #[serde(flatten)]
    scope: MarkScope,
}

impl Bus {
    /// The id map of one bridge, created when missing.
    pub async fn id_map(&self, bridge: &str) -> Result<IdMap, BusError> {
        let bucket = format!("jetbridge-ids-{bridge}");
        // A copy is only useful while its original can still be edited.
        let store = self
            .key_value(
                &bucket,
                format!("jetbridge: event id -> {bridge} message id"),
                self.cfg.max_age,
            )
            .await?;
        Ok(IdMap { store, bucket })
    }
}

impl IdMap {
    /// Key for an event delivered to `channel`.
    pub fn key(channel: &str, event_id: &str) -> String {
        let mut key = event::channel_token(channel);
        key.push('.');
        escape_into(&mut key, event_id);
        key
    }

    /// Key of the copy with platform id `platform_id` in `channel`.
    fn copy_key(channel: &str, platform_id: &str) -> String {
        // `=c`: lower case, never the escape of an event id.
        let mut key = format!("{}.=cp", event::channel_token(channel));
        escape_into(&mut key, platform_id);
        key
    }

    fn watermark_key(channel: &str) -> String {
        // `=` followed by a non-hex letter: never the escape of an event id.
        format!("{}.=wm", event::channel_token(channel))
    }

    fn error(&self, e: impl std::error::Error + Send + Sync + 'static) -> BusError {
        kv_error(&self.bucket, e)
    }

    /// The channel's watermark, if it was written in `scope`.
    pub async fn watermark(
        &self,
        channel: &str,
        scope: &MarkScope,
    ) -> Result<Option<u64>, BusError> {
        let v = self
            .store
            .get(Self::watermark_key(channel))
            .await
            .map_err(|e| self.error(e))?;
        Ok(v.and_then(|b| readable(&b, "watermark"))
            .filter(|w: &Watermark| w.scope == *scope)
            .map(|w| w.seq))
    }

    pub async fn put_watermark(
        &self,
        channel: &str,
        scope: &MarkScope,
        seq: u64,
    ) -> Result<(), BusError> {
        let w = Watermark {
            seq,
            scope: scope.clone(),
        };
        // Plain data; cannot fail to serialize.
        let bytes = serde_json::to_vec(&w).expect("Watermark serializes");
        self.store
            .put(Self::watermark_key(channel), bytes.into())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The record of `event_id` in `channel`; `None` when absent or unreadable.
    pub async fn get<T: DeserializeOwned>(
        &self,
        channel: &str,
        event_id: &str,
    ) -> Result<Option<T>, BusError> {
        let v = self
            .store
            .get(Self::key(channel, event_id))
            .await
            .map_err(|e| self.error(e))?;
        Ok(v.and_then(|b| readable(&b, "record")))
    }

    pub async fn put<T: Serialize>(
        &self,
        channel: &str,
        event_id: &str,
        record: &T,
    ) -> Result<(), BusError> {
        let bytes = serde_json::to_vec(record).map_err(|e| self.error(e))?;
        self.store
            .put(Self::key(channel, event_id), bytes.into())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

impl IdMap {
    /// Remember that the copies `platform_ids` in `channel` are of `event_id`.
    pub async fn put_copies(
        &self,
        channel: &str,
        platform_ids: &[String],
        event_id: &str,
    ) -> Result<(), BusError> {
        let writes = platform_ids.iter().map(|id| {
            self.store.put(
                Self::copy_key(channel, id),
                bytes::Bytes::copy_from_slice(event_id.as_bytes()),
            )
        });
        for r in futures::future::join_all(writes).await {
            r.map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// The event whose copy in `channel` has platform id `platform_id`.
    pub async fn copy_of(
        &self,
        channel: &str,
        platform_id: &str,
    ) -> Result<Option<String>, BusError> {
        let v = self
            .store
            .get(Self::copy_key(channel, platform_id))
            .await
            .map_err(|e| self.error(e))?;
        Ok(v.and_then(|b| String::from_utf8(b.to_vec()).ok()))
    }

    /// Forget the copies `platform_ids` in `channel` (jetbridge deletes them).
    pub async fn forget_copies(
        &self,
        channel: &str,
        platform_ids: &[String],
    ) -> Result<(), BusError> {
        let deletes = platform_ids
            .iter()
            .map(|id| self.store.delete(Self::copy_key(channel, id)));
        for r in futures::future::join_all(deletes).await {
            r.map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

/// Who reacted to a message with what, as jetbridge mirrors it in one
/// channel: emoji → the reactors (`<bridge>/<user id>`). The bot's own
/// reaction is there while any reactor is.
pub type Reactors = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

impl IdMap {
    fn reactors_key(channel: &str, event_id: &str) -> String {
        // `=r`: lower case, never the escape of an event id.
        let mut key = format!("{}.=rx", event::channel_token(channel));
        escape_into(&mut key, event_id);
        key
    }

    pub async fn reactors(&self, channel: &str, event_id: &str) -> Result<Reactors, BusError> {
        let v = self
            .store
            .get(Self::reactors_key(channel, event_id))
            .await
            .map_err(|e| self.error(e))?;
        Ok(v.and_then(|b| readable(&b, "reactors")).unwrap_or_default())
    }

    pub async fn put_reactors(
        &self,
        channel: &str,
        event_id: &str,
        reactors: &Reactors,
    ) -> Result<(), BusError> {
        // Plain data; cannot fail to serialize.
        let bytes = serde_json::to_vec(reactors).expect("Reactors serialize");
        self.store
            .put(Self::reactors_key(channel, event_id), bytes.into())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

/// `raw` in the key alphabet: `[A-Za-z0-9_-]` kept, anything else `=XX`.
pub(super) fn escape_into(key: &mut String, raw: &str) {
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            key.push(b as char);
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
}

/// A stored value, read; one that no longer reads (written by another
/// version, say) is said in the log and treated as absent.
fn readable<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(what, error = %e, "an id-map value does not read; treated as absent");
            None
        }
    }
}
