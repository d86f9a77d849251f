//! Leases in JetStream KV: at most one holder at a time, lost when its holder
//! stops renewing it. How several instances agree on who delivers for a bridge.

use std::time::Duration;

use async_nats::jetstream::kv;

use super::{Bus, BusError};

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// Taken by someone else or expired.
    Lost,
    /// NATS did not answer: nobody else can take it meanwhile, but it expires
    /// `ttl` after the last renewal.
    Unreachable,
}

/// A lease held in JetStream KV (see [`Bus::lease`]).
pub struct Lease {
    store: kv::Store,
    key: String,
    holder: String,
    revision: Option<u64>,
}

impl Bus {
    /// A lease named `name` in the bucket `jetbridge-leases`: at most one holder
    /// at a time, lost `ttl` after its holder stops renewing it.
    pub async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, BusError> {
        // An entry nobody renews disappears: that is the lease's expiry.
        let store = self
            .key_value(
                "jetbridge-leases",
                "jetbridge: which instance delivers for which bridge".into(),
                ttl,
            )
            .await?;
        Ok(Lease {
            store,
            key: name.to_string(),
            holder: holder.to_string(),
            revision: None,
        })
    }
}

impl Lease {
    /// Take the lease if nobody holds it. Errors (NATS away) count as "not now".
    pub async fn try_acquire(&mut self) -> bool {
        match self
            .store
            .create(&self.key, self.holder.clone().into())
            .await
        {
            Ok(rev) => {
                self.revision = Some(rev);
                true
            }
            Err(_) => false,
        }
    }

    /// Extend the lease.
    pub async fn renew(&mut self) -> Renewal {
        let Some(rev) = self.revision else {
            return Renewal::Lost;
        };
        match self
            .store
            .update(&self.key, self.holder.clone().into(), rev)
            .await
        {
            Ok(rev) => {
                self.revision = Some(rev);
                Renewal::Renewed
            }
            // Someone else's revision (or the entry expired): it is gone.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.revision = None;
                Renewal::Lost
            }
            Err(_) => Renewal::Unreachable,
        }
    }

    /// Give the lease up so another instance takes over at once.
    pub async fn release(&mut self) {
        if let Some(rev) = self.revision.take() {
            let _ = self
                .store
                .delete_expect_revision(&self.key, Some(rev))
                .await;
        }
    }
}
