//! A moderator's actions on a Discord user, in the guild of a mapped
//! channel: a timeout is the member's `communication_disabled_until` (at
//! most 28 days, Discord's limit), a ban the guild ban route, an unban lifts
//! both. The bot needs Moderate Members for timeouts and Ban Members for
//! bans; what Discord refuses is said with its own message.

use chrono::Utc;
use serde_json::{Value, json};

use super::Shared;
use super::rest::{Auth, RestError};
use crate::bridge::{ModerateError, UserAction, UserActionKind};

/// Discord's longest timeout.
const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(28 * 24 * 3600);

impl Shared {
    /// What Discord says of channel (or thread) `id`.
    pub(super) async fn channel_json(&self, id: &str) -> Result<Value, RestError> {
        self.rest
            .call(
                reqwest::Method::GET,
                &format!("/channels/{id}"),
                None,
                Auth::Bot,
            )
            .await
    }

    /// The guild channel `channel` belongs to ("" for none).
    pub(super) async fn guild_of(&self, channel: &str) -> Result<String, RestError> {
        let key = format!("guild-of:{channel}");
        if let Some(g) = self.names.lock().await.get(&key) {
            return Ok(g.clone());
        }
        let c = self.channel_json(channel).await?;
        let guild = c["guild_id"].as_str().unwrap_or_default().to_string();
        self.names.lock().await.insert(key, guild.clone());
        Ok(guild)
    }

    pub(super) async fn moderate(
        &self,
        channel: &str,
        action: &UserAction,
    ) -> Result<(), ModerateError> {
        let failed = |e: RestError| ModerateError::Failed(e.to_string());
        let guild = self.guild_of(channel).await.map_err(failed)?;
        if guild.is_empty() {
            return Err(ModerateError::Unsupported(format!(
                "channel {channel} is not in a server: there is nobody to time out or ban"
            )));
        }
        let user = &action.user_id;
        let member = format!("/guilds/{guild}/members/{user}");
        let ban = format!("/guilds/{guild}/bans/{user}");
        let call = |method, path: String, body: Option<Value>| async move {
            self.rest.call(method, &path, body, Auth::Bot).await
        };
        match action.kind {
            UserActionKind::Timeout(d) if d > MAX_TIMEOUT => Err(ModerateError::Unsupported(
                "Discord times out for at most 28 days".into(),
            )),
            UserActionKind::Timeout(d) => {
                let until = Utc::now() + chrono::Duration::from_std(d).unwrap_or_default();
                call(
                    reqwest::Method::PATCH,
                    member,
                    Some(json!({ "communication_disabled_until": until.to_rfc3339() })),
                )
                .await
                .map(drop)
                .map_err(failed)
            }
            UserActionKind::Ban => call(
                reqwest::Method::PUT,
                ban,
                Some(json!({ "delete_message_seconds": 0 })),
            )
            .await
            .map(drop)
            .map_err(failed),
            UserActionKind::Unban => {
                match call(reqwest::Method::DELETE, ban, None).await {
                    Ok(_) => {}
                    // Not banned: a timeout may be what is lifted.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(failed(e)),
                }
                call(
                    reqwest::Method::PATCH,
                    member,
                    Some(json!({ "communication_disabled_until": null })),
                )
                .await
                .map(drop)
                .map_err(failed)
            }
        }
    }
}
