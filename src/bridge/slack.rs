//! Slack account configuration. The bridge itself (Socket Mode in, Web API out)
//! is not part of this build yet: enabling it is a config error that says so, and
//! the keys are parsed so that `check` validates them today.

use serde::Deserialize;
use serde_json::Value;

use crate::config::Secret;

/// `[slack]` / `[bridges.<name>]` with `platform = "slack"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// App-level token (`xapp-…`) for Socket Mode.
    pub app_token: Secret,
    /// Bot token (`xoxb-…`) for the Web API.
    pub bot_token: Secret,
    /// Web API base.
    pub api_url: String,
    /// Do not relay messages of other bots.
    pub ignore_bots: bool,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            app_token: Secret::default(),
            bot_token: Secret::default(),
            api_url: "https://slack.com/api".into(),
            ignore_bots: false,
        }
    }
}

impl SlackConfig {
    pub fn parse(settings: &Value) -> Result<Self, String> {
        SlackConfig::deserialize(settings.clone()).map_err(|e| e.to_string())
    }
}

/// Slack channel ids: upper-case letters and digits (`C0123456`).
pub fn normalize_channel(channel: &str) -> Result<String, String> {
    let ok = channel.len() >= 2
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(channel.to_string())
    } else {
        Err(format!(
            "{channel:?} is not a Slack channel id (e.g. \"C0123456\"; use the id, not the name)"
        ))
    }
}
