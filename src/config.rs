//! Configuration: loading `bridges.toml` plus `JETBRIDGE_` environment overrides
//! with figment, and validating it into a [`Config`] the rest of the process trusts.
//!
//! This module owns the shape of the file and every validation rule that can be
//! checked without connecting anywhere. Platform-specific keys are parsed by the
//! bridge that owns them (see `bridge::registry`), so this module never names a
//! platform; it only splits off the keys that every bridge shares.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::bridge::registry;

/// Name reserved for the built-in web surface (HTTP API and chat page).
pub const WEB_BRIDGE: &str = "web";

/// A secret string (token, password). `Debug` and `Display` never show the value,
/// so a secret cannot leak through a log line, `check` output or an error.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that hands it to a platform.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Env overrides arrive as scalars of any type (`JETBRIDGE_HTTP__API_TOKEN=1234`
        // parses as an integer), and a token is a token whatever it looks like.
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) => Ok(Secret(s)),
            Value::Number(n) => Ok(Secret(n.to_string())),
            Value::Bool(b) => Ok(Secret(b.to_string())),
            _ => Err(serde::de::Error::custom("expected a string")),
        }
    }
}

/// A humantime duration in config (`"2m"`, `"7d"`, `"500ms"`).
pub(crate) mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (expected e.g. \"500ms\", \"2m\", \"7d\")"
            ))
        })
    }
}

/// `[nats]`: how to reach JetStream and the shape of the `CHAT` stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL, or a comma-separated list for a cluster.
    pub url: String,
    /// Stream holding every chat event; created if missing, updated if it differs.
    pub stream: String,
    /// How long events are kept (replay window).
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// JetStream dedupe window for `Nats-Msg-Id`.
    #[serde(with = "duration")]
    pub duplicate_window: Duration,
    /// Stream replicas (1 for a single server).
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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            api_token: Secret::default(),
            cors_origins: Vec::new(),
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
#[serde(default)]
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
        }
    }
}

const COMMON_KEYS: &[&str] = &[
    "enabled",
    "format",
    "long_messages",
    "max_parts",
    "rate_limit",
    "coalesce_after",
];

/// One configured bridge (an account on a platform).
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The bridge name: `twitch`, or `<name>` of `[bridges.<name>]`.
    pub name: String,
    pub platform: String,
    pub common: CommonBridgeConfig,
    /// The platform-specific keys, already checked by the platform's parser.
    pub settings: Value,
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
    /// Platform-specific options of the table form (Discord `webhook_url`).
    pub options: serde_json::Map<String, Value>,
    /// The platform channel, normalized by its bridge (`#streamer` for Twitch).
    pub channel: String,
    pub direction: Direction,
    pub rules: Rules,
}

#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub name: String,
    pub channels: Vec<ChannelConfig>,
    pub rules: Rules,
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
}

/// Every problem found in a configuration, each naming the file and key path.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file (or `<string>`) the configuration came from.
    pub file: String,
    pub problems: Vec<String>,
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

// No deny_unknown_fields: serde ignores it with `flatten`; every other top-level
// key lands in `platform_sections` and is checked against the platform names.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    nats: Option<Value>,
    #[serde(default)]
    http: Option<Value>,
    #[serde(default)]
    bridges: BTreeMap<String, Value>,
    #[serde(default)]
    rooms: Vec<Value>,
    // Platform-named sections are accounts named after their platform.
    #[serde(flatten)]
    platform_sections: BTreeMap<String, Value>,
}

/// True when `name` uses the subject-safe alphabet of rooms and bridge names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Load from a TOML file plus `JETBRIDGE_` env overrides (`__` nests keys).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = path.display().to_string();
    if !path.exists() {
        return Err(ConfigError {
            file: source,
            problems: vec![
                "file not found (pass --config PATH or set JETBRIDGE_CONFIG)".to_string(),
            ],
        });
    }
    let figment = Figment::from(Toml::file(path)).merge(env_provider());
    from_figment(figment, source)
}

/// Load from a TOML string (tests, `check` on stdin), env overrides included.
pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
    from_figment(
        Figment::from(Toml::string(toml)).merge(env_provider()),
        "<string>".into(),
    )
}

fn env_provider() -> Env {
    // These JETBRIDGE_ variables steer the CLI, not the config file.
    Env::prefixed("JETBRIDGE_")
        .ignore(&["config", "log", "log_format"])
        .split("__")
}

fn from_figment(figment: Figment, source: String) -> Result<Config, ConfigError> {
    let raw: RawConfig = figment.extract().map_err(|e| ConfigError {
        file: source.clone(),
        problems: e.into_iter().map(|e| describe_figment_error(&e)).collect(),
    })?;
    let mut v = Validator::default();
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

fn describe_figment_error(e: &figment::Error) -> String {
    let path = e.path.join(".");
    let from = e
        .metadata
        .as_ref()
        .map(|m| {
            if m.name.contains("environment") {
                " (from environment)".to_string()
            } else {
                String::new()
            }
        })
        .unwrap_or_default();
    if path.is_empty() {
        format!("{}{from}", e.kind)
    } else {
        format!("{path}: {}{from}", e.kind)
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Validator {
    fn problem(&mut self, path: &str, msg: impl fmt::Display) {
        self.problems.push(format!("{path}: {msg}"));
    }

    /// Deserialize a section, turning serde's message into a key-path problem.
    fn section<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        path: &str,
        v: Option<Value>,
    ) -> T {
        match v {
            None => T::default(),
            Some(v) => match T::deserialize(v) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(path, e);
                    T::default()
                }
            },
        }
    }

    fn config(&mut self, raw: RawConfig, source: String) -> Config {
        let nats: NatsConfig = self.section("nats", raw.nats);
        let http: HttpConfig = self.section("http", raw.http);
        if nats.queue_size == 0 {
            self.problem("nats.queue_size", "must be at least 1");
        }
        if !is_valid_name(&nats.stream) {
            self.problem(
                "nats.stream",
                format!("{:?} may only use A-Z a-z 0-9 _ -", nats.stream),
            );
        }
        if http.enabled && http.listen.parse::<std::net::SocketAddr>().is_err() {
            self.problem(
                "http.listen",
                format!("{:?} is not an address like 127.0.0.1:8080", http.listen),
            );
        }

        let mut bridges = BTreeMap::new();
        for (name, section) in raw.platform_sections {
            if !registry::PLATFORMS.contains(&name.as_str()) {
                self.problem(
                    &name,
                    format!(
                        "unknown section (known: nats, http, bridges, rooms, {})",
                        registry::PLATFORMS.join(", ")
                    ),
                );
                continue;
            }
            let platform = name.clone();
            if let Some(b) = self.bridge(&name, &name, Some(platform), section) {
                bridges.insert(name, b);
            }
        }
        for (name, section) in raw.bridges {
            let path = format!("bridges.{name}");
            if !is_valid_name(&name) || name == WEB_BRIDGE {
                self.problem(
                    &path,
                    "bridge names use A-Z a-z 0-9 _ - and \"web\" is reserved",
                );
                continue;
            }
            if bridges.contains_key(&name) {
                self.problem(
                    &path,
                    format!("bridge {name:?} is already defined by the [{name}] section"),
                );
                continue;
            }
            if let Some(b) = self.bridge(&path, &name, None, section) {
                bridges.insert(name, b);
            }
        }

        let rooms = self.rooms(raw.rooms, &bridges);
        Config {
            source,
            nats,
            http,
            bridges,
            rooms,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    fn bridge(
        &mut self,
        path: &str,
        name: &str,
        platform: Option<String>,
        section: Value,
    ) -> Option<BridgeConfig> {
        let Value::Object(mut map) = section else {
            self.problem(path, "expected a table");
            return None;
        };
        let platform = match (platform, map.remove("platform")) {
            (Some(p), None) => p,
            (Some(p), Some(Value::String(q))) if p == q => p,
            (Some(p), Some(_)) => {
                self.problem(
                    &format!("{path}.platform"),
                    format!("the [{p}] section is always platform {p:?}"),
                );
                return None;
            }
            (None, Some(Value::String(p))) => p,
            (None, _) => {
                self.problem(
                    &format!("{path}.platform"),
                    format!(
                        "missing or not a string (expected one of: {})",
                        registry::PLATFORMS.join(", ")
                    ),
                );
                return None;
            }
        };
        if !registry::PLATFORMS.contains(&platform.as_str()) {
            self.problem(
                &format!("{path}.platform"),
                format!(
                    "unknown platform {platform:?} (known: {})",
                    registry::PLATFORMS.join(", ")
                ),
            );
            return None;
        }
        let mut common_map = serde_json::Map::new();
        for key in COMMON_KEYS {
            if let Some(v) = map.remove(*key) {
                common_map.insert((*key).to_string(), v);
            }
        }
        let common: CommonBridgeConfig = self.section(path, Some(Value::Object(common_map)));
        if common.max_parts == 0 {
            self.problem(&format!("{path}.max_parts"), "must be at least 1");
        }
        for placeholder in template_placeholders(&common.format) {
            if !["name", "bridge", "channel", "text"].contains(&placeholder.as_str()) {
                self.problem(
                    &format!("{path}.format"),
                    format!(
                        "unknown placeholder {{{placeholder}}} (known: {{name}}, {{bridge}}, {{channel}}, {{text}})"
                    ),
                );
            }
        }
        let settings = Value::Object(map);
        if let Err(e) = registry::check_settings(&platform, &settings) {
            self.problem(path, e);
            return None;
        }
        if common.enabled && !registry::available(&platform) {
            self.problem(
                &format!("{path}.enabled"),
                format!("the {platform} bridge is not part of this build yet; set enabled = false"),
            );
        }
        Some(BridgeConfig {
            name: name.to_string(),
            platform,
            common,
            settings,
        })
    }

    fn rules(&mut self, path: &str, map: &mut serde_json::Map<String, Value>) -> Rules {
        let mut rules = Rules::default();
        if let Some(v) = map.remove("ignore_authors") {
            match Vec::<String>::deserialize(v) {
                Ok(list) => {
                    rules.ignore_authors = list.into_iter().map(|a| a.to_lowercase()).collect()
                }
                Err(e) => self.problem(&format!("{path}.ignore_authors"), e),
            }
        }
        if let Some(v) = map.remove("ignore_text") {
            match Vec::<String>::deserialize(v) {
                Ok(list) => {
                    for (i, pattern) in list.iter().enumerate() {
                        match Regex::new(pattern) {
                            Ok(re) => rules.ignore_text.push(re),
                            Err(e) => self.problem(
                                &format!("{path}.ignore_text[{i}]"),
                                format!("invalid regex {pattern:?}: {e}"),
                            ),
                        }
                    }
                }
                Err(e) => self.problem(&format!("{path}.ignore_text"), e),
            }
        }
        rules
    }

    fn rooms(
        &mut self,
        raw: Vec<Value>,
        bridges: &BTreeMap<String, BridgeConfig>,
    ) -> Vec<RoomConfig> {
        let mut rooms = Vec::new();
        let mut room_names = BTreeSet::new();
        // A channel feeds one room: its events carry one room and one id.
        let mut seen_channels: BTreeMap<(String, String), String> = BTreeMap::new();
        for (i, room) in raw.into_iter().enumerate() {
            let path = format!("rooms[{i}]");
            let Value::Object(mut map) = room else {
                self.problem(&path, "expected a table with name and channels");
                continue;
            };
            let name = match map.remove("name") {
                Some(Value::String(n)) => n,
                _ => {
                    self.problem(&format!("{path}.name"), "missing or not a string");
                    continue;
                }
            };
            if !is_valid_name(&name) {
                self.problem(
                    &format!("{path}.name"),
                    format!(
                        "{name:?} may only use A-Z a-z 0-9 _ - (it becomes a NATS subject token)"
                    ),
                );
            }
            if !room_names.insert(name.clone()) {
                self.problem(&format!("{path}.name"), format!("duplicate room {name:?}"));
            }
            let rules = self.rules(&path, &mut map);
            let channels_v = map.remove("channels");
            for key in map.keys() {
                self.problem(
                    &format!("{path}.{key}"),
                    "unknown key (known: name, channels, ignore_authors, ignore_text)",
                );
            }
            let channels_v = match channels_v {
                Some(Value::Array(a)) => a,
                None => Vec::new(),
                Some(_) => {
                    self.problem(&format!("{path}.channels"), "expected a list");
                    continue;
                }
            };
            let mut channels = Vec::new();
            for (j, ch) in channels_v.into_iter().enumerate() {
                let cpath = format!("{path}.channels[{j}]");
                if let Some(c) = self.channel(&cpath, ch, bridges) {
                    let key = (c.bridge.clone(), c.channel.clone());
                    if let Some(other) = seen_channels.get(&key) {
                        self.problem(
                            &cpath,
                            format!(
                                "{}:{} is already in room {other:?} (a channel belongs to one room)",
                                c.bridge, c.channel
                            ),
                        );
                        continue;
                    }
                    seen_channels.insert(key, name.clone());
                    channels.push(c);
                }
            }
            rooms.push(RoomConfig {
                name,
                channels,
                rules,
            });
        }
        rooms
    }

    fn channel(
        &mut self,
        path: &str,
        v: Value,
        bridges: &BTreeMap<String, BridgeConfig>,
    ) -> Option<ChannelConfig> {
        let (bridge, channel, direction, rules, options) = match v {
            Value::String(s) => {
                let Some((b, c)) = s.split_once(':') else {
                    self.problem(
                        path,
                        format!("{s:?} is not \"<bridge>:<channel>\" (e.g. \"twitch:#streamer\")"),
                    );
                    return None;
                };
                (
                    b.to_string(),
                    c.to_string(),
                    Direction::Both,
                    Rules::default(),
                    serde_json::Map::new(),
                )
            }
            Value::Object(mut map) => {
                let bridge = match map.remove("bridge") {
                    Some(Value::String(b)) => b,
                    _ => {
                        self.problem(&format!("{path}.bridge"), "missing or not a string");
                        return None;
                    }
                };
                let channel = match map.remove("channel") {
                    Some(Value::String(c)) => c,
                    _ => {
                        self.problem(&format!("{path}.channel"), "missing or not a string");
                        return None;
                    }
                };
                let direction = match map.remove("direction") {
                    None => Direction::Both,
                    Some(v) => match Direction::deserialize(v) {
                        Ok(d) => d,
                        Err(_) => {
                            self.problem(
                                &format!("{path}.direction"),
                                "expected \"in\", \"out\" or \"both\"",
                            );
                            Direction::Both
                        }
                    },
                };
                let rules = self.rules(path, &mut map);
                // The rest are the platform's options, checked below.
                (bridge, channel, direction, rules, map)
            }
            _ => {
                self.problem(
                    path,
                    "expected \"<bridge>:<channel>\" or { bridge = …, channel = … }",
                );
                return None;
            }
        };
        if bridge == WEB_BRIDGE {
            self.problem(
                path,
                "the web surface is part of every room; do not list it as a channel",
            );
            return None;
        }
        let Some(b) = bridges.get(&bridge) else {
            let mut known: Vec<&str> = bridges.keys().map(String::as_str).collect();
            for p in registry::PLATFORMS {
                if !known.contains(p) {
                    known.push(p);
                }
            }
            self.problem(
                path,
                format!("unknown bridge {bridge:?} (known: {})", known.join(", ")),
            );
            return None;
        };
        for (key, value) in &options {
            if let Err(e) = registry::check_channel_option(&b.platform, key, value) {
                self.problem(&format!("{path}.{key}"), e);
            }
        }
        let channel = match registry::normalize_channel(&b.platform, &channel) {
            Ok(c) => c,
            Err(e) => {
                self.problem(path, e);
                return None;
            }
        };
        if !b.common.enabled {
            self.warnings.push(format!(
                "{path}: {bridge}:{channel} belongs to bridge {bridge:?}, which is disabled; it is skipped"
            ));
        } else if direction.writes()
            && let Some(w) = registry::write_warning(&b.platform, &b.settings)
        {
            self.warnings.push(format!(
                "{path}: {bridge}:{channel} has direction {direction:?} but {w}",
                direction = direction_name(direction)
            ));
        }
        Some(ChannelConfig {
            bridge,
            options,
            channel,
            direction,
            rules,
        })
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
        Direction::Both => "both",
    }
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
