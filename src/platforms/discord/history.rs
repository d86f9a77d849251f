//! Catch-up from Discord's history: on a new gateway session (the first, or
//! one after a session that could not be resumed), each read channel's
//! messages after the last one stored are read over REST, newest first
//! (`GET /channels/{id}/messages?before=…`, 100 a page) down to the window's
//! start, and stored oldest first as if they had arrived live. The active
//! threads of the channel (threads on its messages, a forum's posts) are
//! read the same way, their messages in the channel's order.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use serenity::all::Message;

use super::Shared;
use super::rest::{Auth, RestError};
use crate::bridge::{BridgeContext, Found, History, Inbound, Window, catch_up_all};

/// Discord's epoch (2015-01-01), in Unix milliseconds.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// The time snowflake `id` was made.
pub fn snowflake_time(id: &str) -> Option<DateTime<Utc>> {
    let id: u64 = id.parse().ok()?;
    DateTime::from_timestamp_millis((id >> 22) as i64 + DISCORD_EPOCH_MS)
}

/// The smallest snowflake of a message sent after `t`.
fn snowflake_at(t: DateTime<Utc>) -> u64 {
    let ms = (t.timestamp_millis() - DISCORD_EPOCH_MS).max(0) as u64;
    ms << 22
}

/// How many 429s in a row a catch-up waits out before it gives up.
const MAX_WAITS: usize = 10;

impl Shared {
    /// Catch every read channel up (see the file's header).
    pub(super) async fn catch_up(&self, ctx: &BridgeContext) {
        catch_up_all(ctx, &self.common, self).await
    }

    /// The messages of the window, oldest first, and whether older ones were
    /// left out (more than `window.max`).
    async fn missed(&self, window: &Window) -> Result<(Vec<Value>, bool), RestError> {
        let after_id = window
            .after_id
            .as_deref()
            .and_then(|i| i.parse::<u64>().ok());
        let after = after_id.unwrap_or(0).max(snowflake_at(window.after_time));
        let mut got: Vec<Value> = Vec::new();
        // jetbridge's own copies do not count toward `window.max`: the bound
        // is on what was said, and a busy bridged channel is mostly copies.
        let mut said = 0;
        let mut before: Option<u64> = None;
        loop {
            let path = match before {
                Some(b) => format!("/channels/{}/messages?limit=100&before={b}", window.channel),
                None => format!("/channels/{}/messages?limit=100", window.channel),
            };
            let page = self.get_waiting(&path).await?;
            let list = page.as_array().cloned().unwrap_or_default();
            let full = list.len() == 100;
            for m in list {
                let Some(id) = m["id"].as_str().and_then(|i| i.parse::<u64>().ok()) else {
                    continue;
                };
                if id <= after {
                    got.reverse();
                    return Ok((got, false));
                }
                if said == window.max {
                    got.reverse();
                    return Ok((got, true));
                }
                before = Some(id);
                if !self.is_own_raw(&m).await {
                    said += 1;
                }
                got.push(m);
            }
            if !full {
                got.reverse();
                return Ok((got, false));
            }
        }
    }

    /// The active threads whose parent is `channel` (threads on its
    /// messages, a forum's posts).
    async fn active_threads(&self, channel: &str) -> Result<Vec<String>, RestError> {
        let guild = self.guild_of(channel).await?;
        if guild.is_empty() {
            return Ok(Vec::new());
        }
        let active = self
            .get_waiting(&format!("/guilds/{guild}/threads/active"))
            .await?;
        Ok(active["threads"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["parent_id"].as_str() == Some(channel))
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect())
    }

    /// Whether history message `m` is jetbridge's own post (as
    /// `is_own`, on the JSON).
    async fn is_own_raw(&self, m: &Value) -> bool {
        let Some(me) = *self.me.read().await else {
            return false;
        };
        let id = |v: &Value| v.as_str().and_then(|i| i.parse::<u64>().ok());
        if id(&m["author"]["id"]) == Some(me.user_id) {
            return true;
        }
        match m["webhook_id"].as_str() {
            Some(w) => {
                id(&m["application_id"]) == Some(me.application_id) || self.is_own_webhook(w).await
            }
            None => false,
        }
    }

    /// A GET that waits out Discord's 429s.
    async fn get_waiting(&self, path: &str) -> Result<Value, RestError> {
        let mut waits = 0;
        loop {
            match self
                .rest
                .call(reqwest::Method::GET, path, None, Auth::Bot)
                .await
            {
                Err(e) if e.status == Some(429) && waits < MAX_WAITS => {
                    waits += 1;
                    let after = e.retry_after.unwrap_or(Duration::from_secs(1));
                    tracing::info!(retry_after = ?after, "catch-up rate limited; waiting");
                    tokio::time::sleep(after).await;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl History for Shared {
    type Error = RestError;

    async fn read(
        &self,
        window: &Window,
        inbound: &Inbound,
    ) -> Result<(Vec<Found>, bool), Self::Error> {
        let (mut raws, more) = self.missed(window).await?;
        for thread in self.active_threads(&window.channel).await? {
            let (said, _) = self
                .missed(&Window {
                    channel: thread,
                    ..window.clone()
                })
                .await?;
            raws.extend(said);
        }
        // One conversation, in the order it was said (snowflakes follow time).
        let id_of = |m: &Value| m["id"].as_str().and_then(|i| i.parse::<u64>().ok());
        raws.sort_by_key(id_of);
        raws.dedup_by_key(|m| id_of(m));
        // jetbridge's own posts are copies, not chat to catch up on.
        let mut said = Vec::with_capacity(raws.len());
        for m in raws {
            if !self.is_own_raw(&m).await {
                said.push(m);
            }
        }
        let mut raws = said;
        if raws.len() > window.max {
            raws.drain(..raws.len() - window.max);
        }
        let mut found = Vec::new();
        for raw in raws {
            let id = raw["id"].as_str().unwrap_or("?").to_string();
            // Components are read from the JSON (serenity drops the new kinds).
            let mut lenient = raw.clone();
            if let Some(m) = lenient.as_object_mut() {
                m.remove("components");
            }
            let (event, edited) = match serde_json::from_value::<Message>(lenient) {
                Ok(msg) => (
                    self.message_event(&msg, Some(&raw), inbound).await,
                    // As a live edit's id carries it.
                    msg.edited_timestamp.map(|t| t.to_string()),
                ),
                Err(e) => {
                    inbound.unparsed(&id, &e);
                    (None, None)
                }
            };
            found.push(Found {
                message_id: id,
                event,
                edited,
            });
        }
        Ok((found, more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_follow_time() {
        // The id of a message of 2024-01-01T00:00:00Z is at least this.
        let t = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(snowflake_at(t) >> 22, 1_704_067_200_000 - 1_420_070_400_000);
        assert_eq!(snowflake_at(DateTime::<Utc>::MIN_UTC), 0);
    }
}
