//! The JetStream bus: the only module that talks to NATS, and no type of
//! async-nats leaves it.
//!
//! It owns the connection (one server or a cluster's seed list), the `CHAT`
//! stream ([`stream`]: created or updated to match config, ordered reads),
//! inbound publishing ([`Publisher`]: deduplicated by `Nats-Msg-Id`,
//! acknowledged by PubAck, a bounded drop-oldest queue while NATS is away), the
//! durable outbound consumers ([`consumer`]: each message with its own ack
//! handle), leases ([`Lease`]) and the per-bridge id maps ([`IdMap`]). What to
//! publish and where to deliver is decided elsewhere.

mod consumer;
mod idmap;
mod lease;
mod media;
mod publisher;
mod stream;
mod verdicts;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};

use crate::config::NatsConfig;
use crate::status::{Health, State};

pub use consumer::{AckHandle, Delivered, Outbound};
pub use idmap::{IdMap, MarkScope, Reactors};
pub use lease::{Lease, Renewal};
pub use media::MediaBucket;
pub use publisher::Publisher;
pub use stream::{ReadFrom, Stored, StoredReader};
pub use verdicts::{Verdict, Verdicts};

/// Failures talking to NATS, by operation.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    // As nats.rs does: the message ends with its cause, which is also kept as
    // the `source` for callers that look deeper.
    // async-nats repeats its chain at every level of a connect error: the
    // root cause says it once.
    #[error("cannot connect to NATS at {url}: {}", root_cause(.source.as_ref()))]
    Connect { url: String, source: Source },
    #[error("cannot read the credentials file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the NATS server at {url} does not answer JetStream requests: start it with JetStream enabled (nats-server -js) ({source})"
    )]
    NoJetStream { url: String, source: Source },
    #[error("stream {stream}: {op}: {source}")]
    Stream {
        stream: String,
        op: &'static str,
        source: Source,
    },
    #[error("consumer {consumer}: {op}: {source}")]
    Consumer {
        consumer: String,
        op: &'static str,
        source: Source,
    },
    #[error("key-value bucket {bucket}: {source}")]
    KeyValue { bucket: String, source: Source },
    #[error("publish to {subject}: {source}")]
    Publish { subject: String, source: Source },
}

/// The cause of a [`BusError`]: async-nats' own error, kept whole.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// A connected bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    cfg: Arc<NatsConfig>,
}

impl Bus {
    /// Connect to NATS (any of the seed servers of `cfg.url`). With `wait`, an
    /// unreachable server is retried in the background (the process keeps
    /// running and `/readyz` says why it is not ready); without, a refused
    /// connection is an immediate error (CLI commands).
    pub async fn connect(cfg: &NatsConfig, health: Health, wait: bool) -> Result<Bus, BusError> {
        let url = cfg.url.clone();
        let seeds: Vec<async_nats::ServerAddr> = cfg
            .seeds()
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: std::io::Error| BusError::Connect {
                url: url.clone(),
                source: Box::new(e),
            })?;
        let mut opts = match &cfg.credentials {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| BusError::Credentials {
                    path: path.display().to_string(),
                    source: e,
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
        let client = opts.connect(seeds).await.map_err(|e| BusError::Connect {
            url: url.clone(),
            source: Box::new(e),
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

    /// A key-value bucket of ours (one value per key, on file, with the
    /// configured replicas), created or updated to this configuration.
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
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| kv_error(bucket, e))
    }

    /// Flush what the client has buffered (used before exiting).
    pub async fn flush(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
    }
}

/// The root cause of an error.
fn root_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur
}

fn kv_error(bucket: &str, e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::KeyValue {
        bucket: bucket.to_string(),
        source: Box::new(e),
    }
}
