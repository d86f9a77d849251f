//! The JetStream bus: the only module that talks to NATS.
//!
//! It owns the connection, the `CHAT` stream (created or updated to match config),
//! inbound publishing (deduplicated by `Nats-Msg-Id`, acknowledged by PubAck, held in
//! a bounded drop-oldest queue while NATS is away), the durable outbound consumers,
//! the per-bridge key-value map from event id to the platform message it became,
//! and the ordered reads used by `tail`. What to publish and where to deliver is
//! decided by `router`; bridges never see this module.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, stream};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::NatsConfig;
use crate::event::{self, ChatEvent};
use crate::status::{Health, State};

/// Failures talking to NATS, by operation.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    // The cause is part of the message, not a `source`, so that printing the
    // error chain does not repeat it.
    #[error("cannot connect to NATS at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("cannot read the credentials file {path}: {detail}")]
    Credentials { path: String, detail: String },
    #[error(
        "the NATS server at {url} does not answer JetStream requests: start it with JetStream enabled (nats-server -js) ({detail})"
    )]
    NoJetStream { url: String, detail: String },
    #[error("stream {stream}: {detail}")]
    Stream { stream: String, detail: String },
    #[error("consumer {consumer}: {detail}")]
    Consumer { consumer: String, detail: String },
    #[error("key-value bucket {bucket}: {detail}")]
    KeyValue { bucket: String, detail: String },
    #[error("publish to {subject}: {detail}")]
    Publish { subject: String, detail: String },
}

/// A connected bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    cfg: Arc<NatsConfig>,
}

impl Bus {
    /// Connect to NATS. With `wait`, an unreachable server is retried in the
    /// background (the process keeps running and `/readyz` says why it is not
    /// ready); without, a refused connection is an immediate error (CLI commands).
    pub async fn connect(cfg: &NatsConfig, health: Health, wait: bool) -> Result<Bus, BusError> {
        let mut opts = match &cfg.credentials {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| BusError::Credentials {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if !cfg.token.is_empty() {
            opts = opts.token(cfg.token.expose().to_string());
        }
        if !cfg.user.is_empty() {
            opts = opts.user_and_password(cfg.user.clone(), cfg.password.expose().to_string());
        }
        let events_health = health.clone();
        opts = opts
            .name("jetbridge")
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(None)
            // async-nats' default backoff grows to 4 s; chat wants a quicker return.
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((100 * 2u64.pow(attempt.min(4) as u32)).min(1_000))
            })
            .event_callback(move |ev| {
                let health = events_health.clone();
                async move {
                    match ev {
                        async_nats::Event::Connected => {
                            tracing::info!("nats connected");
                            health.set_nats(State::Connected);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("nats disconnected, reconnecting");
                            health.set_nats(State::Connecting("disconnected".into()));
                        }
                        other => tracing::debug!(event = %other, "nats event"),
                    }
                }
            });
        if wait {
            opts = opts.retry_on_initial_connect();
        }
        health.set_nats(State::Connecting(String::new()));
        let url = cfg.url.clone();
        let client = opts
            .connect(url.as_str())
            .await
            .map_err(|e| BusError::Connect {
                url: url.clone(),
                detail: innermost(&e),
            })?;
        if client.connection_state() == async_nats::connection::State::Connected {
            health.set_nats(State::Connected);
        } else {
            health.set_nats(State::Connecting(format!("no NATS server at {url} yet")));
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client.clone());
        Ok(Bus {
            client,
            js,
            cfg: Arc::new(cfg.clone()),
        })
    }

    pub fn config(&self) -> &NatsConfig {
        &self.cfg
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
    async fn chat_stream(&self) -> Result<stream::Stream<()>, BusError> {
        self.js
            .get_stream_no_info(&self.cfg.stream)
            .await
            .map_err(|e| BusError::Stream {
                stream: self.cfg.stream.clone(),
                detail: e.to_string(),
            })
    }

    /// What tells this incarnation of the chat stream from a deleted and
    /// recreated one (whose sequences start again at 1): its creation time.
    pub async fn stream_epoch(&self) -> Result<String, BusError> {
        let stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| BusError::Stream {
                stream: self.cfg.stream.clone(),
                detail: e.to_string(),
            })?;
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
                let info = s.info().await.map_err(|e| BusError::Stream {
                    stream: name.clone(),
                    detail: e.to_string(),
                })?;
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
                        .map_err(|e| BusError::Stream {
                            stream: name.clone(),
                            detail: format!("cannot update: {e}"),
                        })?;
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
                    .map_err(|e| BusError::Stream {
                        stream: name.clone(),
                        detail: format!("cannot create: {e}"),
                    })?;
                Ok(())
            }
            Err(e) => Err(BusError::NoJetStream {
                url: self.cfg.url.clone(),
                detail: e.to_string(),
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
        let subject = ev.subject();
        let err = |detail: String| BusError::Publish {
            subject: subject.clone(),
            detail,
        };
        let ack = self
            .js
            .send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(Bytes::from(ev.to_json()))
                    .message_id(&ev.id),
            )
            .await
            .map_err(|e| err(e.to_string()))?
            .await
            .map_err(|e| err(e.to_string()))?;
        Ok(ack.sequence)
    }

    /// The durable pull consumer that feeds one bridge's outbound deliveries.
    ///
    /// One consumer per bridge (not per channel or room): its filter is the set of
    /// rooms the bridge writes to, so its cost does not grow with the number of
    /// mapped channels; per-channel ordering and isolation are done in memory by
    /// the router. A new consumer starts at `since` (this process's start), so
    /// turning a bridge on does not replay a week of history into its channels,
    /// yet nothing published while the consumer was being created is skipped. An
    /// existing consumer keeps its position; only its filters follow the config.
    pub async fn outbound_consumer(
        &self,
        bridge: &str,
        filters: Vec<String>,
        since: time::OffsetDateTime,
    ) -> Result<consumer::PullConsumer, BusError> {
        let name = format!("jetbridge-out-{bridge}");
        let stream = self.chat_stream().await?;
        let deliver_policy = match stream.consumer_info(&name).await {
            // The start position of an existing consumer cannot change.
            Ok(info) => info.config.deliver_policy,
            Err(_) => consumer::DeliverPolicy::ByStartTime { start_time: since },
        };
        self.create_outbound(&stream, &name, bridge, filters, deliver_policy)
            .await
    }

    async fn create_outbound(
        &self,
        stream: &stream::Stream<()>,
        name: &str,
        bridge: &str,
        filters: Vec<String>,
        deliver_policy: consumer::DeliverPolicy,
    ) -> Result<consumer::PullConsumer, BusError> {
        let err = |detail: String| BusError::Consumer {
            consumer: name.to_string(),
            detail,
        };
        let (filter_subject, filter_subjects) = if filters.len() == 1 {
            (filters[0].clone(), Vec::new())
        } else {
            (String::new(), filters)
        };
        let config = consumer::pull::Config {
            durable_name: Some(name.to_string()),
            description: Some(format!("jetbridge outbound deliveries for bridge {bridge}")),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.cfg.ack_wait,
            max_ack_pending: self.cfg.max_ack_pending,
            deliver_policy,
            filter_subject,
            filter_subjects,
            max_deliver: -1,
            ..Default::default()
        };
        stream
            .create_consumer(config)
            .await
            .map_err(|e| err(e.to_string()))
    }

    /// Like [`Bus::outbound_consumer`], for an instance that just became the
    /// bridge's outbound leader. When the previous leader left deliveries
    /// unacknowledged (it crashed, or was cut off), the consumer is recreated at
    /// the ack floor so they come again at once and in order, instead of after
    /// `ack_wait` and behind newer ones. Returns the consumer and the last stream
    /// sequence that may already have been posted: up to it, deliveries must be
    /// checked against the id map.
    pub async fn take_over_outbound(
        &self,
        bridge: &str,
        filters: Vec<String>,
        since: time::OffsetDateTime,
    ) -> Result<(consumer::PullConsumer, u64), BusError> {
        let name = format!("jetbridge-out-{bridge}");
        let err = |detail: String| BusError::Consumer {
            consumer: name.clone(),
            detail,
        };
        let stream = self.chat_stream().await?;
        let mut verify_until = 0;
        if let Ok(info) = stream.consumer_info(&name).await
            && info.num_ack_pending > 0
        {
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
                .map_err(|e| err(format!("cannot reset: {e}")))?;
            let c = self
                .create_outbound(
                    &stream,
                    &name,
                    bridge,
                    filters,
                    consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                )
                .await?;
            return Ok((c, verify_until));
        }
        let c = self.outbound_consumer(bridge, filters, since).await?;
        Ok((c, verify_until))
    }

    /// A lease named `name` in the bucket `jetbridge-leases`: at most one holder
    /// at a time, lost `ttl` after its holder stops renewing it.
    pub async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, BusError> {
        let bucket = "jetbridge-leases".to_string();
        // An entry nobody renews disappears: that is the lease's expiry.
        let store = self
            .key_value(
                &bucket,
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

    /// The first and last sequence held by the stream.
    pub async fn stream_bounds(&self) -> Result<(u64, u64), BusError> {
        let err = |detail: String| BusError::Stream {
            stream: self.cfg.stream.clone(),
            detail,
        };
        let stream = self.chat_stream().await?;
        let info = stream.get_info().await.map_err(|e| err(e.to_string()))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// The first stream sequence from which `filter` has at most `n` messages, found
    /// by asking the server how many matching messages follow a start sequence
    /// (binary search: a few cheap ephemeral consumers, no scan of the history).
    pub async fn start_for_last(&self, filter: &str, n: u64) -> Result<u64, BusError> {
        let err = |detail: String| BusError::Stream {
            stream: self.cfg.stream.clone(),
            detail,
        };
        let mut stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| err(e.to_string()))?;
        let state = stream
            .info()
            .await
            .map_err(|e| err(e.to_string()))?
            .state
            .clone();
        if state.messages == 0 || n == 0 {
            return Ok(state.last_sequence + 1);
        }
        let (mut lo, mut hi) = (state.first_sequence.max(1), state.last_sequence + 1);
        if self.pending_from(&stream, filter, lo).await? <= n {
            return Ok(lo);
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
            .map_err(|e| BusError::Consumer {
                consumer: "probe".into(),
                detail: e.to_string(),
            })?;
        let info = c.info().await.map_err(|e| BusError::Consumer {
            consumer: "probe".into(),
            detail: e.to_string(),
        })?;
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
    ) -> Result<consumer::pull::Ordered, BusError> {
        let err = |detail: String| BusError::Stream {
            stream: self.cfg.stream.clone(),
            detail,
        };
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
            .map_err(|e| err(e.to_string()))?;
        c.messages().await.map_err(|e| err(e.to_string()))
    }

    /// A key-value bucket of ours (one value per key, on file), created or
    /// updated to this configuration.
    async fn key_value(
        &self,
        bucket: &str,
        description: String,
        max_age: Duration,
    ) -> Result<kv::Store, BusError> {
        self.js
            .create_or_update_key_value(kv::Config {
                bucket: bucket.to_string(),
                description,
                history: 1,
                max_age,
                num_replicas: self.cfg.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| kv_error(bucket, e))
    }

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

    /// Flush what the client has buffered (used before exiting).
    pub async fn flush(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await;
    }
}

/// The root cause of an error: async-nats repeats its chain in every level.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

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

/// Where an ordered read starts.
#[derive(Debug, Clone, Copy)]
pub enum ReadFrom {
    Sequence(u64),
    Time(time::OffsetDateTime),
    New,
}

/// What a bridge posted for one event in one channel: the platform's id of the
/// copy (when the platform gives one) and anything it needs to edit or delete it
/// later (a Discord webhook id, say).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Platform message ids of the copy (several when a long message was split).
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
    /// Set when the copy is one post that coalesced several events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<Combined>,
}

impl Posted {
    /// Whether a later edit, delete or reply can find this copy on its
    /// platform (it has an id); only such copies need an id map entry.
    pub fn can_be_referenced(&self) -> bool {
        !self.ids.is_empty() || self.extra.is_some()
    }
}

/// The members of a coalesced post, with the line each one became, so that
/// deleting one member can drop just its line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combined {
    pub members: Vec<String>,
    pub lines: Vec<String>,
}

/// Event id → [`Posted`] for one bridge. The key is `<channel token>.<event id>`,
/// with the event id escaped to the key alphabet.
///
/// Beside the entries, each channel has a watermark (`<channel token>.=wm`, a
/// key no escaped event id can produce): the last stream sequence the channel
/// handled. A channel handles its events in stream order, so everything of the
/// channel at or below the watermark was posted (or deliberately skipped).
#[derive(Clone)]
pub struct IdMap {
    store: kv::Store,
    bucket: String,
}

impl IdMap {
    /// Key for an event delivered to `channel`.
    pub fn key(channel: &str, event_id: &str) -> String {
        let mut key = event::channel_token(channel);
        key.push('.');
        for b in event_id.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                key.push(b as char);
            } else {
                key.push_str(&format!("={b:02X}"));
            }
        }
        key
    }

    fn watermark_key(channel: &str) -> String {
        // `=` followed by a non-hex letter: never the escape of an event id.
        format!("{}.=wm", event::channel_token(channel))
    }

    /// The channel's watermark, if it was written in `scope` (see [`MarkScope`]).
    pub async fn watermark(
        &self,
        channel: &str,
        scope: &MarkScope,
    ) -> Result<Option<u64>, BusError> {
        let v = self
            .store
            .get(Self::watermark_key(channel))
            .await
            .map_err(|e| self.kv_error(e))?;
        Ok(v.and_then(|b| serde_json::from_slice::<Watermark>(&b).ok())
            .filter(|w| w.scope == *scope)
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
            .map_err(|e| self.kv_error(e))?;
        Ok(())
    }

    fn kv_error(&self, e: impl std::fmt::Display) -> BusError {
        kv_error(&self.bucket, e)
    }

    pub async fn get(&self, channel: &str, event_id: &str) -> Result<Option<Posted>, BusError> {
        let key = Self::key(channel, event_id);
        let v = self.store.get(&key).await.map_err(|e| self.kv_error(e))?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub async fn put(
        &self,
        channel: &str,
        event_id: &str,
        posted: &Posted,
    ) -> Result<(), BusError> {
        let key = Self::key(channel, event_id);
        // Plain data; cannot fail to serialize.
        let bytes = serde_json::to_vec(posted).expect("Posted serializes");
        self.store
            .put(&key, bytes.into())
            .await
            .map_err(|e| self.kv_error(e))?;
        Ok(())
    }
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

fn kv_error(bucket: &str, e: impl std::fmt::Display) -> BusError {
    BusError::KeyValue {
        bucket: bucket.to_string(),
        detail: e.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
struct Watermark {
    seq: u64,
    #[serde(flatten)]
    scope: MarkScope,
}

/// One event waiting to be published.
struct Pending {
    subject: String,
    id: String,
    payload: Bytes,
    queued: Instant,
}

/// The inbound side: a bounded queue drained in order by one publisher task.
/// `submit` never blocks and never fails: when the queue is full the oldest
/// event is dropped, logged and counted.
#[derive(Clone)]
pub struct Publisher {
    queue: Arc<Queue>,
}

struct Queue {
    items: std::sync::Mutex<VecDeque<Pending>>,
    capacity: usize,
    notify: Notify,
    /// Signalled when the publisher takes items out (room in the queue).
    space: Notify,
    dropped: AtomicU64,
    health: Health,
}

/// How many publishes are in flight (sent, PubAck awaited) at once.
const PUBLISH_WINDOW: usize = 256;

impl Publisher {
    pub fn new(capacity: usize, health: Health) -> Self {
        Publisher {
            queue: Arc::new(Queue {
                items: std::sync::Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                notify: Notify::new(),
                space: Notify::new(),
                dropped: AtomicU64::new(0),
                health,
            }),
        }
    }

    /// Queue an event, waiting for room while NATS is connected: a burst faster
    /// than JetStream takes it slows the platform reads down instead of dropping
    /// anything. While NATS is away the queue drops its oldest (see [`submit`]).
    ///
    /// [`submit`]: Publisher::submit
    pub async fn submit_wait(&self, ev: &ChatEvent) {
        loop {
            let space = self.queue.space.notified();
            if self.depth() < self.queue.capacity || !self.queue.health.nats_connected() {
                self.submit(ev);
                return;
            }
            // Re-check now and then: NATS may go away while we wait.
            let _ = tokio::time::timeout(Duration::from_millis(100), space).await;
        }
    }

    /// Queue an event for publishing. Returns once it is queued (not stored).
    pub fn submit(&self, ev: &ChatEvent) {
        let pending = Pending {
            subject: ev.subject(),
            id: ev.id.clone(),
            payload: Bytes::from(ev.to_json()),
            queued: Instant::now(),
        };
        let dropped = {
            let mut items = self.queue.lock();
            let dropped = if items.len() >= self.queue.capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(pending);
            metrics::gauge!("jetbridge_queue_depth").set(items.len() as f64);
            dropped
        };
        if let Some(d) = dropped {
            let n = self.queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("jetbridge_queue_dropped_total").increment(1);
            tracing::error!(
                event_id = %d.id,
                dropped_total = n,
                capacity = self.queue.capacity,
                "inbound queue full while NATS is unreachable: dropped the oldest event"
            );
        }
        self.queue.notify.notify_one();
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// Events waiting to be published.
    pub fn depth(&self) -> usize {
        self.queue.lock().len()
    }

    async fn next_batch(&self, max: usize) -> Vec<Pending> {
        loop {
            // Register interest before looking, so a submit between the look and
            // the wait is not missed.
            let notified = self.queue.notify.notified();
            {
                let mut items = self.queue.lock();
                if !items.is_empty() {
                    let n = items.len().min(max);
                    let batch: Vec<Pending> = items.drain(..n).collect();
                    metrics::gauge!("jetbridge_queue_depth").set(items.len() as f64);
                    self.queue.space.notify_waiters();
                    return batch;
                }
            }
            notified.await;
        }
    }

    /// Publish queued events in order until `shutdown`, then flush what is left
    /// (bounded by `drain_for`).
    pub async fn run(self, bus: Bus, shutdown: CancellationToken, drain_for: Duration) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
        let mut batch: VecDeque<Pending> = VecDeque::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if batch.is_empty() {
                if shutdown.is_cancelled() && self.depth() == 0 {
                    return;
                }
                tokio::select! {
                    items = self.next_batch(PUBLISH_WINDOW) => batch.extend(items),
                    _ = shutdown.cancelled(), if deadline.is_none() => {
                        deadline = Some(tokio::time::Instant::now() + drain_for);
                        continue;
                    }
                }
            }
            match publish_window(&bus.js, &batch).await {
                Ok(()) => {
                    batch.clear();
                    backoff.reset();
                }
                Err((first_failed, err)) => {
                    // Everything before the first failure is stored; retry the rest
                    // in order. A retried message that was in fact stored collapses
                    // in JetStream's dedupe window.
                    batch.drain(..first_failed);
                    tracing::warn!(error = %err, waiting = batch.len() + self.depth(), "publish failed, retrying");
                    metrics::counter!("jetbridge_publish_retries_total").increment(1);
                    let delay = backoff.next_delay();
                    if let Some(d) = deadline
                        && tokio::time::Instant::now() + delay > d
                    {
                        tracing::error!(
                            lost = batch.len() + self.depth(),
                            "shutting down with events NATS never acknowledged"
                        );
                        return;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // The queue holds plain data; a panic elsewhere cannot leave it torn.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn publish_window(
    js: &jetstream::Context,
    batch: &VecDeque<Pending>,
) -> Result<(), (usize, String)> {
    let mut acks = Vec::with_capacity(batch.len());
    for (i, p) in batch.iter().enumerate() {
        let publish = jetstream::message::PublishMessage::build()
            .payload(p.payload.clone())
            .message_id(&p.id);
        match js.send_publish(p.subject.clone(), publish).await {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                // Earlier sends may still be acked; wait for them so the index of
                // the first failure is exact.
                return match first_failure(acks).await {
                    Some(f) => Err(f),
                    None => Err((i, e.to_string())),
                };
            }
        }
    }
    let stored = Instant::now();
    match first_failure(acks).await {
        Some(f) => Err(f),
        None => {
            for p in batch {
                metrics::histogram!("jetbridge_publish_latency_seconds")
                    .record(stored.duration_since(p.queued).as_secs_f64());
            }
            metrics::counter!("jetbridge_events_published_total").increment(batch.len() as u64);
            Ok(())
        }
    }
}

async fn first_failure(acks: Vec<jetstream::context::PublishAckFuture>) -> Option<(usize, String)> {
    let mut failed = None;
    for (i, ack) in acks.into_iter().enumerate() {
        let res = ack.await;
        if failed.is_none()
            && let Err(e) = res
        {
            failed = Some((i, e.to_string()));
        }
    }
    failed
}
