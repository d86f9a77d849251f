//! The [`Backbone`] over JetStream: the bus's consumers, leases and id maps
//! seen through the router's traits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::{Backbone, Incoming, Lease, Opened, Records, Settle, Verdicts};
use crate::bridge::Posted;
use crate::bus::{self, AckHandle, Bus, BusError, IdMap, MarkScope, Reactors, Renewal, Verdict};
use crate::event::ChatEvent;

#[async_trait]
impl Backbone for Bus {
    async fn records(&self, bridge: &str) -> Result<Arc<dyn Records>, BusError> {
        Ok(Arc::new(self.id_map(bridge).await?))
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Box<dyn Lease>, BusError> {
        Ok(Box::new(Bus::lease(self, name, holder, ttl).await?))
    }

    async fn verdicts(&self) -> Result<Arc<dyn Verdicts>, BusError> {
        Ok(Arc::new(Bus::verdicts(self).await?))
    }

    async fn publish(&self, ev: &ChatEvent) -> Result<bool, BusError> {
        Ok(self.publish_new(ev).await?.is_some())
    }

    async fn open(
        &self,
        bridge: &str,
        filters: Vec<String>,
        since: time::OffsetDateTime,
        take_over: bool,
    ) -> Result<Opened, BusError> {
        let (outbound, verify_until) = self.outbound(bridge, filters, since, take_over).await?;
        let epoch = self.stream_epoch().await?;
        let messages = outbound
            .map(|m| {
                m.map(|d| Incoming {
                    seq: d.seq,
                    delivered: d.delivered,
                    pending: d.pending,
                    payload: d.payload,
                    ack: Box::new(d.ack),
                })
            })
            .boxed();
        Ok(Opened {
            messages,
            verify_until,
            epoch,
        })
    }
}

#[async_trait]
impl Settle for AckHandle {
    async fn ack(&self) -> Result<(), BusError> {
        AckHandle::ack(self).await
    }
    async fn nak(&self) -> Result<(), BusError> {
        AckHandle::nak(self).await
    }
    async fn term(&self) -> Result<(), BusError> {
        AckHandle::term(self).await
    }
}

#[async_trait]
impl Lease for bus::Lease {
    async fn try_acquire(&mut self) -> bool {
        bus::Lease::try_acquire(self).await
    }
    async fn renew(&mut self) -> Renewal {
        bus::Lease::renew(self).await
    }
    async fn release(&mut self) {
        bus::Lease::release(self).await
    }
}

#[async_trait]
impl Records for IdMap {
    async fn get(&self, channel: &str, event_id: &str) -> Result<Option<Posted>, BusError> {
        IdMap::get(self, channel, event_id).await
    }
    async fn put(
        &self,
        channel: &str,
        event_id: &str,
        posted: &Posted,
        back_links: bool,
    ) -> Result<(), BusError> {
        let ids: &[String] = if back_links { &posted.ids } else { &[] };
        let (record, copies) = futures::future::join(
            IdMap::put(self, channel, event_id, posted),
            self.put_copies(channel, ids, event_id),
        )
        .await;
        record.and(copies)
    }
    async fn copy_of(&self, channel: &str, platform_id: &str) -> Result<Option<String>, BusError> {
        IdMap::copy_of(self, channel, platform_id).await
    }
    async fn forget_copies(&self, channel: &str, platform_ids: &[String]) -> Result<(), BusError> {
        IdMap::forget_copies(self, channel, platform_ids).await
    }
    async fn reactors(&self, channel: &str, event_id: &str) -> Result<Reactors, BusError> {
        IdMap::reactors(self, channel, event_id).await
    }
    async fn put_reactors(
        &self,
        channel: &str,
        event_id: &str,
        reactors: &Reactors,
    ) -> Result<(), BusError> {
        IdMap::put_reactors(self, channel, event_id, reactors).await
    }
    async fn watermark(&self, channel: &str, scope: &MarkScope) -> Result<Option<u64>, BusError> {
        IdMap::watermark(self, channel, scope).await
    }
    async fn put_watermark(
        &self,
        channel: &str,
        scope: &MarkScope,
        seq: u64,
    ) -> Result<(), BusError> {
        IdMap::put_watermark(self, channel, scope, seq).await
    }
}

#[async_trait]
impl Verdicts for bus::Verdicts {
    async fn report(
        &self,
        delete_id: &str,
        bridge: &str,
        channel: &str,
        verdict: &Verdict,
    ) -> Result<(), BusError> {
        bus::Verdicts::report(self, delete_id, bridge, channel, verdict).await
    }

    async fn collect(
        &self,
        delete_id: &str,
        expected: &[(String, String)],
        within: Duration,
    ) -> Result<std::collections::HashMap<(String, String), Verdict>, BusError> {
        bus::Verdicts::collect(self, delete_id, expected, within).await
    }
}
