//! Posting to Discord: through a per-channel webhook named `jetbridge` (the
//! remote author's name and avatar show), or as the bot (templates, replies
//! with a message reference); edits and deletes of the copies, on the webhook
//! or channel route they were posted on. Every post sets `allowed_mentions` to
//! nothing.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Shared;
use super::config::Webhook;
use super::markup::webhook_username;
use super::rest::{Auth, RestError};
use crate::bridge::{DeliverError, DeliverFailure, Delivery, Posted, post_parts};

impl Shared {
    /// The webhook to post through in `channel`, created when missing.
    async fn webhook(&self, channel: &str) -> Result<Webhook, DeliverError> {
        if let Some(w) = self.webhooks.lock().await.get(channel) {
            return Ok(w.clone());
        }
        let me = *self.me.read().await;
        let list = self
            .rest
            .call(
                reqwest::Method::GET,
                &format!("/channels/{channel}/webhooks"),
                None,
                Auth::Bot,
            )
            .await?;
        let found = list.as_array().into_iter().flatten().find(|w| {
            w["name"] == "jetbridge"
                && w["token"].is_string()
                && me.is_some_and(|m| {
                    w["application_id"].as_str() == Some(&m.application_id.to_string())
                        || w["user"]["id"].as_str() == Some(&m.user_id.to_string())
                })
        });
        let w = match found {
            Some(w) => w.clone(),
            None => {
                self.rest
                    .call(
                        reqwest::Method::POST,
                        &format!("/channels/{channel}/webhooks"),
                        Some(json!({ "name": "jetbridge" })),
                        Auth::Bot,
                    )
                    .await?
            }
        };
        let (Some(id), Some(token)) = (w["id"].as_str(), w["token"].as_str()) else {
            return Err(DeliverError::retry("webhook answer without id or token"));
        };
        let hook = Webhook {
            id: id.to_string(),
            token: token.to_string(),
        };
        self.own_webhooks.write().await.insert(hook.id.clone());
        self.webhooks
            .lock()
            .await
            .insert(channel.to_string(), hook.clone());
        Ok(hook)
    }

    /// The thread started from message `id` in `channel` (a thread's id is
    /// its first message's), started now when there is none yet; its name
    /// from `name`.
    async fn thread(&self, channel: &str, id: &str, name: &str) -> Result<(), DeliverError> {
        let key = format!("thread-of:{id}");
        if self.names.lock().await.get(&key).is_some() {
            return Ok(());
        }
        let found = self.channel_json(id).await;
        match found {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                let name: String = name.chars().take(100).collect();
                let created = self
                    .rest
                    .call(
                        reqwest::Method::POST,
                        &format!("/channels/{channel}/messages/{id}/threads"),
                        Some(json!({ "name": name, "auto_archive_duration": 1440 })),
                        Auth::Bot,
                    )
                    .await;
                match created {
                    Ok(_) => {}
                    // Started meanwhile (another instance, a person).
                    Err(e) if e.code == Some(160004) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.names.lock().await.insert(key, channel.to_string());
        Ok(())
    }

    /// Post `parts` (part `first` onwards of the whole post), in the thread of
    /// `thread` when there is one (started on that message when needed).
    pub(super) async fn post(
        &self,
        d: &Delivery<'_>,
        parts: &[String],
        first: usize,
        reply_to: Option<&Posted>,
        thread: Option<&Posted>,
    ) -> Result<Posted, DeliverFailure> {
        let ev = d.event;
        let thread_id = thread.and_then(|t| t.ids.first().cloned());
        // Inside a thread, answering its first message is being in it.
        let reply_to = reply_to.filter(|r| r.ids.first() != thread_id.as_ref());
        if let Some(t) = &thread_id {
            let line = ev.text.lines().next().unwrap_or_default();
            let name = format!("{}: {line}", ev.author_name());
            self.thread(d.channel, t, &name).await?;
        }
        let in_thread = |mut p: Posted| {
            p.thread = thread_id.clone();
            p
        };
        // Webhooks cannot reply with a message reference: replies whose parent
        // copy is known go as bot messages, which can.
        let reply_ref = reply_to.and_then(|p| p.ids.first().cloned());
        if !(self.cfg.webhooks && reply_ref.is_none() && !d.combined) {
            let into = thread_id.as_deref().unwrap_or(d.channel);
            return post_parts(parts, |i, part| {
                let mut body = json!({ "content": part, "allowed_mentions": { "parse": [] } });
                if first + i == 0
                    && let Some(r) = &reply_ref
                {
                    body["message_reference"] =
                        json!({ "message_id": r, "fail_if_not_exists": false });
                }
                let path = format!("/channels/{into}/messages");
                async move {
                    let v = self
                        .rest
                        .call(reqwest::Method::POST, &path, Some(body), Auth::Bot)
                        .await?;
                    Ok(v["id"].as_str().map(str::to_string))
                }
            })
            .await
            .map(in_thread)
            .map_err(|mut f| {
                f.partial = in_thread(std::mem::take(&mut f.partial));
                f
            });
        }
        let hook = self.webhook(d.channel).await?;
        let username = webhook_username(ev.author_name(), &ev.source.bridge);
        let avatar = ev
            .author
            .as_ref()
            .and_then(|a| a.avatar_url.as_deref())
            .filter(|u| u.starts_with("https://"));
        let mut path = format!("/webhooks/{}/{}?wait=true", hook.id, hook.token);
        if let Some(t) = &thread_id {
            path.push_str(&format!("&thread_id={t}"));
        }
        let result = post_parts(parts, |_, part| {
            let body = json!({
                "content": part,
                "username": username,
                "avatar_url": avatar,
                "allowed_mentions": { "parse": [] },
            });
            let path = &path;
            async move {
                match self
                    .rest
                    .call(reqwest::Method::POST, path, Some(body), Auth::None)
                    .await
                {
                    Ok(v) => Ok(v["id"].as_str().map(str::to_string)),
                    Err(e) => Err(self.webhook_failed(d.channel, e).await),
                }
            }
        })
        .await;
        let with_hook = |mut p: Posted| {
            p.handle = Some(hook.id.clone());
            in_thread(p)
        };
        result.map(with_hook).map_err(|mut f| {
            f.partial = with_hook(std::mem::take(&mut f.partial));
            f
        })
    }

    /// A webhook post failed; a deleted webhook is replaced on the next try.
    async fn webhook_failed(&self, channel: &str, e: RestError) -> DeliverError {
        if e.is_not_found() {
            self.webhooks.lock().await.remove(channel);
            return DeliverError::retry(e);
        }
        e.into()
    }

    /// Where copy `id` of `target` is edited or deleted: its webhook's route
    /// when a webhook of ours posted it, else the channel's (as the bot).
    fn message_path(
        &self,
        channel: &str,
        target: &Posted,
        id: &str,
        hooks: &HashMap<String, Webhook>,
    ) -> (String, Auth) {
        // A thread's messages are its own (the thread is a channel).
        let in_thread = target.thread.as_deref();
        match target
            .handle
            .as_ref()
            .and_then(|hid| hooks.values().find(|w| &w.id == hid))
        {
            Some(w) => {
                let mut path = format!("/webhooks/{}/{}/messages/{id}", w.id, w.token);
                if let Some(t) = in_thread {
                    path.push_str(&format!("?thread_id={t}"));
                }
                (path, Auth::None)
            }
            None => (
                format!("/channels/{}/messages/{id}", in_thread.unwrap_or(channel)),
                Auth::Bot,
            ),
        }
    }

    pub(super) async fn edit(
        &self,
        channel: &str,
        target: &Posted,
        parts: &[String],
    ) -> Result<Posted, DeliverError> {
        let hooks = self.webhooks.lock().await.clone();
        for (i, id) in target.ids.iter().enumerate() {
            let (path, auth) = self.message_path(channel, target, id, &hooks);
            match parts.get(i) {
                Some(p) => {
                    let body = json!({ "content": p, "allowed_mentions": { "parse": [] } });
                    self.rest
                        .call(reqwest::Method::PATCH, &path, Some(body), auth)
                        .await?;
                }
                // The new text needs fewer posts: remove the rest.
                None => gone_is_done(
                    self.rest
                        .call(reqwest::Method::DELETE, &path, None, auth)
                        .await,
                )?,
            }
        }
        Ok(target.clone())
    }

    pub(super) async fn delete(
        &self,
        channel: &str,
        target: &Posted,
    ) -> Result<Posted, DeliverError> {
        let hooks = self.webhooks.lock().await.clone();
        for id in &target.ids {
            let (path, auth) = self.message_path(channel, target, id, &hooks);
            gone_is_done(
                self.rest
                    .call(reqwest::Method::DELETE, &path, None, auth)
                    .await,
            )?;
        }
        Ok(target.clone())
    }
}

impl Shared {
    /// Add or take back the bot's reaction `emoji` (Unicode) on the message
    /// `target` (Add Reactions; a webhook's post is the channel's too).
    pub(super) async fn react(
        &self,
        channel: &str,
        target: &Posted,
        emoji: &str,
        add: bool,
    ) -> Result<Posted, DeliverError> {
        let Some(id) = target.ids.first() else {
            return Ok(Posted::default());
        };
        let emoji: String = url::form_urlencoded::byte_serialize(emoji.as_bytes()).collect();
        let channel = target.thread.as_deref().unwrap_or(channel);
        let path = format!("/channels/{channel}/messages/{id}/reactions/{emoji}/@me");
        let method = if add {
            reqwest::Method::PUT
        } else {
            reqwest::Method::DELETE
        };
        gone_is_done(self.rest.call(method, &path, None, Auth::Bot).await)?;
        Ok(Posted::default())
    }
}

/// Deleting something already gone is success.
fn gone_is_done(r: Result<Value, RestError>) -> Result<(), DeliverError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()).map_err(DeliverError::from),
    }
}
