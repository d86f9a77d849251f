//! Posting to Slack: `chat.postMessage` with the remote author's name and icon
//! (`chat:write.customize`; without that scope, the `format` template from then
//! on), threads under the parent's copy, `chat.update` and `chat.delete` for
//! edits and deletes.

use std::sync::atomic::Ordering;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::Shared;
use super::api::{classify, is_gone};
use super::markup::slack_username;
use crate::bridge::{DeliverError, DeliverFailure, Delivery, Posted, post_parts};

impl Shared {
    pub(super) async fn post(
        &self,
        d: &Delivery<'_>,
        parts: &[String],
        reply_to: Option<&Posted>,
    ) -> Result<Posted, DeliverFailure> {
        let session = self.client.open_session(&self.bot_token);
        let channel = SlackChannelId::new(d.channel.into());
        let thread = reply_to
            .and_then(|p| p.ids.first())
            .map(|ts| SlackTs::new(ts.clone()));
        let customize = self.customize.load(Ordering::Relaxed) && !d.combined;
        let author = d.event.author.as_ref();
        post_parts(parts, |_, part| {
            let mut req = SlackApiChatPostMessageRequest::new(
                channel.clone(),
                SlackMessageContent::new().with_text(part.to_string()),
            )
            .opt_thread_ts(thread.clone())
            .with_unfurl_links(false);
            if customize {
                req = req
                    .with_username(slack_username(d.event.author_name(), &d.event.source.bridge))
                    .opt_icon_url(
                        author
                            .and_then(|a| a.avatar_url.clone())
                            .filter(|u| u.starts_with("https://")),
                    );
            }
            let session = &session;
            async move {
                match session.chat_post_message(&req).await {
                    Ok(r) => Ok(Some(r.ts.to_string())),
                    Err(SlackClientError::ApiError(a))
                        if customize && a.code == "missing_scope" =>
                    {
                        // No chat:write.customize: post with the template from now on.
                        tracing::warn!(
                            "slack refused a custom name and icon (add the chat:write.customize scope); posting with the format template"
                        );
                        self.customize.store(false, Ordering::Relaxed);
                        Err(DeliverError::retry("retrying without a custom name"))
                    }
                    Err(e) => Err(classify(e)),
                }
            }
        })
        .await
    }

    pub(super) async fn edit(
        &self,
        channel: &str,
        target: &Posted,
        parts: &[String],
    ) -> Result<Posted, DeliverError> {
        let session = self.client.open_session(&self.bot_token);
        for (i, ts) in target.ids.iter().enumerate() {
            let ch = SlackChannelId::new(channel.into());
            let ts = SlackTs::new(ts.clone());
            let r = match parts.get(i) {
                Some(p) => session
                    .chat_update(&SlackApiChatUpdateRequest::new(
                        ch,
                        SlackMessageContent::new().with_text(p.clone()),
                        ts,
                    ))
                    .await
                    .map(|_| ()),
                // The new text needs fewer posts: remove the rest.
                None => session
                    .chat_delete(&SlackApiChatDeleteRequest::new(ch, ts))
                    .await
                    .map(|_| ()),
            };
            match r {
                Ok(()) => {}
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(target.clone())
    }

    pub(super) async fn delete(
        &self,
        channel: &str,
        target: &Posted,
    ) -> Result<Posted, DeliverError> {
        let bot = self.client.open_session(&self.bot_token);
        let admin = self
            .user_token
            .as_ref()
            .map(|t| self.client.open_session(t));
        for ts in &target.ids {
            let req = SlackApiChatDeleteRequest::new(
                SlackChannelId::new(channel.into()),
                SlackTs::new(ts.clone()),
            );
            let refused = match bot.chat_delete(&req).await {
                Ok(_) => continue,
                Err(e) if is_gone(&e) => continue,
                Err(e) if !cannot_delete(&e) => return Err(classify(e)),
                Err(e) => e,
            };
            // Someone else's message: only an admin's user token reaches it.
            let Some(admin) = &admin else {
                return Err(DeliverError::reject(format!(
                    "{refused}: a bot token deletes only the bot's own posts; set {}.user_token (a workspace admin's xoxp- token) to delete others'",
                    self.name
                )));
            };
            match admin.chat_delete(&req.with_as_user(true)).await {
                Ok(_) => {}
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(target.clone())
    }
}

impl Shared {
    /// Add or take back the bot's reaction `emoji` (Unicode) on the message
    /// `target` (`reactions:write`); an emoji Slack lacks is left out.
    pub(super) async fn react(
        &self,
        channel: &str,
        target: &Posted,
        emoji: &str,
        add: bool,
    ) -> Result<Posted, DeliverError> {
        let (Some(ts), Some(name)) = (target.ids.first(), super::emoji::to_slack(emoji)) else {
            return Ok(Posted::default());
        };
        let session = self.client.open_session(&self.bot_token);
        let (ch, ts, name) = (
            SlackChannelId::new(channel.into()),
            SlackTs::new(ts.clone()),
            SlackReactionName::new(name.into()),
        );
        let r = if add {
            session
                .reactions_add(&SlackApiReactionsAddRequest::new(ch, name, ts))
                .await
                .map(drop)
        } else {
            session
                .reactions_remove(
                    &SlackApiReactionsRemoveRequest::new(name)
                        .with_channel(ch)
                        .with_timestamp(ts),
                )
                .await
                .map(drop)
        };
        match r {
            Ok(()) => Ok(Posted::default()),
            // Already as it should be.
            Err(SlackClientError::ApiError(a))
                if matches!(a.code.as_str(), "already_reacted" | "no_reaction") =>
            {
                Ok(Posted::default())
            }
            Err(e) if is_gone(&e) => Ok(Posted::default()),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Slack refused a deletion for want of rights.
fn cannot_delete(e: &SlackClientError) -> bool {
    matches!(e, SlackClientError::ApiError(a) if a.code == "cant_delete_message")
}
