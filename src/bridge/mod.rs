//! The boundary between the core and the platforms: the [`Bridge`] trait every
//! platform implements, what a bridge is handed ([`Inbound`], its channels, its
//! health slot), the shape of an outbound [`Delivery`] and of its failure, the
//! supervisor that keeps a bridge running, and the typed [`Platform`]
//! descriptor with the one list of platforms (`crate::platforms`).
//!
//! A bridge owns its platform connection and its markup; it never touches NATS.
//! Routing, pacing, retries and acks are the router's.

mod catchup;
mod delivery;
mod inbound;
mod media;
mod moderate;
mod platform;
mod recheck;
mod render;
mod supervise;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::config::{CommonBridgeConfig, Direction};
use crate::event::ChatEvent;
use crate::status::{Health, State};

pub use catchup::{History, Window, catch_up_all, catch_up_channel};
pub use delivery::{
    Action, Combined, DeliverError, DeliverFailure, Delivery, Later, OutboundSpec, Posted,
    post_parts,
};
pub use inbound::{EventStore, Inbound, StoreError};
pub use media::{MAX_MEDIA, Media, MediaError, MediaIndex};
pub use moderate::{ModerateError, UserAction, UserActionKind};
pub use platform::{Account, AccountChannel, AnyPlatform, BuildError, Descriptor, Platform};
pub use recheck::Found;
pub use render::{default_render, notice_text, render_text_only};
pub use supervise::supervise;

/// Why a bridge's connection ended.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Credentials missing or refused: retrying will not help until the
    /// operator fixes `setting`.
    #[error("{why} (check {setting})")]
    Auth { why: String, setting: String },
    /// The platform could not be reached or the connection broke.
    #[error("{context}: {source}")]
    Connection {
        context: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection ended without an error of its own (a client stopped).
    #[error("{0}")]
    Ended(&'static str),
}

impl BridgeError {
    pub fn auth(why: impl Into<String>, setting: impl Into<String>) -> Self {
        BridgeError::Auth {
            why: why.into(),
            setting: setting.into(),
        }
    }

    pub fn connection(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BridgeError::Connection {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// A bridge's view of its own health.
#[derive(Clone)]
pub struct StatusReporter {
    bridge: String,
    health: Health,
}

impl StatusReporter {
    pub fn new(bridge: &str, health: Health) -> Self {
        StatusReporter {
            bridge: bridge.to_string(),
            health,
        }
    }
    pub fn connecting(&self, why: impl Into<String>) {
        self.health
            .set_bridge(&self.bridge, State::Connecting(why.into()));
    }
    pub fn connected(&self) {
        if self.health.bridge(&self.bridge) != Some(State::Connected) {
            tracing::info!("bridge connected");
        }
        self.health.set_bridge(&self.bridge, State::Connected);
    }
}

/// What [`Bridge::run`] is given.
pub struct BridgeContext {
    pub inbound: Inbound,
    pub status: StatusReporter,
    /// Every channel of this bridge that a room uses, with its direction.
    pub channels: Vec<(String, Direction)>,
    /// A stop began: read nothing new from the platform, queue what was
    /// already received (and acknowledge it where the platform wants that),
    /// then return.
    pub shutdown: CancellationToken,
    /// [`STOP_INBOUND`] after `shutdown`: whatever is still not queued is
    /// left; return now.
    pub give_up: CancellationToken,
}

/// How long a stopping bridge may take to queue what it already received
/// (the whole stop stays within 10 s: the publisher then has the rest).
pub const STOP_INBOUND: std::time::Duration = std::time::Duration::from_secs(3);

/// A chat platform account.
#[async_trait]
pub trait Bridge: Send + Sync + 'static {
    /// The bridge name (`twitch`, or the `<name>` of `[bridges.<name>]`).
    fn name(&self) -> &str;

    fn common(&self) -> &CommonBridgeConfig;

    fn spec(&self) -> OutboundSpec;

    /// The author's name made safe and readable on this platform.
    fn render_name(&self, name: &str) -> String;

    /// Common markup made safe on this platform (mentions and commands defused).
    fn render_text(&self, markup: &str) -> String;

    /// The posts for `event` in `channel`: the template filled with the rendered
    /// name and text, fitted to the platform's limit.
    fn render(&self, event: &ChatEvent, channel: &str) -> Vec<String> {
        default_render(self, event, channel)
    }

    /// Connect, join `ctx.channels`, and hand inbound events to `ctx.inbound` until
    /// the connection ends or `ctx.shutdown` fires. Returning restarts it with backoff.
    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError>;

    /// Perform one delivery. Must not return before the platform accepted it; a
    /// failure says how many parts of a split post were accepted before it.
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<Posted, DeliverFailure>;

    /// Act on a user in `channel` (a timeout, a ban, an unban) with the
    /// platform's own moderation.
    async fn moderate(&self, _channel: &str, _action: &UserAction) -> Result<(), ModerateError> {
        Err(ModerateError::Unsupported(format!(
            "{} has no way for jetbridge to act on users",
            self.name()
        )))
    }

    /// Open a file this bridge linked to (see [`Inbound::media_link`]).
    async fn media(&self, _reference: &str) -> Result<Media, MediaError> {
        Err(MediaError::Gone)
    }
}
