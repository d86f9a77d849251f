//! Outbound routing: from the stream to the channels of one bridge.
//!
//! Per bridge, one durable consumer feeds a dispatcher ([`leader`]) that works
//! out each event's destinations ([`Routes`]) and hands it to one worker task
//! per destination channel ([`worker`]). A worker delivers its channel's events
//! strictly in stream order, paced to the platform's limit, coalescing a
//! backlog ([`coalesce`]), retrying failures with backoff, resuming a split
//! post at the part that failed; one slow or broken channel only holds up
//! itself. A stream message is acked ([`tracker`]) once every destination has
//! it, after the channel's record of it landed ([`ledger`]: the id map entry
//! that later edits and deletes need, and the channel's watermark), so a
//! redelivery (crash, another instance) finds the record and is not posted
//! twice. Several instances agree through a lease on who delivers.
//!
//! The router reaches NATS only through [`Backbone`] (JetStream in
//! production, memory in the unit tests).

mod attempt;
mod backbone;
mod coalesce;
mod console;
mod item;
mod leader;
mod ledger;
mod meters;
mod mirror;
mod reactions;
mod recent;
mod routes;
mod tracker;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::bridge::Posted;
use crate::bus::{BusError, MarkScope, Reactors, Renewal, Verdict};
use crate::event::ChatEvent;

pub use console::{Console, ConsoleError, OnUser};
pub use leader::{LEASE_TTL, OutboundTiming, run_outbound};
pub use ledger::RECORDING_DEPTH;
pub use routes::{Routes, ignored};

/// What the router needs of the bus.
#[async_trait]
pub trait Backbone: Send + Sync + 'static {
    /// The delivery records of `bridge`.
    async fn records(&self, bridge: &str) -> Result<Arc<dyn Records>, BusError>;

    /// The lease `name`, to be held by `holder`, lost `ttl` after its last renewal.
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Box<dyn Lease>, BusError>;

    /// Where channels say what they did for a delete (see `bus::Verdicts`).
    async fn verdicts(&self) -> Result<Arc<dyn Verdicts>, BusError>;

    /// Store `ev` now; false when the stream already had it (a duplicate).
    async fn publish(&self, ev: &ChatEvent) -> Result<bool, BusError>;

    /// The outbound messages of `bridge` for `filters` (see `Bus::outbound`).
    async fn open(
        &self,
        bridge: &str,
        filters: Vec<String>,
        since: time::OffsetDateTime,
        take_over: bool,
    ) -> Result<Opened, BusError>;
}

/// An opened outbound read.
pub struct Opened {
    pub messages: BoxStream<'static, Result<Incoming, BusError>>,
    /// Up to this stream sequence, deliveries may have been posted already.
    pub verify_until: u64,
    /// The stream's incarnation (see `Bus::stream_epoch`).
    pub epoch: String,
}

/// One outbound message, with its ack handle.
pub struct Incoming {
    pub seq: u64,
    pub delivered: i64,
    pub pending: u64,
    pub payload: Bytes,
    pub ack: Box<dyn Settle>,
}

/// How a message is settled with the stream.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    /// Give it back for immediate redelivery.
    async fn nak(&self) -> Result<(), BusError>;
    /// It can never be handled: never again.
    async fn term(&self) -> Result<(), BusError>;
}

/// A lease held by one instance at a time (see `bus::Lease`).
#[async_trait]
pub trait Lease: Send {
    async fn try_acquire(&mut self) -> bool;
    async fn renew(&mut self) -> Renewal;
    async fn release(&mut self);
}

/// The delivery records of one bridge (see `bus::IdMap`).
#[async_trait]
pub trait Records: Send + Sync {
    async fn get(&self, channel: &str, event_id: &str) -> Result<Option<Posted>, BusError>;
    /// Record `posted` as the copy of `event_id` in `channel`, and with
    /// `back_links` each of its platform ids as leading back to `event_id`
    /// (needed only where jetbridge reads the channel: see `Routes::reads`).
    async fn put(
        &self,
        channel: &str,
        event_id: &str,
        posted: &Posted,
        back_links: bool,
    ) -> Result<(), BusError>;
    /// The event whose copy in `channel` has platform id `platform_id`.
    async fn copy_of(&self, channel: &str, platform_id: &str) -> Result<Option<String>, BusError>;
    /// Forget where the copies `platform_ids` in `channel` lead (they are
    /// being deleted by jetbridge itself).
    async fn forget_copies(&self, channel: &str, platform_ids: &[String]) -> Result<(), BusError>;
    /// Who reacted with what to `event_id`, for the reactions jetbridge
    /// mirrors in `channel` (see `bus::Reactors`).
    async fn reactors(&self, channel: &str, event_id: &str) -> Result<Reactors, BusError>;
    async fn put_reactors(
        &self,
        channel: &str,
        event_id: &str,
        reactors: &Reactors,
    ) -> Result<(), BusError>;
    async fn watermark(&self, channel: &str, scope: &MarkScope) -> Result<Option<u64>, BusError>;
    async fn put_watermark(
        &self,
        channel: &str,
        scope: &MarkScope,
        seq: u64,
    ) -> Result<(), BusError>;
}

/// What channels did for a delete carried out everywhere (see `bus::Verdicts`).
#[async_trait]
pub trait Verdicts: Send + Sync {
    async fn report(
        &self,
        delete_id: &str,
        bridge: &str,
        channel: &str,
        verdict: &Verdict,
    ) -> Result<(), BusError>;

    /// The answers of `expected` (bridge, channel) pairs, until all answered
    /// or `within` passed.
    async fn collect(
        &self,
        delete_id: &str,
        expected: &[(String, String)],
        within: Duration,
    ) -> Result<std::collections::HashMap<(String, String), Verdict>, BusError>;
}
