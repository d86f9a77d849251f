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
//! let config = jetbridge::platforms::load(std::path::Path::new("bridges.toml"))?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! jetbridge::run(config, jetbridge::status::Health::default(), shutdown).await?;
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod bridge;
pub mod bus;
pub mod cache;
pub mod clock;
pub mod config;
pub mod event;
pub mod feed;
pub mod http;
pub mod platforms;
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

use bridge::Inbound;
use bus::{Bus, Publisher};
use config::{Config, WEB_BRIDGE};
use router::{OutboundTiming, Routes};
use status::Health;

/// How long deliveries may go on after a stop begins.
pub const DRAIN: Duration = Duration::from_secs(5);

/// How long queued inbound events may still be stored after a stop begins
/// (docs/events.md §5.1: a stop ends within 10 s, whatever NATS is doing).
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
    let bridges = build_bridges(&config)?;
    let listener = bind_http(&config).await?;
    // Installed before anything records, so that /metrics sees every count.
    http::metrics_handle();
    let bus = Bus::connect(&config.nats, health.clone(), true).await?;
    let mut tasks = JoinSet::new();
    tasks.spawn(keep_stream(bus.clone(), shutdown.clone(), health.clone()));
    tasks.spawn(http::keep_metrics(shutdown.clone()));

    let publisher = Publisher::new(config.nats.queue_size, health.clone());
    // The publisher outlives the bridges: it stores what they queued last.
    let bridges_done = CancellationToken::new();
    let publisher_task = tokio::spawn(publisher.clone().run(
        bus.clone(),
        shutdown.clone(),
        bridges_done.clone(),
        STOP_DRAIN,
    ));
    let wiring = Wiring::new(Arc::new(config), bus.clone(), publisher, health, &listener);
    if let Some(listener) = listener {
        tasks.spawn(wiring.http(listener, &bridges, shutdown.clone()));
    }
    for bridge in bridges {
        wiring.start_bridge(&mut tasks, bridge, started, &shutdown);
    }
    tracing::info!(
        bridges = ?wiring.config.enabled_bridges().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        rooms = wiring.config.rooms.len(),
        "jetbridge running"
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down: draining deliveries");
    join_reporting(&mut tasks).await;
    bridges_done.cancel();
    if let Err(e) = publisher_task.await {
        tracing::error!(error = %e, "the publisher failed while storing the last events");
    }
    bus.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// Every enabled bridge, built from its settings (nothing connects yet).
fn build_bridges(config: &Config) -> Result<Vec<Arc<dyn bridge::Bridge>>, RunError> {
    config
        .enabled_bridges()
        .map(|b| {
            platforms::build(b, config).map_err(|source| RunError::Bridge {
                bridge: b.name.clone(),
                source,
            })
        })
        .collect()
}

/// The HTTP listener, when the surface is on: bound before anything connects,
/// so a taken port fails the start.
async fn bind_http(config: &Config) -> Result<Option<tokio::net::TcpListener>, RunError> {
    if !config.http.enabled {
        return Ok(None);
    }
    tokio::net::TcpListener::bind(&config.http.listen)
        .await
        .map(Some)
        .map_err(|source| RunError::Listen {
            listen: config.http.listen.clone(),
            source,
        })
}

/// Create or update the stream once NATS answers (retrying until `shutdown`).
async fn keep_stream(bus: Bus, shutdown: CancellationToken, health: Health) {
    if bus.ensure_stream_retrying(&shutdown).await {
        health.set_stream_ready();
        tracing::info!(stream = %bus.config().stream, "stream ready");
    }
}

/// Wait for every task; one that panicked is reported, not dropped.
async fn join_reporting(tasks: &mut JoinSet<()>) {
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a task failed while stopping");
        }
    }
}

/// What every bridge and the HTTP surface are wired to.
struct Wiring {
    config: Arc<Config>,
    bus: Bus,
    store: Arc<dyn bridge::EventStore>,
    /// Files are linked through the HTTP surface when there is one.
    media: Option<Arc<dyn bridge::MediaIndex>>,
    health: Health,
}

impl Wiring {
    fn new(
        config: Arc<Config>,
        bus: Bus,
        publisher: Publisher,
        health: Health,
        listener: &Option<tokio::net::TcpListener>,
    ) -> Self {
        let media = listener.as_ref().map(|_| {
            Arc::new(store::JetStreamMedia::new(
                bus.clone(),
                config.http.base_url(),
            )) as Arc<dyn bridge::MediaIndex>
        });
        let store = Arc::new(store::JetStreamStore {
            bus: bus.clone(),
            publisher,
            id_maps: Default::default(),
        });
        Wiring {
            config,
            bus,
            store,
            media,
            health,
        }
    }

    /// The inbound sink of bridge `name`.
    fn inbound(&self, name: &str) -> Inbound {
        let inbound = Inbound::new(&self.config, name, self.store.clone(), self.health.clone());
        match &self.media {
            Some(m) => inbound.with_media(m.clone()),
            None => inbound,
        }
    }

    /// The HTTP surface's task.
    fn http(
        &self,
        listener: tokio::net::TcpListener,
        bridges: &[Arc<dyn bridge::Bridge>],
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let bridges: Arc<std::collections::HashMap<_, _>> = Arc::new(
            bridges
                .iter()
                .map(|b| (b.name().to_string(), b.clone()))
                .collect(),
        );
        let console = router::Console::new(
            Arc::new(self.bus.clone()),
            self.config.clone(),
            bridges.clone(),
        );
        let state = http::AppState {
            config: self.config.clone(),
            feeds: feed::Feeds::new(self.bus.clone(), shutdown.clone()),
            health: self.health.clone(),
            inbound: self.inbound(WEB_BRIDGE),
            media: self.media.clone(),
            bridges,
            media_slots: http::media_slots(),
            console: Arc::new(console),
        };
        self.health.set_bridge(WEB_BRIDGE, status::State::Connected);
        http::serve(listener, state, shutdown)
    }

    /// A bridge's two tasks: its supervised connection (inbound) and its
    /// outbound router.
    fn start_bridge(
        &self,
        tasks: &mut JoinSet<()>,
        bridge: Arc<dyn bridge::Bridge>,
        started: time::OffsetDateTime,
        shutdown: &CancellationToken,
    ) {
        let name = bridge.name().to_string();
        self.health
            .set_bridge(&name, status::State::Connecting(String::new()));
        let channels: Vec<_> = self
            .config
            .channels_of(&name)
            .map(|(_, c)| (c.channel.clone(), c.direction))
            .collect();
        tasks.spawn(bridge::supervise(
            bridge.clone(),
            self.inbound(&name),
            channels,
            self.health.clone(),
            shutdown.clone(),
        ));
        let routes = Arc::new(Routes::new(&self.config, &name));
        tasks.spawn(router::run_outbound(
            Arc::new(self.bus.clone()),
            bridge,
            routes,
            OutboundTiming {
                drain: DRAIN,
                since: started,
                clock: clock::Clock::System,
            },
            shutdown.clone(),
        ));
    }
}
