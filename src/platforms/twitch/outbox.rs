//! What was sent to Twitch and not yet confirmed, per channel.
//!
//! IRC has no acknowledgement: a PRIVMSG written just before a connection
//! drops is gone, and twitch-irc reports it sent. Twitch does answer every
//! PRIVMSG it accepted with a USERSTATE carrying the new message's `id` (and
//! one it refused with a NOTICE), in order, on the connection it came on. So
//! each channel keeps its unconfirmed lines, each with the connection it went
//! out on; the answers confirm them in order; lines of a connection that was
//! replaced, or left unanswered too long, go out again, in order, before
//! anything new.
//!
//! A line's answer is handed back to its sender ([`Answer`]): the id of the
//! new message (what a moderator's deletion of it names later) or why
//! Twitch refused it.
//!
//! A channel has one line unconfirmed at a time ([`WINDOW`]). More in flight
//! would be faster, but a line written while twitch-irc replaces a dead
//! connection can then reach Twitch before an earlier one that died with the
//! old connection, and the channel's order would be lost. At Twitch's pace
//! (20 lines in 30 s) the wait for an answer costs nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::connection::IrcClient;
use super::gate::ReadGate;
use crate::bridge::DeliverError;

/// Lines a channel may have unconfirmed at once (see the header).
pub const WINDOW: usize = 1;
/// A line unanswered this long is sent again.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Twitch's answer to a line: the new message's id, or the NOTICE refusing it.
pub type Answer = tokio::sync::oneshot::Receiver<Result<String, String>>;

#[derive(Debug)]
struct Line {
    text: String,
    /// The connection it went out on (see [`ReadGate::generation`]).
    connection: u64,
    sent: Instant,
    answer: Option<tokio::sync::oneshot::Sender<Result<String, String>>>,
}

/// One channel: its unconfirmed lines, and the right to send in it.
#[derive(Default)]
struct Lane {
    unconfirmed: Mutex<VecDeque<Line>>,
    /// Held while sending, so that resends and new lines never interleave.
    sending: tokio::sync::Mutex<()>,
    room: tokio::sync::Notify,
}

/// The unconfirmed lines of one account, by channel login.
#[derive(Default)]
pub struct Outbox {
    lanes: Mutex<HashMap<String, std::sync::Arc<Lane>>>,
}

impl Lane {
    fn lines(&self) -> std::sync::MutexGuard<'_, VecDeque<Line>> {
        // Plain data; a panic elsewhere cannot leave it torn.
        self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the oldest unconfirmed line went out on a replaced connection or
    /// was not answered in time, send every unconfirmed line again, in order
    /// (the later ones went out after it, so they go again after it). Call
    /// with `sending` held.
    async fn resend(
        &self,
        client: &IrcClient,
        gate: &ReadGate,
        login: &str,
    ) -> Result<(), DeliverError> {
        let now_on = gate.generation();
        let texts: Vec<String> = {
            let lines = self.lines();
            let due = lines
                .front()
                .is_some_and(|l| l.connection != now_on || l.sent.elapsed() >= ANSWER_WITHIN);
            if !due {
                return Ok(());
            }
            lines.iter().map(|l| l.text.clone()).collect()
        };
        tracing::warn!(
            channel = login,
            lines = texts.len(),
            "resending lines twitch did not confirm"
        );
        metrics::counter!("jetbridge_twitch_resent_total").increment(texts.len() as u64);
        for text in &texts {
            client
                .privmsg(login.to_string(), text.clone())
                .await
                .map_err(DeliverError::retry)?;
        }
        // The same lines, now on this connection (answers arrive for them
        // only after these writes, and this lane's sending is ours).
        for line in self.lines().iter_mut() {
            line.connection = now_on;
            line.sent = Instant::now();
        }
        Ok(())
    }
}

impl Outbox {
    fn lane(&self, login: &str) -> std::sync::Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes.entry(login.to_string()).or_default().clone()
    }

    /// Send `text` to channel `login` once the lane has room, after anything
    /// that must go again. Returns once it is written (not yet confirmed),
    /// with where Twitch's answer will come.
    pub async fn send(
        &self,
        client: &IrcClient,
        gate: &ReadGate,
        login: &str,
        text: String,
    ) -> Result<Answer, DeliverError> {
        let lane = self.lane(login);
        loop {
            let room = lane.room.notified();
            if lane.lines().len() < WINDOW {
                break;
            }
            // Answers free room; a silent connection frees it by a resend.
            if tokio::time::timeout(ANSWER_WITHIN, room).await.is_err() {
                let _sending = lane.sending.lock().await;
                lane.resend(client, gate, login).await?;
            }
        }
        let _sending = lane.sending.lock().await;
        lane.resend(client, gate, login).await?;
        // Kept before it is written: the answer can come back before the
        // write returns.
        let (tell, answer) = tokio::sync::oneshot::channel();
        lane.lines().push_back(Line {
            text: text.clone(),
            connection: gate.generation(),
            sent: Instant::now(),
            answer: Some(tell),
        });
        if let Err(e) = client.privmsg(login.to_string(), text).await {
            lane.lines().pop_back();
            return Err(DeliverError::retry(e));
        }
        Ok(answer)
    }

    /// Twitch accepted the oldest unconfirmed line sent to `login` as message
    /// `id` (a USERSTATE with an `id`; with one line in flight, there is no other).
    pub fn confirmed(&self, login: &str, id: &str) {
        let lane = self.lane(login);
        let line = lane.lines().pop_front();
        if let Some(tell) = line.and_then(|l| l.answer) {
            // The sender may have stopped waiting: nothing to tell then.
            let _ = tell.send(Ok(id.to_string()));
        }
        lane.room.notify_waiters();
    }

    /// Twitch refused the oldest unconfirmed line sent to `login` for good (a
    /// NOTICE such as `msg_duplicate`, said in `notice`): it is dropped, with
    /// its text for the log.
    pub fn refused(&self, login: &str, notice: &str) -> Option<String> {
        let lane = self.lane(login);
        let line = lane.lines().pop_front();
        lane.room.notify_waiters();
        let line = line?;
        if let Some(tell) = line.answer {
            let _ = tell.send(Err(notice.to_string()));
        }
        Some(line.text)
    }

    /// Send again, in every channel, what is due (a replaced connection, an
    /// answer overdue): for channels where nothing new is being sent.
    pub async fn resend_due(&self, client: &IrcClient, gate: &ReadGate) {
        let lanes: Vec<(String, std::sync::Arc<Lane>)> = {
            let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
            lanes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (login, lane) in lanes {
            // A lane busy sending resends by itself first.
            let Ok(_sending) = lane.sending.try_lock() else {
                continue;
            };
            if let Err(e) = lane.resend(client, gate, &login).await {
                tracing::warn!(channel = %login, error = %e, "resend failed; trying again later");
            }
        }
    }

    /// Lines not yet confirmed, in all channels.
    pub fn unconfirmed(&self) -> usize {
        let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes.values().map(|l| l.lines().len()).sum()
    }
}
