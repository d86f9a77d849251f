//! The durable outbound consumers: one per bridge, whose messages come with
//! their own ack handle, and the take-over of a predecessor's unfinished work.
//!
//! One consumer per bridge (not per channel or room): its filter is the set of
//! rooms the bridge writes to, so its cost does not grow with the number of
//! mapped channels; per-channel ordering and isolation are done in memory by
//! the router.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::message::{AckKind, Acker};
use async_nats::jetstream::stream;
use bytes::Bytes;
use futures::Stream;

use super::{Bus, BusError, Source};

/// One message for a bridge's outbound deliveries.
pub struct Delivered {
    pub seq: u64,
    /// How many times JetStream delivered it (above 1: it may have been handled).
    pub delivered: i64,
    /// Messages of the consumer still to come.
    pub pending: u64,
    pub subject: String,
    pub payload: Bytes,
    pub ack: AckHandle,
}

/// How to settle one delivered message.
pub struct AckHandle(Acker);

impl AckHandle {
    /// Done with it.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.settle(AckKind::Ack).await
    }
    /// Give it back for immediate redelivery.
    pub async fn nak(&self) -> Result<(), BusError> {
        self.settle(AckKind::Nak(None)).await
    }
    /// Never deliver it again (it can never be handled).
    pub async fn term(&self) -> Result<(), BusError> {
        self.settle(AckKind::Term).await
    }

    async fn settle(&self, kind: AckKind) -> Result<(), BusError> {
        self.0
            .ack_with(kind)
            .await
            .map_err(|source| BusError::Consumer {
                consumer: "outbound".into(),
                op: "ack",
                source,
            })
    }
}

/// The messages of an outbound consumer (see [`Bus::outbound`]).
pub struct Outbound {
    inner: pull::Stream,
    name: String,
}

impl Stream for Outbound {
    type Item = Result<Delivered, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let err = |op, source| BusError::Consumer {
            consumer: this.name.clone(),
            op,
            source,
        };
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(m))) => {
                let info = match m.info() {
                    Ok(i) => (i.stream_sequence, i.delivered, i.pending),
                    Err(e) => {
                        return Poll::Ready(Some(Err(err(
                            "a message without JetStream metadata",
                            e,
                        ))));
                    }
                };
                let (message, acker) = m.split();
                Poll::Ready(Some(Ok(Delivered {
                    seq: info.0,
                    delivered: info.1,
                    pending: info.2,
                    subject: message.subject.to_string(),
                    payload: message.payload,
                    ack: AckHandle(acker),
                })))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(err("read", Box::new(e))))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn consumer_name(bridge: &str) -> String {
    format!("jetbridge-out-{bridge}")
}

impl Bus {
    /// The outbound messages of `bridge`, for the rooms in `filters`.
    ///
    /// A new consumer starts at `since` (this process's start), so turning a
    /// bridge on does not replay a week of history into its channels, yet
    /// nothing published while the consumer was being created is skipped. An
    /// existing consumer keeps its position; only its filters follow the config.
    ///
    /// With `take_over` (an instance that just became the bridge's leader), a
    /// predecessor's unacknowledged deliveries (it crashed, or was cut off) come
    /// again at once and in order: the consumer is recreated at the ack floor.
    /// Returns the messages and the last stream sequence that may already have
    /// been posted: up to it, deliveries must be checked against the id map.
    pub async fn outbound(
        &self,
        bridge: &str,
        filters: Vec<String>,
        since: time::OffsetDateTime,
        take_over: bool,
    ) -> Result<(Outbound, u64), BusError> {
        let name = consumer_name(bridge);
        let err = |op, source: Source| BusError::Consumer {
            consumer: name.clone(),
            op,
            source,
        };
        let stream = self.chat_stream().await?;
        // Only "no such consumer" means there is none: any other failure must
        // not skip a take-over's check of what may already have been posted.
        let existing = match stream.consumer_info(&name).await {
            Ok(info) => Some(info),
            Err(e)
                if e.kind() == async_nats::jetstream::context::ConsumerInfoErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(err("read its state", Box::new(e))),
        };
        let mut verify_until = 0;
        let deliver_policy = match existing {
            Some(info) if take_over && info.num_ack_pending > 0 => {
                verify_until = info.delivered.stream_sequence;
                let start = info.ack_floor.stream_sequence + 1;
                tracing::info!(
                    unacked = info.num_ack_pending,
                    from = start,
                    "taking over unfinished deliveries"
                );
                stream
                    .delete_consumer(&name)
                    .await
                    .map_err(|e| err("reset", Box::new(e)))?;
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                }
            }
            // The start position of an existing consumer cannot change.
            Some(info) => info.config.deliver_policy,
            None => consumer::DeliverPolicy::ByStartTime { start_time: since },
        };
        let c = self
            .create_outbound(&stream, &name, bridge, filters, deliver_policy)
            .await?;
        let inner = c
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| err("open", Box::new(e)))?;
        Ok((Outbound { inner, name }, verify_until))
    }

    async fn create_outbound(
        &self,
        stream: &stream::Stream<()>,
        name: &str,
        bridge: &str,
        filters: Vec<String>,
        deliver_policy: consumer::DeliverPolicy,
    ) -> Result<consumer::PullConsumer, BusError> {
        let (filter_subject, filter_subjects) = if filters.len() == 1 {
            (filters[0].clone(), Vec::new())
        } else {
            (String::new(), filters)
        };
        let config = pull::Config {
            durable_name: Some(name.to_string()),
            description: Some(format!("jetbridge outbound deliveries for bridge {bridge}")),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.cfg.ack_wait,
            max_ack_pending: self.cfg.max_ack_pending,
            deliver_policy,
            filter_subject,
            filter_subjects,
            max_deliver: -1,
            num_replicas: self.cfg.replicas,
            ..Default::default()
        };
        stream
            .create_consumer(config)
            .await
            .map_err(|e| BusError::Consumer {
                consumer: name.to_string(),
                op: "create",
                source: Box::new(e),
            })
    }
}
