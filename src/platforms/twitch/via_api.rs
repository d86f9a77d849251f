//! Sending through Twitch's API (`send = "api"`): each message goes out with
//! Send Chat Message, whose answer decides it. `is_sent` accepts it (with
//! Twitch's id, so a reply or a delete can find the copy later); a
//! `drop_reason` rejects it for good (logged and counted by the router), or
//! for now where the reason passes (Twitch's pace, slow mode). A 429 waits
//! until `Ratelimit-Reset`; the router keeps each channel's order throughout.

use super::TwitchBridge;
use super::helix::{HelixError, Verdict, drop_is_transient};
use super::markup;
use crate::bridge::{
    DeliverError, DeliverFailure, ModerateError, Posted, UserAction, UserActionKind, post_parts,
};
use crate::render;

/// What the router does with an API call that did not answer.
fn api_error(e: HelixError) -> DeliverError {
    match e {
        HelixError::RateLimited(after) => DeliverError::RateLimited(after),
        e if e.is_transient() => DeliverError::retry(e),
        e => DeliverError::reject(e),
    }
}

impl TwitchBridge {
    fn helix(&self) -> Result<&super::helix::Helix, DeliverError> {
        self.helix.as_deref().ok_or_else(|| {
            DeliverError::reject(format!(
                "twitch's API is not configured: sending through it and deleting messages need {0}.client_id, {0}.client_secret and {0}.refresh_token",
                self.name
            ))
        })
    }

    /// The user id of channel `login`: from its ROOMSTATE when we read it,
    /// else from the API.
    async fn broadcaster_id(&self, login: &str) -> Result<String, DeliverError> {
        match self.sessions.room_id_of(login) {
            Some(id) => Ok(id),
            None => self.helix()?.user_id(login).await.map_err(api_error),
        }
    }

    /// Post `parts` to channel `login` through the API; the first answers
    /// `reply_to` where that copy has a Twitch id.
    pub(super) async fn send_api(
        &self,
        parts: &[String],
        login: &str,
        reply_to: Option<&Posted>,
    ) -> Result<Posted, DeliverFailure> {
        let helix = self.helix()?;
        let broadcaster = self.broadcaster_id(login).await?;
        let reply = reply_to.and_then(|p| p.ids.first()).map(String::as_str);
        post_parts(parts, |i, part| {
            let line = markup::guard_command(&render::single_line(part));
            let broadcaster = &broadcaster;
            async move {
                if line.is_empty() {
                    return Ok(None);
                }
                let reply = reply.filter(|_| i == 0);
                match helix
                    .send_chat(broadcaster, &line, reply)
                    .await
                    .map_err(api_error)?
                {
                    Verdict::Sent { message_id } => Ok(Some(message_id)),
                    Verdict::Dropped { code, message } if drop_is_transient(&code) => {
                        Err(DeliverError::retry(format!(
                            "twitch held the message back ({code}): {message}"
                        )))
                    }
                    Verdict::Dropped { code, message } => Err(DeliverError::reject(format!(
                        "twitch dropped the message ({code}): {message}"
                    ))),
                }
            }
        })
        .await
    }

    /// Remove a copy sent through the API (the account must be a moderator
    /// of the channel, with `moderator:manage:chat_messages`).
    pub(super) async fn delete_api(
        &self,
        channel: &str,
        target: &Posted,
    ) -> Result<Posted, DeliverFailure> {
        let helix = self.helix()?;
        let broadcaster = self.broadcaster_id(channel.trim_start_matches('#')).await?;
        for id in &target.ids {
            match helix.delete_chat(&broadcaster, id).await {
                Ok(()) => {}
                // Already gone.
                Err(HelixError::Status { status: 404, .. }) => {}
                Err(e) => return Err(api_error(e).into()),
            }
        }
        Ok(Posted::default())
    }

    /// A timeout, ban or unban in channel `login` through the API (the
    /// account must be a moderator there, with `moderator:manage:banned_users`).
    pub(super) async fn moderate_api(
        &self,
        login: &str,
        action: &UserAction,
    ) -> Result<(), ModerateError> {
        let failed = |e: DeliverError| ModerateError::Failed(e.to_string());
        let helix = self.helix().map_err(failed)?;
        let broadcaster = self.broadcaster_id(login).await.map_err(failed)?;
        let user = &action.user_id;
        let reason = action.reason.as_deref();
        let done = match action.kind {
            // Twitch's bounds: 1 s to 2 weeks.
            UserActionKind::Timeout(d) => {
                let secs = d.as_secs().clamp(1, 1_209_600);
                helix.ban(&broadcaster, user, Some(secs), reason).await
            }
            UserActionKind::Ban => helix.ban(&broadcaster, user, None, reason).await,
            UserActionKind::Unban => helix.unban(&broadcaster, user).await,
        };
        done.map_err(|e| ModerateError::Failed(e.to_string()))
    }
}
