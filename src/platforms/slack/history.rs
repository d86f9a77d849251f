//! Catch-up from Slack's history: on every new Socket Mode connection (at
//! start, and after one was lost), each read channel's messages after the
//! last one stored are read with `conversations.history` (`oldest=`, newest
//! first, following the cursor) and stored oldest first as if they had
//! arrived live. Thread replies are not in a channel's history (only those
//! also sent to the channel are): the threads of the messages read that
//! have replies since are read with `conversations.replies`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::Shared;
use super::files::take_files;
use super::inbound::slack_ts_to_time;
use crate::bridge::{BridgeContext, Found, History, Inbound, Window, catch_up_all};
use crate::event::ChatEvent;

/// How many 429s in a row a catch-up waits out before it gives up (Slack
/// allows some apps one history call a minute).
const MAX_WAITS: usize = 5;

/// A time as a Slack `ts`.
fn ts_at(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}.{:06}", t.timestamp(), t.timestamp_subsec_micros())
}

impl Shared {
    /// Catch every read channel up (see the file's header).
    pub(super) async fn catch_up(&self, ctx: &BridgeContext) {
        catch_up_all(ctx, &self.common, self).await
    }

    /// Catch up on what was said since the last stored message only, not
    /// re-reading the recheck's hour: right after a full catch-up.
    pub(super) async fn catch_up_since_last(&self, ctx: &BridgeContext) {
        let common = crate::config::CommonBridgeConfig {
            backfill_recheck: std::time::Duration::ZERO,
            ..self.common.clone()
        };
        catch_up_all(ctx, &common, self).await
    }

    /// Read `method` page after page (following the cursor), handing each
    /// message to `take` until it says stop (`false`) or the pages end.
    async fn pages<F>(
        &self,
        method: &str,
        params: Vec<(&str, Option<String>)>,
        mut take: F,
    ) -> Result<(), SlackClientError>
    where
        F: FnMut(&Value) -> bool,
    {
        let session = self.client.open_session(&self.bot_token);
        let mut cursor: Option<String> = None;
        loop {
            let mut params = params.clone();
            params.push(("limit", Some("200".to_string())));
            if let Some(c) = &cursor {
                params.push(("cursor", Some(c.clone())));
            }
            let page: Value =
                waiting(|| session.http_session_api.http_get(method, &params, None)).await?;
            for m in page["messages"].as_array().into_iter().flatten() {
                if !take(m) {
                    return Ok(());
                }
            }
            cursor = page["response_metadata"]["next_cursor"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                return Ok(());
            }
        }
    }

    /// The replies in thread `root` of the window's channel after the window's
    /// start, oldest first (the first message itself left out).
    async fn replies(&self, window: &Window, root: &str) -> Result<Vec<Value>, SlackClientError> {
        let params = vec![
            ("channel", Some(window.channel.clone())),
            ("ts", Some(root.to_string())),
            ("oldest", Some(ts_at(window.after_time))),
            ("inclusive", Some("false".to_string())),
        ];
        let mut got = Vec::new();
        self.pages("conversations.replies", params, |m| {
            if m["ts"].as_str() != Some(root) {
                got.push(m.clone());
            }
            got.len() < window.max
        })
        .await?;
        Ok(got)
    }

    /// The messages of the window, oldest first, and whether older ones were
    /// left out (more than `window.max`).
    async fn missed(&self, window: &Window) -> Result<(Vec<Value>, bool), SlackClientError> {
        // The later of the last stored message and the time bound.
        let by_time = ts_at(window.after_time);
        let oldest = match &window.after_id {
            Some(id) if slack_ts_to_time(id).is_some_and(|t| t >= window.after_time) => id.clone(),
            _ => by_time,
        };
        let params = vec![
            ("channel", Some(window.channel.clone())),
            ("oldest", Some(oldest)),
            ("inclusive", Some("false".to_string())),
        ];
        // Newest first: past `window.max`, the older ones are left out. The
        // bot's own posts (copies, most of a busy bridged channel) are kept
        // for their threads but do not count: the bound is on what was said.
        let me = self.me.read().await.clone();
        let mut got: Vec<Value> = Vec::new();
        let mut said = 0;
        let mut more = false;
        self.pages("conversations.history", params, |m| {
            if said == window.max {
                more = true;
                return false;
            }
            if !is_own(m, me.as_ref()) {
                said += 1;
            }
            got.push(m.clone());
            true
        })
        .await?;
        got.reverse();
        Ok((got, more))
    }
}

/// A Web API read that waits out Slack's 429s (up to [`MAX_WAITS`] in a row).
async fn waiting<F, Fut>(mut call: F) -> Result<Value, SlackClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, SlackClientError>>,
{
    let mut waits = 0;
    loop {
        match call().await {
            Err(SlackClientError::RateLimitError(r)) if waits < MAX_WAITS => {
                waits += 1;
                let after = r.retry_after.unwrap_or(Duration::from_secs(1));
                tracing::info!(retry_after = ?after, "catch-up rate limited; waiting");
                tokio::time::sleep(after).await;
            }
            other => return other,
        }
    }
}

/// Whether history message `m` was posted by the bot `me` (user id, bot id).
fn is_own(m: &Value, me: Option<&(String, Option<String>)>) -> bool {
    let Some((user, bot)) = me else {
        return false;
    };
    m["user"].as_str() == Some(user.as_str())
        || bot
            .as_deref()
            .is_some_and(|b| m["bot_id"].as_str() == Some(b))
}

/// A Slack `ts` as a number, for ordering.
fn ts_order(m: &Value) -> f64 {
    m["ts"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0.0)
}

#[async_trait]
impl History for Shared {
    type Error = SlackClientError;

    async fn read(
        &self,
        window: &Window,
        inbound: &Inbound,
    ) -> Result<(Vec<Found>, bool), Self::Error> {
        let (mut raws, more) = self.missed(window).await?;
        // Threads with replies since the window's start: their replies too.
        let since = ts_at(window.after_time);
        let threads: Vec<String> = raws
            .iter()
            .filter(|m| m["reply_count"].as_u64().unwrap_or(0) > 0)
            .filter(|m| {
                m["latest_reply"]
                    .as_str()
                    .is_some_and(|l| l > since.as_str())
            })
            .filter_map(|m| m["ts"].as_str().map(str::to_string))
            .collect();
        for root in threads {
            raws.extend(self.replies(window, &root).await?);
        }
        // The bot's own posts are copies, not chat to catch up on.
        let me = self.me.read().await.clone();
        raws.retain(|m| !is_own(m, me.as_ref()));
        raws.sort_by(|a, b| ts_order(a).total_cmp(&ts_order(b)));
        if raws.len() > window.max {
            raws.drain(..raws.len() - window.max);
        }
        let mut found = Vec::new();
        for mut raw in raws {
            let ts = raw["ts"].as_str().unwrap_or("?").to_string();
            // As a live edit's id carries it: `edited.ts` verbatim.
            let edited = raw["edited"]["ts"].as_str().map(str::to_string);
            raw["channel"] = Value::String(window.channel.clone());
            let files = take_files(&mut raw);
            let event = match serde_json::from_value::<SlackMessageEvent>(raw) {
                Ok(ev) => self.message_event(ev, &files, inbound).await,
                Err(e) => {
                    inbound.unparsed(&ts, &e);
                    None
                }
            };
            found.push(Found {
                message_id: ts,
                event,
                edited,
            });
        }
        Ok((found, more))
    }

    /// A thread reply is in its thread, not in the channel's history.
    fn lists(&self, stored: &ChatEvent) -> bool {
        stored.reply_to.is_none()
    }
}
