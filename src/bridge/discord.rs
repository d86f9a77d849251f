//! Discord account configuration. The bridge itself (gateway in, REST and
//! webhooks out) is not part of this build yet: enabling it is a config error
//! that says so, and the keys are parsed so that `check` validates them today.

use serde::Deserialize;
use serde_json::Value;

use crate::config::Secret;

/// `[discord]` / `[bridges.<name>]` with `platform = "discord"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Bot token.
    pub token: Secret,
    /// REST base; the gateway URL comes from `GET {api_url}/api/v10/gateway`.
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

impl DiscordConfig {
    pub fn parse(settings: &Value) -> Result<Self, String> {
        DiscordConfig::deserialize(settings.clone()).map_err(|e| e.to_string())
    }
}

/// Discord channels are snowflakes: digits only.
pub fn normalize_channel(channel: &str) -> Result<String, String> {
    let ok =
        !channel.is_empty() && channel.len() <= 20 && channel.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(channel.to_string())
    } else {
        Err(format!(
            "{channel:?} is not a Discord channel id (digits, e.g. \"123456789012345678\")"
        ))
    }
}
