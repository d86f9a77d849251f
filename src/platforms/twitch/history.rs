//! Catch-up for Twitch, which keeps no history of its own: a service that
//! speaks the recent-messages v2 API (`[twitch] history_url`) has been in the
//! channels all along and answers `GET /api/v2/recent-messages/<login>` with
//! the raw IRC lines it saw. They are read here exactly as live lines are
//! (the same reader, the same repairs), so a line seen live and in history
//! has one id and is stored once. Lines the service marks deleted
//! (`rm-deleted=1`) are left out, so a stored message deleted meanwhile
//! becomes its `delete` (docs/events.md §4).

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use twitch_irc::message::{IRCMessage, ServerMessage};

use super::inbound::Reader;
use crate::bridge::{BridgeContext, Found, History, Inbound, Window, catch_up_channel};
use crate::event::ChatEvent;

/// Why a channel's history could not be read (nothing is guessed then).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot reach the recent-messages service: {0}")]
    Http(#[from] reqwest::Error),
    /// The service answered, but has no history to give (it had not joined
    /// the channel, say).
    #[error("the recent-messages service says {code}: {message}")]
    Service { code: String, message: String },
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
}

/// One read of the service for one channel's catch-up.
pub struct RecentMessages<'a> {
    pub reader: &'a Reader,
    pub http: &'a reqwest::Client,
    /// `history_url`, without a trailing slash.
    pub base: &'a str,
    /// The time of the oldest line of the last read: history says nothing
    /// about what came before it (the service keeps the last few hundred).
    oldest_read: Mutex<Option<DateTime<Utc>>>,
}

impl<'a> RecentMessages<'a> {
    pub fn new(reader: &'a Reader, http: &'a reqwest::Client, base: &'a str) -> Self {
        RecentMessages {
            reader,
            http,
            base: base.trim_end_matches('/'),
            oldest_read: Mutex::new(None),
        }
    }

    async fn lines(&self, login: &str) -> Result<Vec<String>, HistoryError> {
        let answer: Answer = self
            .http
            .get(format!("{}/api/v2/recent-messages/{login}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match (answer.error, answer.error_code) {
            (None, None) => Ok(answer.messages),
            (message, code) => Err(HistoryError::Service {
                code: code.unwrap_or_else(|| "error".into()),
                message: message.unwrap_or_default(),
            }),
        }
    }
}

/// A history line as what it is; `None` for lines marked deleted, lines
/// that are not chat, and lines that do not read at all.
fn read_line(raw: &str, inbound: &Inbound) -> Option<ServerMessage> {
    let irc = match IRCMessage::parse(raw) {
        Ok(irc) => irc,
        Err(e) => {
            inbound.unparsed("", &e);
            return None;
        }
    };
    if irc.tags.0.get("rm-deleted").is_some_and(|v| v == "1") {
        return None;
    }
    match ServerMessage::try_from(irc.clone()) {
        Ok(ServerMessage::Generic(_)) | Err(_) => match super::lenient::repair(&irc)? {
            Ok((msg, _)) => Some(msg),
            Err(e) => {
                let id = irc.tags.0.get("id").cloned().unwrap_or_default();
                inbound.unparsed(&id, &e);
                None
            }
        },
        Ok(msg) => Some(msg),
    }
}

#[async_trait]
impl History for RecentMessages<'_> {
    type Error = HistoryError;

    async fn read(
        &self,
        window: &Window,
        inbound: &Inbound,
    ) -> Result<(Vec<Found>, bool), HistoryError> {
        let login = window.channel.trim_start_matches('#');
        let mut found: Vec<(Found, DateTime<Utc>)> = Vec::new();
        for raw in self.lines(login).await? {
            let Some(msg) = read_line(&raw, inbound) else {
                continue;
            };
            let (id, ts) = match &msg {
                ServerMessage::Privmsg(m) => (m.message_id.clone(), m.server_timestamp),
                ServerMessage::UserNotice(n) => (n.message_id.clone(), n.server_timestamp),
                _ => continue,
            };
            let event = self.reader.chat_event(&msg, inbound).map(|(ev, _)| ev);
            found.push((
                Found {
                    message_id: id,
                    event,
                    edited: None,
                },
                ts,
            ));
        }
        *self.oldest_read.lock().unwrap_or_else(|e| e.into_inner()) =
            found.first().map(|(_, ts)| *ts);
        // After the last stored line where history has it, else by time.
        let start = window
            .after_id
            .as_ref()
            .and_then(|after| found.iter().position(|(f, _)| f.message_id == *after))
            .map(|i| i + 1);
        let mut found: Vec<Found> = match start {
            Some(i) => found.into_iter().skip(i).map(|(f, _)| f).collect(),
            None => found
                .into_iter()
                .filter(|(_, ts)| *ts > window.after_time && *ts >= window.oldest)
                .map(|(f, _)| f)
                .collect(),
        };
        let more = found.len() > window.max;
        if more {
            found.drain(..found.len() - window.max);
        }
        Ok((found, more))
    }

    /// The service keeps the last few hundred lines of a channel: a stored
    /// message older than the oldest it gave is not missing for being absent.
    fn lists(&self, stored: &ChatEvent) -> bool {
        self.oldest_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|oldest| stored.ts >= oldest)
    }
}

impl super::TwitchBridge {
    /// Catch `channel` up from the recent-messages service, when the account
    /// names one and backfills (see the file's header).
    pub(super) async fn catch_up(&self, ctx: &BridgeContext, reader: &Reader, channel: &str) {
        if self.cfg.history_url.is_empty() || !self.common.backfill_on() {
            return;
        }
        let reads = ctx
            .channels
            .iter()
            .any(|(c, direction)| c == channel && direction.reads());
        if !reads {
            return;
        }
        let history = RecentMessages::new(reader, &self.http, &self.cfg.history_url);
        catch_up_channel(ctx, &self.common, &history, channel).await;
    }
}
