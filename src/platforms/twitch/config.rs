//! `[twitch]` / `[bridges.<name>]` with `platform = "twitch"`: the account's
//! keys, and what a Twitch channel reference is.

use serde::Deserialize;

use crate::config::{AccountSettings, InvalidChannel, InvalidSetting, Secret};

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
    /// Third-party emote providers whose emotes events list (`[]`: none).
    pub emotes: Vec<EmoteProvider>,
    /// Where each provider's API is.
    pub emote_api: EmoteApi,
    /// A service speaking the recent-messages v2 API to catch up from; empty:
    /// no catch-up (Twitch itself keeps no history).
    pub history_url: String,
    /// Twitch's API (Helix): the application's id and secret, and a user
    /// token's refresh token (the access token is jetbridge's to refresh).
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Helix's base URL.
    pub api_url: String,
    /// Twitch's OAuth base URL (`/token`, `/validate`).
    pub auth_url: String,
    /// How messages are sent: over IRC, or through the Send Chat Message API.
    pub send: SendVia,
}

/// How a Twitch account sends (`send = "irc" | "api"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendVia {
    #[default]
    Irc,
    /// Helix `POST /chat/messages`: every message gets Twitch's verdict.
    Api,
}

/// A third-party emote provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmoteProvider {
    Bttv,
    Ffz,
    #[serde(rename = "7tv")]
    SevenTv,
}

impl EmoteProvider {
    pub fn name(self) -> &'static str {
        match self {
            EmoteProvider::Bttv => "bttv",
            EmoteProvider::Ffz => "ffz",
            EmoteProvider::SevenTv => "7tv",
        }
    }
}

/// The base URLs of the emote providers' APIs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmoteApi {
    pub bttv: String,
    pub ffz: String,
    #[serde(rename = "7tv")]
    pub seven_tv: String,
}

impl Default for EmoteApi {
    fn default() -> Self {
        EmoteApi {
            bttv: "https://api.betterttv.net/3".into(),
            ffz: "https://api.frankerfacez.com/v1".into(),
            seven_tv: "https://7tv.io/v3".into(),
        }
    }
}

impl EmoteApi {
    /// The base URL of `provider`'s API, without a trailing slash.
    pub fn base(&self, provider: EmoteProvider) -> &str {
        let url = match provider {
            EmoteProvider::Bttv => &self.bttv,
            EmoteProvider::Ffz => &self.ffz,
            EmoteProvider::SevenTv => &self.seven_tv,
        };
        url.trim_end_matches('/')
    }
}

impl Default for TwitchConfig {
    fn default() -> Self {
        TwitchConfig {
            login: String::new(),
            token: Secret::default(),
            server: "irc.chat.twitch.tv:6697".into(),
            tls: true,
            emotes: vec![
                EmoteProvider::Bttv,
                EmoteProvider::Ffz,
                EmoteProvider::SevenTv,
            ],
            emote_api: EmoteApi::default(),
            history_url: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            refresh_token: Secret::default(),
            api_url: "https://api.twitch.tv/helix".into(),
            auth_url: "https://id.twitch.tv/oauth2".into(),
            send: SendVia::Irc,
        }
    }
}

impl AccountSettings for TwitchConfig {
    fn read_only(&self) -> Option<String> {
        (self.is_anonymous() && self.send == SendVia::Irc).then(|| {
            "the twitch login is anonymous (read-only): nothing will be posted there".to_string()
        })
    }

    fn keeps_history(&self) -> bool {
        !self.history_url.is_empty()
    }

    fn check_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.send == SendVia::Api {
            notes.push(format!(
                "send = \"api\": the token needs scope {} (checked against the token when it runs)",
                super::helix::SEND_SCOPES.join(", ")
            ));
        }
        if !self.history_url.is_empty() {
            notes.push(format!(
                "catches up from {} (recent-messages v2)",
                self.history_url
            ));
        }
        notes
    }
}

impl TwitchConfig {
    /// What serde cannot check: a login needs a token, the server an address.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        if !self.login.is_empty() && self.token.is_empty() {
            return Err(InvalidSetting::new(
                "token",
                "login is set but token is empty (set token, e.g. via JETBRIDGE_TWITCH__TOKEN)",
            ));
        }
        if self.endpoint().is_none() {
            return Err(InvalidSetting::new(
                "server",
                format!(
                    "{:?} is not host:port (e.g. \"irc.chat.twitch.tv:6697\")",
                    self.server
                ),
            ));
        }
        for provider in [
            EmoteProvider::Bttv,
            EmoteProvider::Ffz,
            EmoteProvider::SevenTv,
        ] {
            let base = self.emote_api.base(provider);
            if !is_http_url(base) {
                return Err(InvalidSetting::new(
                    format!("emote_api.{}", provider.name()),
                    format!("{base:?} is not an http(s) URL"),
                ));
            }
        }
        for (key, url, optional) in [
            ("history_url", &self.history_url, true),
            ("api_url", &self.api_url, false),
            ("auth_url", &self.auth_url, false),
        ] {
            if optional && url.is_empty() {
                continue;
            }
            if !is_http_url(url) {
                return Err(InvalidSetting::new(
                    key,
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        if self.send == SendVia::Api {
            for (key, empty) in [
                ("client_id", self.client_id.is_empty()),
                ("client_secret", self.client_secret.is_empty()),
                ("refresh_token", self.refresh_token.is_empty()),
            ] {
                if empty {
                    return Err(InvalidSetting::new(
                        key,
                        "send = \"api\" needs client_id, client_secret and refresh_token (Twitch's API)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the account may use Twitch's API (Helix).
    pub fn has_api(&self) -> bool {
        !self.client_id.is_empty()
            && !self.client_secret.is_empty()
            && !self.refresh_token.is_empty()
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

fn is_http_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Where an account's IRC connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// `#Streamer` / `streamer` → `#streamer`; logins are 1–25 of `[a-z0-9_]`.
pub fn normalize_channel(channel: &str) -> Result<String, InvalidChannel> {
    let login = channel.strip_prefix('#').unwrap_or(channel).to_lowercase();
    let ok = !login.is_empty()
        && login.len() <= 25
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("#{login}"))
    } else {
        Err(InvalidChannel {
            channel: channel.to_string(),
            platform: "Twitch",
            expected: "\"#login\", 1-25 of a-z 0-9 _",
        })
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

    #[test]
    fn emote_apis_must_be_urls() {
        let mut c = TwitchConfig::default();
        assert!(c.check().is_ok());
        c.emote_api.seven_tv = "7tv.io".into();
        let err = c.check().unwrap_err();
        assert_eq!(err.key, "emote_api.7tv", "{err}");
    }
}
