//! `[twitch]` / `[bridges.<name>]` with `platform = "twitch"`: the account's
//! keys, and what a Twitch channel reference is.

use serde::Deserialize;

use crate::config::{AccountSettings, Secret};

/// The keys of a Twitch account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwitchConfig {
    /// Bot account login; empty = anonymous read-only (justinfan…).
    pub login: String,
    /// OAuth token, `oauth:…` or bare.
    pub token: Secret,
    /// `host:port` of the IRC server.
    pub server: String,
    /// Use TLS to the server.
    pub tls: bool,
}

impl Default for TwitchConfig {
    fn default() -> Self {
        TwitchConfig {
            login: String::new(),
            token: Secret::default(),
            server: "irc.chat.twitch.tv:6697".into(),
            tls: true,
        }
    }
}

impl AccountSettings for TwitchConfig {
    fn read_only(&self) -> Option<String> {
        self.is_anonymous().then(|| {
            "the twitch login is anonymous (read-only): nothing will be posted there".to_string()
        })
    }
}

impl TwitchConfig {
    /// What serde cannot check: a login needs a token, the server an address.
    pub fn check(&self) -> Result<(), String> {
        if !self.login.is_empty() && self.token.is_empty() {
            return Err(
                "login is set but token is empty (set token, e.g. via JETBRIDGE_TWITCH__TOKEN)"
                    .into(),
            );
        }
        if self.endpoint().is_none() {
            return Err(format!(
                "server {:?} is not host:port (e.g. \"irc.chat.twitch.tv:6697\")",
                self.server
            ));
        }
        Ok(())
    }

    pub fn is_anonymous(&self) -> bool {
        self.login.is_empty()
    }

    /// The server to dial (checked at load, so `None` only for unchecked values).
    pub fn endpoint(&self) -> Option<Endpoint> {
        let (host, port) = self.server.rsplit_once(':')?;
        let port = port.parse().ok()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then(|| Endpoint {
            host: host.to_string(),
            port,
            tls: self.tls,
        })
    }
}

/// Where an account's IRC connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// `#Streamer` / `streamer` → `#streamer`; logins are 1–25 of `[a-z0-9_]`.
pub fn normalize_channel(channel: &str) -> Result<String, String> {
    let login = channel.strip_prefix('#').unwrap_or(channel).to_lowercase();
    let ok = !login.is_empty()
        && login.len() <= 25
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("#{login}"))
    } else {
        Err(format!(
            "{channel:?} is not a Twitch channel (expected \"#login\", 1-25 of a-z 0-9 _)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_normalize() {
        assert_eq!(normalize_channel("#Streamer").unwrap(), "#streamer");
        assert_eq!(normalize_channel("streamer_2").unwrap(), "#streamer_2");
        assert!(normalize_channel("#bad.name").is_err());
        assert!(normalize_channel("#").is_err());
    }

    #[test]
    fn servers_parse_with_ipv6() {
        let c = TwitchConfig {
            server: "[::1]:6667".into(),
            tls: false,
            ..Default::default()
        };
        assert_eq!(c.endpoint().unwrap().host, "::1");
        let bad = TwitchConfig {
            server: "nohost".into(),
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
