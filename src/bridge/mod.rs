//! The `Bridge` trait every platform implements, what a bridge is handed (an
//! [`Inbound`] sink, its channels, its health slot), the shape of an outbound
//! [`Delivery`], the supervisor that keeps a bridge running, and the registry of
//! platforms.
//!
//! A bridge owns its platform connection and its markup; it never touches NATS.
//! Routing, pacing, retries and acks are the router's.

pub mod discord;
pub mod slack;
pub mod twitch;
pub mod web;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::bus::{Bus, BusError, Posted, Publisher};
use crate::config::{BridgeConfig, CommonBridgeConfig, Config, Direction};
use crate::event::ChatEvent;
use crate::ratelimit::Rate;
use crate::render::{self, TemplateVars};
use crate::status::{Health, State};

/// What a platform accepts per post and per channel.
#[derive(Debug, Clone)]
pub struct OutboundSpec {
    /// Longest post, in Unicode scalar values, counting everything on the wire.
    pub max_chars: usize,
    /// The platform's published per-channel send limit.
    pub rate: Option<Rate>,
    /// Whether posted copies can be edited (deletes are assumed possible).
    pub can_edit: bool,
    /// How coalesced lines are joined into one post.
    pub joiner: &'static str,
    /// The template used when `format` is empty.
    pub default_format: &'static str,
}

/// One outbound action for one channel.
#[derive(Debug)]
pub enum Action<'a> {
    /// Post `parts` (already rendered and fitted) as consecutive messages.
    Post {
        parts: Vec<String>,
        /// The copy, in this channel, of the message this one replies to.
        reply_to: Option<&'a Posted>,
    },
    /// Replace the text of a copy.
    Edit {
        target: &'a Posted,
        parts: Vec<String>,
    },
    /// Remove a copy.
    Delete { target: &'a Posted },
}

/// A delivery handed to [`Bridge::deliver`].
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The platform channel as configured.
    pub channel: &'a str,
    /// The event (for a coalesced post, the first of them).
    pub event: &'a ChatEvent,
    pub action: Action<'a>,
    /// Several events coalesced into one post (each line from the template): post
    /// as the bridge itself, not as one author.
    pub combined: bool,
}

/// Why a delivery did not happen, and so what the router does next.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Transient (network, 5xx, not connected yet): retry the same delivery with
    /// backoff, keeping the channel's order.
    #[error("retry: {0}")]
    Retry(String),
    /// The platform said slow down: retry after exactly this long.
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// Will never succeed (unknown channel, forbidden, rejected content): log it,
    /// count it, and move on.
    #[error("giving up: {0}")]
    Reject(String),
}

/// Why a bridge's connection ended.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Credentials refused: retrying will not help until the operator fixes them.
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Connection(String),
}

/// The sink a bridge hands inbound events to. It fills in the room, drops what the
/// channel's direction says not to read, and queues the rest for publishing.
#[derive(Clone)]
pub struct Inbound {
    bridge: String,
    /// Channel (as configured) → room, for channels that are read.
    rooms: Arc<HashMap<String, String>>,
    publisher: Publisher,
    bus: Bus,
}

impl Inbound {
    pub fn new(config: &Config, bridge: &str, publisher: Publisher, bus: Bus) -> Self {
        let rooms = config
            .rooms
            .iter()
            .flat_map(|r| {
                r.channels
                    .iter()
                    .filter(|c| c.bridge == bridge && c.direction.reads())
                    .map(move |c| (c.channel.clone(), r.name.clone()))
            })
            .collect();
        Inbound {
            bridge: bridge.to_string(),
            rooms: Arc::new(rooms),
            publisher,
            bus,
        }
    }

    /// Publish `ev` (its room already set) now and wait until JetStream stored
    /// it; returns its stream sequence. For callers that must answer with it
    /// (the send API), and that can tell their client to retry.
    pub async fn publish_acked(&self, ev: ChatEvent) -> Result<u64, BusError> {
        let seq = self.bus.publish_now(&ev).await?;
        metrics::counter!("jetbridge_messages_in_total", "bridge" => self.bridge.clone(), "room" => ev.room.clone(), "kind" => ev.kind.as_str())
            .increment(1);
        Ok(seq)
    }

    /// Queue `ev` (whose `source.channel` is the configured channel) for publishing,
    /// waiting for room in the queue while NATS is connected. Returns false when
    /// the channel is not read by any room.
    pub async fn publish(&self, mut ev: ChatEvent) -> bool {
        let Some(room) = self.rooms.get(&ev.source.channel) else {
            return false;
        };
        ev.room = room.clone();
        tracing::debug!(event_id = %ev.id, kind = ev.kind.as_str(), room = %ev.room, "inbound");
        metrics::counter!("jetbridge_messages_in_total", "bridge" => self.bridge.clone(), "room" => ev.room.clone(), "kind" => ev.kind.as_str())
            .increment(1);
        self.publisher.submit_wait(&ev).await;
        true
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
    pub shutdown: CancellationToken,
}

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

    /// Perform one delivery. Must not return before the platform accepted it.
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<Posted, DeliverError>;
}

/// The text alone (attachments as links), rendered and fitted: for posts whose
/// poster already shows the author (a Discord webhook, a Slack custom name).
pub fn render_text_only<B: Bridge + ?Sized>(b: &B, event: &ChatEvent) -> Vec<String> {
    let mut text = event.text.clone();
    for a in &event.attachments {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&a.url);
    }
    let common = b.common();
    render::fit(
        &b.render_text(&text),
        b.spec().max_chars,
        common.long_messages,
        common.max_parts,
        |t: &str| t.to_string(),
    )
}

/// The template (`format`, or the platform's default) filled with the rendered
/// name and text, attachments as links, fitted to the platform's limit.
pub fn default_render<B: Bridge + ?Sized>(b: &B, event: &ChatEvent, channel: &str) -> Vec<String> {
    let spec = b.spec();
    let common = b.common();
    let template = if common.format.is_empty() {
        spec.default_format
    } else {
        common.format.as_str()
    };
    let name = b.render_name(event.author_name());
    let mut text = event.text.clone();
    for a in &event.attachments {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&a.url);
    }
    let text = b.render_text(&text);
    let bridge = b.render_name(&event.source.bridge);
    let wrap = |t: &str| {
        render::apply_template(
            template,
            &TemplateVars {
                name: &name,
                bridge: &bridge,
                channel,
                text: t,
            },
        )
    };
    render::fit(
        &text,
        spec.max_chars,
        common.long_messages,
        common.max_parts,
        wrap,
    )
}

/// Keep `bridge` running until `shutdown`: restart it with jittered exponential
/// backoff whenever it returns, report its state, never let it stop the others.
pub async fn supervise(
    bridge: Arc<dyn Bridge>,
    inbound: Inbound,
    channels: Vec<(String, Direction)>,
    health: Health,
    shutdown: CancellationToken,
) {
    let name = bridge.name().to_string();
    let span = tracing::info_span!("bridge", bridge = %name);
    async move {
        let status = StatusReporter::new(&name, health);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        loop {
            status.connecting("");
            let started = Instant::now();
            let ctx = BridgeContext {
                inbound: inbound.clone(),
                status: status.clone(),
                channels: channels.clone(),
                shutdown: shutdown.child_token(),
            };
            let result = bridge.run(ctx).await;
            if shutdown.is_cancelled() {
                break;
            }
            // A connection that stayed up a while earns a quick first retry.
            if started.elapsed() > Duration::from_secs(60) {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            match &result {
                Ok(()) => {
                    tracing::warn!(retry_in = ?delay, "bridge connection ended, reconnecting")
                }
                Err(BridgeError::Auth(msg)) => {
                    tracing::error!(error = %msg, retry_in = ?delay, "bridge login refused")
                }
                Err(BridgeError::Connection(msg)) => {
                    tracing::warn!(error = %msg, retry_in = ?delay, "bridge connection failed")
                }
            }
            metrics::counter!("jetbridge_reconnects_total", "bridge" => name.clone()).increment(1);
            status.connecting(match result {
                Ok(()) => "reconnecting".to_string(),
                Err(e) => e.to_string(),
            });
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        tracing::info!("bridge stopped");
    }
    .instrument(span)
    .await
}

/// The platforms this build knows.
pub mod registry {
    use super::*;
    use serde_json::Value;

    /// Every platform name accepted in config.
    pub const PLATFORMS: &[&str] = &["twitch", "discord", "slack"];

    /// Whether this build can run a bridge of `platform`.
    pub fn available(platform: &str) -> bool {
        matches!(platform, "twitch" | "discord" | "slack")
    }

    /// Check one platform-specific option of a channel in a room's table form.
    pub fn check_channel_option(platform: &str, key: &str, value: &Value) -> Result<(), String> {
        match platform {
            "discord" => discord::check_channel_option(key, value),
            _ => Err(
                "unknown key (known: bridge, channel, direction, ignore_authors, ignore_text)"
                    .to_string(),
            ),
        }
    }

    /// Parse the platform-specific keys, for validation.
    pub fn check_settings(platform: &str, settings: &Value) -> Result<(), String> {
        match platform {
            "twitch" => twitch::TwitchConfig::parse(settings).map(|_| ()),
            "discord" => discord::DiscordConfig::parse(settings).map(|_| ()),
            "slack" => slack::SlackConfig::parse(settings).map(|_| ()),
            other => Err(format!("unknown platform {other:?}")),
        }
    }

    /// The canonical form of a channel reference, or why it is invalid.
    pub fn normalize_channel(platform: &str, channel: &str) -> Result<String, String> {
        match platform {
            "twitch" => twitch::normalize_channel(channel),
            "discord" => discord::normalize_channel(channel),
            "slack" => slack::normalize_channel(channel),
            other => Err(format!("unknown platform {other:?}")),
        }
    }

    /// A reason this account cannot post, if any (anonymous Twitch is read-only).
    pub fn write_warning(platform: &str, settings: &Value) -> Option<String> {
        match platform {
            "twitch" => twitch::TwitchConfig::parse(settings)
                .ok()
                .filter(|c| c.is_anonymous())
                .map(|_| {
                    "the twitch login is anonymous (read-only): nothing will be posted there"
                        .to_string()
                }),
            _ => None,
        }
    }

    /// Build the bridge for an enabled account.
    pub fn build(cfg: &BridgeConfig, config: &Config) -> Result<Arc<dyn Bridge>, String> {
        match cfg.platform.as_str() {
            "twitch" => Ok(Arc::new(twitch::TwitchBridge::new(cfg)?)),
            "discord" => Ok(Arc::new(discord::DiscordHandle::new(cfg, config)?)),
            "slack" => Ok(Arc::new(slack::SlackHandle::new(cfg)?)),
            other => Err(format!("the {other} bridge is not part of this build yet")),
        }
    }
}
