//! `[slack]` / `[bridges.<name>]` with `platform = "slack"`: the account's keys
//! and what a Slack channel reference is.

use serde::Deserialize;

use crate::config::{AccountSettings, InvalidChannel, InvalidSetting, Secret};

/// The keys of a Slack account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// App-level token (`xapp-…`) for Socket Mode.
    pub app_token: Secret,
    /// Bot token (`xoxb-…`) for the Web API.
    pub bot_token: Secret,
    /// A user token (`xoxp-…`) of a workspace admin, optional: a bot token
    /// deletes only the bot's own posts, this one reaches the rest (a
    /// mirrored or console delete of a Slack original).
    pub user_token: Secret,
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
            user_token: Secret::default(),
            api_url: "https://slack.com/api".into(),
            ignore_bots: false,
        }
    }
}

impl AccountSettings for SlackConfig {}

impl SlackConfig {
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

/// Slack channel ids: upper-case letters and digits (`C0123456`).
pub fn normalize_channel(channel: &str) -> Result<String, InvalidChannel> {
    let ok = channel.len() >= 2
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(channel.to_string())
    } else {
        Err(InvalidChannel {
            channel: channel.to_string(),
            platform: "Slack",
            expected: "a channel id such as \"C0123456\"; use the id, not the name",
        })
    }
}
