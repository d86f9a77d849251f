//! Turning what figment read into a [`Config`]: every key checked, every
//! problem collected with its key path, platform keys handed to their platform.
//!
//! Rooms and channels are read from the raw values by hand rather than through
//! serde: that is what lets every problem of a room name its exact key
//! (`rooms[0].channels[2].direction`) and all of them be reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::room::take_room_keys;
use super::{
    BridgeConfig, COMMON_KEYS, ChannelConfig, ChannelOptions, CommonBridgeConfig, Config,
    Direction, HttpConfig, NatsConfig, PlatformSchema, Problem, ProblemKind, RoomConfig, Rules,
    WEB_BRIDGE, is_valid_name, template_placeholders,
};

// No deny_unknown_fields: serde ignores it with `flatten`; every other top-level
// key lands in `platform_sections` and is checked against the platform names.
#[derive(Deserialize)]
pub(super) struct RawConfig {
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

/// Keys of a channel's table form that every platform shares.
const CHANNEL_KEYS: &[&str] = &[
    "bridge",
    "channel",
    "direction",
    "ignore_authors",
    "ignore_text",
];

pub(super) struct Validator<'p> {
    platforms: &'p [&'p dyn PlatformSchema],
    pub(super) problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl<'p> Validator<'p> {
    pub(super) fn new(platforms: &'p [&'p dyn PlatformSchema]) -> Self {
        Validator {
            platforms,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn problem(&mut self, path: &str, kind: ProblemKind, detail: impl Into<String>) {
        self.problems.push(Problem::new(path, kind, detail));
    }

    fn platform(&self, name: &str) -> Option<&'p dyn PlatformSchema> {
        self.platforms.iter().copied().find(|p| p.name() == name)
    }

    fn platform_names(&self) -> String {
        let names: Vec<&str> = self.platforms.iter().map(|p| p.name()).collect();
        names.join(", ")
    }

    /// Deserialize a section, turning serde's message into a key-path problem.
    fn section<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        path: &str,
        v: Option<Value>,
    ) -> T {
        match v {
            None => T::default(),
            // serde would also read a struct from a list, by position.
            Some(v) if !v.is_object() => {
                self.problem(path, ProblemKind::Invalid, "expected a table");
                T::default()
            }
            Some(v) => match T::deserialize(v) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(path, ProblemKind::Invalid, e.to_string());
                    T::default()
                }
            },
        }
    }

    pub(super) fn config(&mut self, raw: RawConfig, source: String) -> Config {
        let nats: NatsConfig = self.section("nats", raw.nats);
        let http: HttpConfig = self.section("http", raw.http);
        if nats.queue_size == 0 {
            self.problem(
                "nats.queue_size",
                ProblemKind::Invalid,
                "must be at least 1",
            );
        }
        if nats.seeds().is_empty() {
            self.problem("nats.url", ProblemKind::Missing, "names no server");
        }
        if !is_valid_name(&nats.stream) {
            self.problem(
                "nats.stream",
                ProblemKind::Invalid,
                format!("{:?} may only use A-Z a-z 0-9 _ -", nats.stream),
            );
        }
        let web_url = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        if !(http.public_url.is_empty() || web_url(&http.public_url)) {
            self.problem(
                "http.public_url",
                ProblemKind::Invalid,
                format!("{:?} is not an http(s) URL", http.public_url),
            );
        }
        if http.enabled && http.listen.parse::<std::net::SocketAddr>().is_err() {
            self.problem(
                "http.listen",
                ProblemKind::Invalid,
                format!("{:?} is not an address like 127.0.0.1:8080", http.listen),
            );
        }

        let mut bridges = BTreeMap::new();
        for (name, section) in raw.platform_sections {
            let Some(platform) = self.platform(&name) else {
                let known = self.platform_names();
                self.problem(
                    &name,
                    ProblemKind::Unknown,
                    format!("unknown section (known: nats, http, bridges, rooms, {known})"),
                );
                continue;
            };
            if let Some(b) = self.bridge(&name, &name, Some(platform), section) {
                bridges.insert(name, b);
            }
        }
        for (name, section) in raw.bridges {
            let path = format!("bridges.{name}");
            if !is_valid_name(&name) || name == WEB_BRIDGE {
                self.problem(
                    &path,
                    ProblemKind::Invalid,
                    "bridge names use A-Z a-z 0-9 _ - and \"web\" is reserved",
                );
                continue;
            }
            if bridges.contains_key(&name) {
                self.problem(
                    &path,
                    ProblemKind::Duplicate,
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
        section_platform: Option<&'p dyn PlatformSchema>,
        section: Value,
    ) -> Option<BridgeConfig> {
        let Value::Object(mut map) = section else {
            self.problem(path, ProblemKind::Invalid, "expected a table");
            return None;
        };
        let platform_path = format!("{path}.platform");
        let platform = match (section_platform, map.remove("platform")) {
            (Some(p), None) => p,
            (Some(p), Some(Value::String(q))) if p.name() == q => p,
            (Some(p), Some(_)) => {
                let p = p.name();
                self.problem(
                    &platform_path,
                    ProblemKind::Invalid,
                    format!("the [{p}] section is always platform {p:?}"),
                );
                return None;
            }
            (None, Some(Value::String(p))) => match self.platform(&p) {
                Some(platform) => platform,
                None => {
                    let known = self.platform_names();
                    self.problem(
                        &platform_path,
                        ProblemKind::Unknown,
                        format!("unknown platform {p:?} (known: {known})"),
                    );
                    return None;
                }
            },
            (None, _) => {
                let known = self.platform_names();
                self.problem(
                    &platform_path,
                    ProblemKind::Missing,
                    format!("missing or not a string (expected one of: {known})"),
                );
                return None;
            }
        };
        let mut common_map = Map::new();
        for key in COMMON_KEYS {
            if let Some(v) = map.remove(*key) {
                common_map.insert((*key).to_string(), v);
            }
        }
        let mut common: CommonBridgeConfig = self.section(path, Some(Value::Object(common_map)));
        if common.max_parts == 0 {
            self.problem(
                &format!("{path}.max_parts"),
                ProblemKind::Invalid,
                "must be at least 1",
            );
        }
        for placeholder in template_placeholders(&common.format) {
            if !["name", "bridge", "channel", "text"].contains(&placeholder.as_str()) {
                self.problem(
                    &format!("{path}.format"),
                    ProblemKind::Unknown,
                    format!(
                        "unknown placeholder {{{placeholder}}} (known: {{name}}, {{bridge}}, {{channel}}, {{text}})"
                    ),
                );
            }
        }
        let settings = match platform.settings(path, map) {
            Ok(s) => s,
            Err(problems) => {
                self.problems.extend(problems);
                return None;
            }
        };
        let history = platform.has_history() || settings.keeps_history();
        match common.backfill {
            Some(true) if !history => self.problem(
                &format!("{path}.backfill"),
                ProblemKind::Invalid,
                format!(
                    "{} keeps no history to catch up from here (leave backfill out, or false)",
                    platform.name()
                ),
            ),
            Some(_) => {}
            None => common.backfill = Some(history),
        }
        Some(BridgeConfig {
            name: name.to_string(),
            platform: platform.name(),
            common,
            settings,
        })
    }

    fn rules(&mut self, path: &str, map: &mut Map<String, Value>) -> Rules {
        let mut rules = Rules::default();
        if let Some(v) = map.remove("ignore_authors") {
            match Vec::<String>::deserialize(v) {
                Ok(list) => {
                    rules.ignore_authors = list.into_iter().map(|a| a.to_lowercase()).collect()
                }
                Err(e) => self.problem(
                    &format!("{path}.ignore_authors"),
                    ProblemKind::Invalid,
                    e.to_string(),
                ),
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
                                ProblemKind::Invalid,
                                format!("invalid regex {pattern:?}: {e}"),
                            ),
                        }
                    }
                }
                Err(e) => self.problem(
                    &format!("{path}.ignore_text"),
                    ProblemKind::Invalid,
                    e.to_string(),
                ),
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
                self.problem(
                    &path,
                    ProblemKind::Invalid,
                    "expected a table with name and channels",
                );
                continue;
            };
            let name = match map.remove("name") {
                Some(Value::String(n)) => n,
                _ => {
                    self.problem(
                        &format!("{path}.name"),
                        ProblemKind::Missing,
                        "missing or not a string",
                    );
                    continue;
                }
            };
            if !is_valid_name(&name) {
                self.problem(
                    &format!("{path}.name"),
                    ProblemKind::Invalid,
                    format!(
                        "{name:?} may only use A-Z a-z 0-9 _ - (it becomes a NATS subject token)"
                    ),
                );
            }
            if !room_names.insert(name.clone()) {
                self.problem(
                    &format!("{path}.name"),
                    ProblemKind::Duplicate,
                    format!("duplicate room {name:?}"),
                );
            }
            let rules = self.rules(&path, &mut map);
            let (keys, wrong) = take_room_keys(&mut map);
            for (key, e) in wrong {
                self.problem(
                    &format!("{path}.{key}"),
                    ProblemKind::Invalid,
                    e.to_string(),
                );
            }
            let channels_v = map.remove("channels");
            for key in map.keys() {
                self.problem(
                    &format!("{path}.{key}"),
                    ProblemKind::Unknown,
                    "unknown key (known: name, channels, hold, notices, mirror_deletes, ignore_authors, ignore_text)",
                );
            }
            let channels_v = match channels_v {
                Some(Value::Array(a)) => a,
                None => Vec::new(),
                Some(_) => {
                    self.problem(
                        &format!("{path}.channels"),
                        ProblemKind::Invalid,
                        "expected a list",
                    );
                    continue;
                }
            };
            let mut channels = Vec::new();
            for (j, ch) in channels_v.into_iter().enumerate() {
                let cpath = format!("{path}.channels[{j}]");
                let Some(c) = self.channel(&cpath, ch, bridges) else {
                    continue;
                };
                let key = (c.bridge.clone(), c.channel.clone());
                if let Some(other) = seen_channels.get(&key) {
                    self.problem(
                        &cpath,
                        ProblemKind::Duplicate,
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
            rooms.push(RoomConfig {
                name,
                channels,
                rules,
                hold: keys.hold,
                notices: keys.notices,
                mirror_deletes: keys.mirror_deletes,
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
                        ProblemKind::Invalid,
                        format!("{s:?} is not \"<bridge>:<channel>\" (e.g. \"twitch:#streamer\")"),
                    );
                    return None;
                };
                (
                    b.to_string(),
                    c.to_string(),
                    Direction::Both,
                    Rules::default(),
                    Map::new(),
                )
            }
            Value::Object(mut map) => {
                let bridge = match map.remove("bridge") {
                    Some(Value::String(b)) => b,
                    _ => {
                        self.problem(
                            &format!("{path}.bridge"),
                            ProblemKind::Missing,
                            "missing or not a string",
                        );
                        return None;
                    }
                };
                let channel = match map.remove("channel") {
                    Some(Value::String(c)) => c,
                    _ => {
                        self.problem(
                            &format!("{path}.channel"),
                            ProblemKind::Missing,
                            "missing or not a string",
                        );
                        return None;
                    }
                };
                let direction = match map.remove("direction") {
                    None => Direction::Both,
                    Some(v) => Direction::deserialize(v).unwrap_or_else(|_| {
                        self.problem(
                            &format!("{path}.direction"),
                            ProblemKind::Invalid,
                            "expected \"in\", \"out\" or \"both\"",
                        );
                        Direction::Both
                    }),
                };
                let rules = self.rules(path, &mut map);
                // The rest are the platform's options.
                (bridge, channel, direction, rules, map)
            }
            _ => {
                self.problem(
                    path,
                    ProblemKind::Invalid,
                    "expected \"<bridge>:<channel>\" or { bridge = …, channel = … }",
                );
                return None;
            }
        };
        if bridge == WEB_BRIDGE {
            self.problem(
                path,
                ProblemKind::Invalid,
                "the web surface is part of every room; do not list it as a channel",
            );
            return None;
        }
        let Some(b) = bridges.get(&bridge) else {
            let mut known: Vec<&str> = bridges.keys().map(String::as_str).collect();
            for p in self.platforms {
                if !known.contains(&p.name()) {
                    known.push(p.name());
                }
            }
            self.problem(
                path,
                ProblemKind::Unknown,
                format!("unknown bridge {bridge:?} (known: {})", known.join(", ")),
            );
            return None;
        };
        let platform = self
            .platform(b.platform)
            .expect("a configured bridge has a known platform");
        let options = self.channel_options(path, platform, options)?;
        let channel = match platform.channel(&channel) {
            Ok(c) => c,
            Err(e) => {
                self.problem(path, ProblemKind::Invalid, e.to_string());
                return None;
            }
        };
        if !b.common.enabled {
            self.warnings.push(format!(
                "{path}: {bridge}:{channel} belongs to bridge {bridge:?}, which is disabled; it is skipped"
            ));
        } else if direction.writes()
            && let Some(w) = b.settings.read_only()
        {
            self.warnings.push(format!(
                "{path}: {bridge}:{channel} has direction {:?} but {w}",
                direction.as_str()
            ));
        }
        Some(ChannelConfig {
            bridge,
            channel,
            direction,
            rules,
            options,
        })
    }

    fn channel_options(
        &mut self,
        path: &str,
        platform: &dyn PlatformSchema,
        options: Map<String, Value>,
    ) -> Option<Arc<dyn ChannelOptions>> {
        let own = platform.channel_option_keys();
        let mut unknown = false;
        for key in options.keys().filter(|k| !own.contains(k)) {
            let known: Vec<&str> = CHANNEL_KEYS
                .iter()
                .copied()
                .chain(own.iter().map(String::as_str))
                .collect();
            self.problem(
                &format!("{path}.{key}"),
                ProblemKind::Unknown,
                format!("unknown key (known: {})", known.join(", ")),
            );
            unknown = true;
        }
        if unknown {
            return None;
        }
        match platform.channel_options(path, options) {
            Ok(o) => Some(o),
            Err(problems) => {
                self.problems.extend(problems);
                None
            }
        }
    }
}
