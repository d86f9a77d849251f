//! The bucket of media links (`jetbridge-media`): token → what a bridge needs
//! to open a file again. Kept as long as the events that link to them.

use async_nats::jetstream::kv;

use super::{Bus, BusError, kv_error};

/// Media links by token.
#[derive(Clone)]
pub struct MediaBucket {
    store: kv::Store,
}

impl Bus {
    /// The media bucket, created when missing.
    pub async fn media_bucket(&self) -> Result<MediaBucket, BusError> {
        let store = self
            .key_value(
                "jetbridge-media",
                "jetbridge: media link token -> bridge and file reference".into(),
                self.cfg.max_age,
            )
            .await?;
        Ok(MediaBucket { store })
    }
}

impl MediaBucket {
    pub async fn put(&self, token: &str, value: Vec<u8>) -> Result<(), BusError> {
        self.store
            .put(token, value.into())
            .await
            .map_err(|e| kv_error("jetbridge-media", e))?;
        Ok(())
    }

    pub async fn get(&self, token: &str) -> Result<Option<Vec<u8>>, BusError> {
        let v = self
            .store
            .get(token)
            .await
            .map_err(|e| kv_error("jetbridge-media", e))?;
        Ok(v.map(|b| b.to_vec()))
    }
}
