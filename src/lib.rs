//! jetbridge: chat bridged between Twitch, Discord, Slack and the web through
//! NATS JetStream.
//!
//! Every inbound message becomes one versioned [`event::ChatEvent`] on
//! `chat.<room>.<bridge>.<channel>`; every bridge relays the stream back out to
//! the channels of the same room. This file wires config → bus → bridges and
//! their outbound routers → HTTP; each module's header says what it owns.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = jetbridge::bridge::registry::load(std::path::Path::new("bridges.toml"))?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! jetbridge::run(config, jetbridge::status::Health::default(), shutdown).await?;
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod bridge;
pub mod bus;
pub mod config;
pub mod event;
pub mod feed;
pub mod http;
pub mod ratelimit;
pub mod render;
pub mod router;
pub mod status;
pub mod store;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use bridge::{Inbound, registry};
use bus::{Bus, Publisher};
use config::{Config, WEB_BRIDGE};
use router::{OutboundTiming, Routes};
use status::Health;

/// How long deliveries may go on after a stop begins.
pub const DRAIN: Duration = Duration::from_secs(5);

/// How long queued inbound events may still be stored after a stop begins
/// (DESIGN §4: a stop ends within 10 s, whatever NATS is doing).
pub const STOP_DRAIN: Duration = Duration::from_secs(7);

/// Why `run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error("bridge {bridge}: {source}")]
    Bridge {
        bridge: String,
        source: bridge::BuildError,
    },
    #[error("http: cannot listen on {listen}: {source}")]
    Listen {
        listen: String,
        source: std::io::Error,
    },
}

/// Run every enabled bridge until `shutdown` fires, then drain and return.
///
/// NATS being down is not an error: inbound events queue in memory and everything
/// connects when it comes back, while `health` says what is not ready yet.
pub async fn run(
    config: Config,
    health: Health,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let started = time::OffsetDateTime::now_utc();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let mut bridges = Vec::new();
    for b in config.enabled_bridges() {
        let bridge = registry::build(b, &config).map_err(|source| RunError::Bridge {
            bridge: b.name.clone(),
            source,
        })?;
        bridges.push(bridge);
    }
    let listener = match config.http.enabled {
        true => Some(
            tokio::net::TcpListener::bind(&config.http.listen)
                .await
                .map_err(|source| RunError::Listen {
                    listen: config.http.listen.clone(),
                    source,
                })?,
        ),
        false => None,
    };

    // Installed before anything records, so that /metrics sees every count.
    http::metrics_handle();
    let bus = Bus::connect(&config.nats, health.clone(), true).await?;
    let mut tasks = JoinSet::new();
    {
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        let health = health.clone();
        tasks.spawn(async move {
            if bus.ensure_stream_retrying(&shutdown).await {
                health.set_stream_ready();
                tracing::info!(stream = %bus.config().stream, "stream ready");
            }
        });
    }

    let publisher = Publisher::new(config.nats.queue_size, health.clone());
    // The publisher outlives the bridges: it stores what they queued last.
    let bridges_done = CancellationToken::new();
    let publisher_task = tokio::spawn(publisher.clone().run(
        bus.clone(),
        shutdown.clone(),
        bridges_done.clone(),
        STOP_DRAIN,
    ));
    let store: Arc<dyn bridge::EventStore> = Arc::new(store::JetStreamStore {
        bus: bus.clone(),
        publisher,
    });

    let config = Arc::new(config);
    // Files are linked through the HTTP surface when there is one.
    let media: Option<Arc<dyn bridge::MediaIndex>> = listener.as_ref().map(|_| {
        Arc::new(store::JetStreamMedia::new(
            bus.clone(),
            config.http.base_url(),
        )) as Arc<dyn bridge::MediaIndex>
    });
    let inbound_of = |name: &str| {
        let inbound = Inbound::new(&config, name, store.clone(), health.clone());
        match &media {
            Some(m) => inbound.with_media(m.clone()),
            None => inbound,
        }
    };
    if let Some(listener) = listener {
        let state = http::AppState {
            config: config.clone(),
            feeds: feed::Feeds::new(bus.clone(), shutdown.clone()),
            health: health.clone(),
            inbound: inbound_of(WEB_BRIDGE),
            media: media.clone(),
            bridges: Arc::new(
                bridges
                    .iter()
                    .map(|b| (b.name().to_string(), b.clone()))
                    .collect(),
            ),
            media_slots: http::media_slots(),
        };
        health.set_bridge(WEB_BRIDGE, status::State::Connected);
        tasks.spawn(http::serve(listener, state, shutdown.clone()));
    }
    let backbone: Arc<dyn router::Backbone> = Arc::new(bus.clone());
    for bridge in bridges {
        let name = bridge.name().to_string();
        health.set_bridge(&name, status::State::Connecting(String::new()));
        let channels: Vec<_> = config
            .channels_of(&name)
            .map(|(_, c)| (c.channel.clone(), c.direction))
            .collect();
        let inbound = inbound_of(&name);
        tasks.spawn(bridge::supervise(
            bridge.clone(),
            inbound,
            channels,
            health.clone(),
            shutdown.clone(),
        ));
        let routes = Arc::new(Routes::new(&config, &name));
        tasks.spawn(router::run_outbound(
            backbone.clone(),
            bridge,
            routes,
            OutboundTiming {
                drain: DRAIN,
                since: started,
            },
            shutdown.clone(),
        ));
    }
    tracing::info!(
        bridges = ?config.enabled_bridges().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        rooms = config.rooms.len(),
        "jetbridge running"
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down: draining deliveries");
    while tasks.join_next().await.is_some() {}
    bridges_done.cancel();
    let _ = publisher_task.await;
    bus.flush().await;
    tracing::info!("stopped");
    Ok(())
}
