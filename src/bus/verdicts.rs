//! What each channel did for a delete jetbridge carries out on every platform
//! at once (a mirrored delete, a console's): each channel's worker says it
//! here, and whoever asked for the delete gathers the answers into the one
//! `moderation` event that records it. Several instances see the same
//! answers, so it does not matter which one delivered where.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::idmap::escape_into;
use super::{Bus, BusError, kv_error};
use crate::event;

/// One channel's answer to a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Verdict {
    /// Removed (or already gone).
    Done,
    /// The platform would not (rights, tokens, no API configured).
    Refused { error: String },
    /// The channel had nothing of that message.
    Absent,
}

/// The answers to deletes, kept for an hour.
#[derive(Clone)]
pub struct Verdicts {
    store: kv::Store,
}

const BUCKET: &str = "jetbridge-moderation";

impl Bus {
    pub async fn verdicts(&self) -> Result<Verdicts, BusError> {
        let store = self
            .key_value(
                BUCKET,
                "jetbridge: what each channel did for a delete".into(),
                Duration::from_secs(3600),
            )
            .await?;
        Ok(Verdicts { store })
    }
}

fn prefix(delete_id: &str) -> String {
    let mut key = String::new();
    escape_into(&mut key, delete_id);
    key
}

impl Verdicts {
    /// Say what `channel` of `bridge` did for the delete `delete_id`.
    pub async fn report(
        &self,
        delete_id: &str,
        bridge: &str,
        channel: &str,
        verdict: &Verdict,
    ) -> Result<(), BusError> {
        let key = format!(
            "{}.{bridge}.{}",
            prefix(delete_id),
            event::channel_token(channel)
        );
        // Plain data; cannot fail to serialize.
        let bytes = serde_json::to_vec(verdict).expect("Verdict serializes");
        self.store
            .put(key, bytes.into())
            .await
            .map_err(|e| kv_error(BUCKET, e))?;
        Ok(())
    }

    /// The answers to `delete_id` of the `expected` (bridge, channel) pairs,
    /// as they come, until all answered or `within` passed; those that did
    /// not answer are absent from the result.
    pub async fn collect(
        &self,
        delete_id: &str,
        expected: &[(String, String)],
        within: Duration,
    ) -> Result<HashMap<(String, String), Verdict>, BusError> {
        let by_key: HashMap<String, &(String, String)> = expected
            .iter()
            .map(|p| (format!("{}.{}", p.0, event::channel_token(&p.1)), p))
            .collect();
        let head = format!("{}.", prefix(delete_id));
        let mut answers = self
            .store
            .watch_with_history(format!("{head}>"))
            .await
            .map_err(|e| kv_error(BUCKET, e))?;
        let mut got = HashMap::new();
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        while got.len() < by_key.len() {
            let entry = tokio::select! {
                _ = &mut deadline => break,
                e = answers.next() => match e {
                    Some(Ok(e)) => e,
                    Some(Err(e)) => return Err(kv_error(BUCKET, e)),
                    None => break,
                },
            };
            let Some(pair) = entry.key.strip_prefix(&head).and_then(|k| by_key.get(k)) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<Verdict>(&entry.value) {
                got.insert((*pair).clone(), v);
            }
        }
        Ok(got)
    }
}
