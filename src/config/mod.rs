//! Configuration: loading `bridges.toml` plus `JETBRIDGE_` environment overrides
//! with figment, and validating it into a [`Config`] the rest of the process
//! trusts.
//!
//! This module owns the shape of the file and every rule that can be checked
//! without connecting anywhere. It never names a platform: [`load`] is handed
//! the platforms of this build ([`PlatformSchema`]), and each parses its own
//! keys once into a typed value kept here opaque.

mod room;
mod schema;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use regex::Regex;
use serde::Deserialize;

pub use room::Notices;
pub use schema::{
    AccountSettings, ChannelOptions, InvalidChannel, InvalidSetting, NoOptions, PlatformSchema,
    options_as, settings_as,
};
pub use secret::{Secret, duration};

/// Name reserved for the built-in web surface (HTTP API and chat page).
pub const WEB_BRIDGE: &str = "web";

/// `[nats]`: how to reach JetStream and the shape of the `CHAT` stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL, or a comma-separated list of seed servers of a cluster.
    pub url: String,
    /// Stream holding every chat event; created if missing, updated if it differs.
    pub stream: String,
    /// How long events are kept (replay window).
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// JetStream dedupe window for `Nats-Msg-Id`.
    #[serde(with = "duration")]
    pub duplicate_window: Duration,
    /// Replicas of the stream and of every bucket (1 for a single server).
    pub replicas: usize,
    /// Path to a `.creds` file.
    pub credentials: Option<PathBuf>,
    /// Token authentication.
    pub token: Secret,
    /// User/password authentication.
    pub user: String,
    pub password: Secret,
    /// Inbound events held in memory while NATS is unreachable; the oldest are
    /// dropped (and counted) beyond this.
    pub queue_size: usize,
    /// Outbound events in flight per bridge before the consumer pauses.
    pub max_ack_pending: i64,
    /// How long an outbound delivery may stay unacknowledged before JetStream
    /// offers it again (to this or another instance).
    #[serde(with = "duration")]
    pub ack_wait: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "CHAT".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            credentials: None,
            token: Secret::default(),
            user: String::new(),
            password: Secret::default(),
            queue_size: 10_000,
            max_ack_pending: 20_000,
            ack_wait: Duration::from_secs(60),
        }
    }
}

impl NatsConfig {
    /// The seed servers of `url`, trimmed, without empty entries.
    pub fn seeds(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// `[http]`: the web viewer, send API, health and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: String,
    /// Bearer token for `POST`; empty disables sending.
    pub api_token: Secret,
    /// Origins allowed to call the API from a browser (`["*"]` for any); empty =
    /// same origin only.
    pub cors_origins: Vec<String>,
    /// How viewers elsewhere reach this server (the links to media jetbridge
    /// serves); empty = `http://<listen>`.
    pub public_url: String,
    /// Bearer token of the moderator's console and the moderation route;
    /// empty turns both off. Separate from `api_token`: sending is not
    /// moderating.
    pub mod_token: Secret,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            api_token: Secret::default(),
            cors_origins: Vec::new(),
            public_url: String::new(),
            mod_token: Secret::default(),
        }
    }
}

impl HttpConfig {
    /// The base of links to this server, without a trailing slash.
    pub fn base_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

/// What to do with a message longer than the platform allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LongMessages {
    Split,
    Truncate,
}

/// Keys every bridge section shares, whatever its platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommonBridgeConfig {
    pub enabled: bool,
    /// Outbound template with `{name}`, `{bridge}`, `{channel}`, `{text}`; empty = the
    /// platform's default.
    pub format: String,
    pub long_messages: LongMessages,
    pub max_parts: usize,
    /// Our own pacing to the platform's published limits; a 429 is honoured either way.
    pub rate_limit: bool,
    /// A channel whose backlog waits longer than this gets its queue coalesced into
    /// one post.
    #[serde(with = "duration")]
    pub coalesce_after: Duration,
    /// Catch up on start and after a lost session from the platform's history
    /// (default: on where the platform keeps history). Resolved at load.
    pub backfill: Option<bool>,
    /// At most this many messages per channel and catch-up (the newest).
    pub backfill_max: usize,
    /// Never older than this.
    #[serde(with = "duration")]
    pub backfill_max_age: Duration,
    /// Catch-up also re-reads the messages stored this long before the last
    /// one (at most `backfill_max`): edits and deletions made meanwhile become
    /// events. "0s" turns the re-read off.
    #[serde(with = "duration")]
    pub backfill_recheck: Duration,
}

impl Default for CommonBridgeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            format: String::new(),
            long_messages: LongMessages::Split,
            max_parts: 3,
            rate_limit: true,
            coalesce_after: Duration::from_secs(2),
            backfill: None,
            backfill_max: 500,
            backfill_max_age: Duration::from_secs(24 * 3600),
            backfill_recheck: Duration::from_secs(3600),
        }
    }
}

impl CommonBridgeConfig {
    /// Whether this account catches up from history.
    pub fn backfill_on(&self) -> bool {
        self.backfill == Some(true)
    }
}

/// The keys of [`CommonBridgeConfig`], split off a section before its platform
/// reads the rest.
const COMMON_KEYS: &[&str] = &[
    "enabled",
    "format",
    "long_messages",
    "max_parts",
    "rate_limit",
    "coalesce_after",
    "backfill",
    "backfill_max",
    "backfill_max_age",
    "backfill_recheck",
];

/// One configured bridge (an account on a platform).
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The bridge name: `twitch`, or `<name>` of `[bridges.<name>]`.
    pub name: String,
    pub platform: &'static str,
    pub common: CommonBridgeConfig,
    /// The platform's own keys, parsed by the platform.
    pub settings: Arc<dyn AccountSettings>,
}

/// Which way messages flow between a channel and its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    Both,
}

impl Direction {
    /// The channel's messages enter the room.
    pub fn reads(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
    /// The room's messages are posted to the channel.
    pub fn writes(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        }
    }
}

/// `ignore_authors` / `ignore_text` for a room or one channel.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Lower-cased author logins, ids or display names.
    pub ignore_authors: Vec<String>,
    pub ignore_text: Vec<Regex>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.ignore_authors.is_empty() && self.ignore_text.is_empty()
    }
}

/// A channel of a room, resolved.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub bridge: String,
    /// The platform channel, normalized by its platform (`#streamer` for Twitch).
    pub channel: String,
    pub direction: Direction,
    pub rules: Rules,
    /// The platform's options of the table form, parsed by the platform.
    pub options: Arc<dyn ChannelOptions>,
}

#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub name: String,
    pub channels: Vec<ChannelConfig>,
    pub rules: Rules,
    /// Moderation hold: messages are relayed only this long after they were
    /// sent, and not at all when deleted meanwhile.
    pub hold: Option<Duration>,
    /// The notice types relayed to the room's channels.
    pub notices: Notices,
    /// A copy deleted on its platform removes the original and every other
    /// copy (`mirror_deletes`, default true).
    pub mirror_deletes: bool,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from, for messages.
    pub source: String,
    pub nats: NatsConfig,
    pub http: HttpConfig,
    /// Every configured bridge by name, enabled or not.
    pub bridges: BTreeMap<String, BridgeConfig>,
    pub rooms: Vec<RoomConfig>,
    /// Problems that `run` tolerates and `check --strict` refuses.
    pub warnings: Vec<String>,
}

impl Config {
    pub fn enabled_bridges(&self) -> impl Iterator<Item = &BridgeConfig> {
        self.bridges.values().filter(|b| b.common.enabled)
    }

    pub fn room(&self, name: &str) -> Option<&RoomConfig> {
        self.rooms.iter().find(|r| r.name == name)
    }

    /// Whether `bridge` is configured and enabled (`web` follows `[http]`).
    pub fn bridge_enabled(&self, bridge: &str) -> bool {
        if bridge == WEB_BRIDGE {
            return true;
        }
        self.bridges.get(bridge).is_some_and(|b| b.common.enabled)
    }

    /// Every channel of `bridge`, with its room.
    pub fn channels_of<'a>(
        &'a self,
        bridge: &'a str,
    ) -> impl Iterator<Item = (&'a RoomConfig, &'a ChannelConfig)> + 'a {
        self.rooms.iter().flat_map(move |r| {
            r.channels
                .iter()
                .filter(move |c| c.bridge == bridge)
                .map(move |c| (r, c))
        })
    }
}

/// What is wrong with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A key, section, bridge or platform that does not exist.
    Unknown,
    /// Present but not acceptable (type, syntax, range).
    Invalid,
    /// Required and absent.
    Missing,
    /// Said twice where once is allowed.
    Duplicate,
}

/// One problem of a configuration: where (the key path), what kind, and what
/// was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `rooms[0].channels[2]`, `twitch.server`; empty for the file as a whole.
    pub path: String,
    pub kind: ProblemKind,
    pub detail: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.detail)
        } else {
            write!(f, "{}: {}", self.path, self.detail)
        }
    }
}

/// Every problem found in a configuration, each naming the file and key path.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file (or `<string>`) the configuration came from.
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration in {} ({} problem{}):",
            self.file,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// True when `name` uses the subject-safe alphabet of rooms and bridge names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Load from a TOML file plus `JETBRIDGE_` env overrides (`__` nests keys),
/// reading platform keys with `platforms`.
pub fn load(path: &Path, platforms: &[&dyn PlatformSchema]) -> Result<Config, ConfigError> {
    let source = path.display().to_string();
    if !path.exists() {
        return Err(ConfigError {
            file: source,
            problems: vec![Problem::new(
                "",
                ProblemKind::Missing,
                "file not found (pass --config PATH or set JETBRIDGE_CONFIG)",
            )],
        });
    }
    let figment = Figment::from(Toml::file(path)).merge(env_provider());
    from_figment(figment, source, platforms)
}

/// Load from a TOML string (tests, embedding programs), env overrides included.
pub fn from_toml_str(toml: &str, platforms: &[&dyn PlatformSchema]) -> Result<Config, ConfigError> {
    from_figment(
        Figment::from(Toml::string(toml)).merge(env_provider()),
        "<string>".into(),
        platforms,
    )
}

fn env_provider() -> Env {
    // These JETBRIDGE_ variables steer the CLI, not the config file.
    Env::prefixed("JETBRIDGE_")
        .ignore(&["config", "log", "log_format"])
        .split("__")
}

fn from_figment(
    figment: Figment,
    source: String,
    platforms: &[&dyn PlatformSchema],
) -> Result<Config, ConfigError> {
    let raw: validate::RawConfig = figment.extract().map_err(|e| ConfigError {
        file: source.clone(),
        problems: e.into_iter().map(|e| figment_problem(&e)).collect(),
    })?;
    let mut v = validate::Validator::new(platforms);
    let config = v.config(raw, source.clone());
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError {
            file: source,
            problems: v.problems,
        })
    }
}

fn figment_problem(e: &figment::Error) -> Problem {
    let from = e
        .metadata
        .as_ref()
        .filter(|m| m.name.contains("environment"))
        .map_or("", |_| " (from environment)");
    Problem::new(
        e.path.join("."),
        ProblemKind::Invalid,
        format!("{}{from}", e.kind),
    )
}

/// The `{placeholder}` names used in a format template.
pub fn template_placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}
