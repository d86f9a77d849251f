//! The chat stream: its configuration (created, or updated when it differs),
//! what tells one incarnation from a recreated one, its bounds, single
//! publishes and lookups, and ordered reads (for `tail`, the web page).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::{Bus, BusError};
use crate::backoff::Backoff;
use crate::event::{self, ChatEvent};

/// Where an ordered read starts.
#[derive(Debug, Clone, Copy)]
pub enum ReadFrom {
    Sequence(u64),
    Time(time::OffsetDateTime),
    New,
}

/// One stored message, as an ordered read yields it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    /// Messages of the read's filter after this one, as the server counted.
    pub pending: u64,
    pub subject: String,
    pub payload: Bytes,
}

/// An ordered, flow-controlled read of the stream (see [`Bus::read_ordered`]).
pub struct StoredReader {
    inner: consumer::pull::Ordered,
    stream: String,
}

impl Stream for StoredReader {
    type Item = Result<Stored, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(m))) => {
                let item = match m.info() {
                    Ok(info) => Ok(Stored {
                        seq: info.stream_sequence,
                        pending: info.pending,
                        subject: m.subject.to_string(),
                        payload: m.payload.clone(),
                    }),
                    Err(source) => Err(BusError::Stream {
                        stream: this.stream.clone(),
                        op: "a message without JetStream metadata",
                        source,
                    }),
                };
                Poll::Ready(Some(item))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BusError::Stream {
                stream: this.stream.clone(),
                op: "read",
                source: Box::new(e),
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Bus {
    fn stream_error(&self, op: &'static str) -> impl Fn(super::Source) -> BusError + '_ {
        move |source| BusError::Stream {
            stream: self.cfg.stream.clone(),
            op,
            source,
        }
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.cfg.stream.clone(),
            subjects: vec![event::all_filter()],
            max_age: self.cfg.max_age,
            duplicate_window: self.cfg.duplicate_window,
            num_replicas: self.cfg.replicas,
            storage: stream::StorageType::File,
            // Direct gets let readers fetch by sequence cheaply (`tail`, the web page).
            allow_direct: true,
            ..Default::default()
        }
    }

    /// The chat stream, without fetching its info.
    pub(super) async fn chat_stream(&self) -> Result<stream::Stream<()>, BusError> {
        self.js
            .get_stream_no_info(&self.cfg.stream)
            .await
            .map_err(|e| self.stream_error("open")(Box::new(e)))
    }

    /// What tells this incarnation of the chat stream from a deleted and
    /// recreated one (whose sequences start again at 1): its creation time.
    pub async fn stream_epoch(&self) -> Result<String, BusError> {
        let stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| self.stream_error("open")(Box::new(e)))?;
        Ok(stream
            .cached_info()
            .created
            .unix_timestamp_nanos()
            .to_string())
    }

    /// Create the stream, or update it when its configuration differs from ours.
    pub async fn ensure_stream(&self) -> Result<(), BusError> {
        let want = self.stream_config();
        let name = want.name.clone();
        match self.js.get_stream(&name).await {
            Ok(mut s) => {
                let info = s
                    .info()
                    .await
                    .map_err(|e| self.stream_error("read its settings")(Box::new(e)))?;
                let have = &info.config;
                let differs = have.subjects != want.subjects
                    || have.max_age != want.max_age
                    || have.duplicate_window != want.duplicate_window
                    || have.num_replicas != want.num_replicas
                    || have.allow_direct != want.allow_direct;
                if differs {
                    tracing::info!(stream = %name, "updating stream configuration");
                    self.js
                        .update_stream(want)
                        .await
                        .map_err(|e| self.stream_error("update")(Box::new(e)))?;
                }
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(_)
                ) =>
            {
                tracing::info!(stream = %name, "creating stream");
                self.js
                    .create_stream(want)
                    .await
                    .map_err(|e| self.stream_error("create")(Box::new(e)))?;
                Ok(())
            }
            Err(e) => Err(BusError::NoJetStream {
                url: self.cfg.url.clone(),
                source: Box::new(e),
            }),
        }
    }

    /// Retry [`Bus::ensure_stream`] until it succeeds or `shutdown` fires.
    pub async fn ensure_stream_retrying(&self, shutdown: &CancellationToken) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.ensure_stream().await {
                Ok(()) => return true,
                Err(err) => {
                    tracing::warn!(error = %err, "stream not ready, retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// Publish one event and wait for its PubAck; returns the stream sequence.
    /// Used where a caller must know the event is stored (CLI `send`, HTTP API).
    pub async fn publish_now(&self, ev: &ChatEvent) -> Result<u64, BusError> {
        Ok(self.publish_acked(ev).await?.sequence)
    }

    /// Publish one event and wait for its PubAck; `None` when the stream
    /// already had an event of that id (within the duplicate window).
    pub async fn publish_new(&self, ev: &ChatEvent) -> Result<Option<u64>, BusError> {
        let ack = self.publish_acked(ev).await?;
        Ok((!ack.duplicate).then_some(ack.sequence))
    }

    async fn publish_acked(
        &self,
        ev: &ChatEvent,
    ) -> Result<jetstream::publish::PublishAck, BusError> {
        let subject = ev.subject();
        let err = |source: super::Source| BusError::Publish {
            subject: subject.clone(),
            source,
        };
        self.js
            .send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(Bytes::from(ev.to_json()))
                    .message_id(&ev.id),
            )
            .await
            .map_err(|e| err(Box::new(e)))?
            .await
            .map_err(|e| err(Box::new(e)))
    }

    /// The newest message stored under `subject` (its payload), if any.
    pub async fn last_payload(&self, subject: &str) -> Result<Option<Bytes>, BusError> {
        use jetstream::stream::LastRawMessageErrorKind;
        let stream = self.chat_stream().await?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some(m.payload)),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            // No stream yet: nothing was ever stored.
            Err(e)
                if matches!(
                    e.kind(),
                    LastRawMessageErrorKind::JetStream(ref j)
                        if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.stream_error("read the last message")(Box::new(e))),
        }
    }

    /// The first and last sequence held by the stream.
    pub async fn stream_bounds(&self) -> Result<(u64, u64), BusError> {
        let stream = self.chat_stream().await?;
        let info = stream
            .get_info()
            .await
            .map_err(|e| self.stream_error("read its state")(Box::new(e)))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// The first stream sequence from which `filter` has at most `n` messages, found
    /// by asking the server how many matching messages follow a start sequence
    /// (binary search: a few cheap ephemeral consumers, no scan of the history).
    pub async fn start_for_last(&self, filter: &str, n: u64) -> Result<u64, BusError> {
        let mut stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| self.stream_error("open")(Box::new(e)))?;
        let state = stream
            .info()
            .await
            .map_err(|e| self.stream_error("read its state")(Box::new(e)))?
            .state
            .clone();
        if state.messages == 0 || n == 0 {
            return Ok(state.last_sequence + 1);
        }
        let (mut lo, mut hi) = (state.first_sequence.max(1), state.last_sequence + 1);
        match self.pending_from(&stream, filter, lo).await? {
            // None of the stream is `filter`'s: start after it all, so that a
            // reader knows at once that it has caught up.
            0 => return Ok(hi),
            p if p <= n => return Ok(lo),
            _ => {}
        }
        // Invariant: pending_from(lo) > n, pending_from(hi) <= n.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.pending_from(&stream, filter, mid).await? > n {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(hi)
    }

    async fn pending_from(
        &self,
        stream: &stream::Stream,
        filter: &str,
        start: u64,
    ) -> Result<u64, BusError> {
        let probe_error = |op, source| BusError::Consumer {
            consumer: "probe".into(),
            op,
            source,
        };
        let mut c = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: filter.to_string(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(5),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| probe_error("create", Box::new(e)))?;
        let info = c
            .info()
            .await
            .map_err(|e| probe_error("read its state", Box::new(e)))?;
        let pending = info.num_pending;
        let name = info.name.clone();
        // Best effort: the inactivity threshold removes it anyway.
        let _ = stream.delete_consumer(&name).await;
        Ok(pending)
    }

    /// An ordered, flow-controlled read of `filter` from `start` (a sequence) or
    /// from a time; used by `tail` and the web surface.
    pub async fn read_ordered(
        &self,
        filter: &str,
        start: ReadFrom,
    ) -> Result<StoredReader, BusError> {
        let stream = self.chat_stream().await?;
        let deliver_policy = match start {
            ReadFrom::Sequence(s) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: s.max(1),
            },
            ReadFrom::Time(t) => consumer::DeliverPolicy::ByStartTime { start_time: t },
            ReadFrom::New => consumer::DeliverPolicy::New,
        };
        let c = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| self.stream_error("create a reader")(Box::new(e)))?;
        let inner = c
            .messages()
            .await
            .map_err(|e| self.stream_error("read")(Box::new(e)))?;
        Ok(StoredReader {
            inner,
            stream: self.cfg.stream.clone(),
        })
    }
}
