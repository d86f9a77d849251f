//! `[discord]` / `[bridges.<name>]` with `platform = "discord"`: the account's
//! keys, a channel's options, and what a Discord channel reference is.

use serde::{Deserialize, Deserializer};

use crate::config::{AccountSettings, ChannelOptions, InvalidChannel, InvalidSetting, Secret};

/// The keys of a Discord account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Bot token.
    pub token: Secret,
    /// REST base; the gateway URL comes from `GET {api_url}/api/v10/gateway/bot`.
    pub api_url: String,
    /// Post through a per-channel webhook so remote names and avatars show.
    pub webhooks: bool,
    /// Do not relay messages of other bots.
    pub ignore_bots: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            token: Secret::default(),
            api_url: "https://discord.com".into(),
            webhooks: true,
            ignore_bots: false,
        }
    }
}

impl AccountSettings for DiscordConfig {}

impl DiscordConfig {
    pub fn check(&self) -> Result<(), InvalidSetting> {
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err(InvalidSetting::new(
                "api_url",
                format!("{:?} is not an http(s) URL", self.api_url),
            ));
        }
        Ok(())
    }
}

/// The extra keys of a Discord channel in a room's table form.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordChannel {
    /// Post through this webhook (`…/api/webhooks/ID/TOKEN`) instead of one the
    /// bot creates.
    #[serde(deserialize_with = "webhook_url")]
    #[schemars(with = "Option<String>")]
    pub webhook_url: Option<Webhook>,
}

impl ChannelOptions for DiscordChannel {}

fn webhook_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Webhook>, D::Error> {
    let url = String::deserialize(d)?;
    parse_webhook_url(&url).map(Some).ok_or_else(|| {
        serde::de::Error::custom(
            "webhook_url must be a Discord webhook URL (…/api/webhooks/ID/TOKEN)",
        )
    })
}

/// A webhook we post through. `Debug` keeps its token out of logs and `check`.
#[derive(Clone)]
pub struct Webhook {
    pub id: String,
    pub token: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook {{ id: {:?}, token: <redacted> }}", self.id)
    }
}

pub fn parse_webhook_url(url: &str) -> Option<Webhook> {
    let rest = url.split("/webhooks/").nth(1)?;
    let mut parts = rest.split('/');
    let id = parts.next()?.to_string();
    let token = parts.next()?.split('?').next()?.to_string();
    (id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() && !token.is_empty())
        .then_some(Webhook { id, token })
}

/// Discord channels are snowflakes: digits only.
pub fn normalize_channel(channel: &str) -> Result<String, InvalidChannel> {
    let ok =
        !channel.is_empty() && channel.len() <= 20 && channel.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(channel.to_string())
    } else {
        Err(InvalidChannel {
            channel: channel.to_string(),
            platform: "Discord",
            expected: "a channel id of digits, e.g. \"123456789012345678\"",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_parse_and_hide_their_token() {
        let w = parse_webhook_url("https://discord.com/api/webhooks/123/abc-DEF").unwrap();
        assert_eq!((w.id.as_str(), w.token.as_str()), ("123", "abc-DEF"));
        assert!(!format!("{w:?}").contains("abc-DEF"));
        assert!(parse_webhook_url("https://example.org/").is_none());
    }
}
