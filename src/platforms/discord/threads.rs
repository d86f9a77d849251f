//! Discord threads as the rooms see them: a message in a thread (of a text
//! channel, or a forum post) belongs to the thread's parent channel, with
//! `thread` the id of the thread's first message (a thread's id is its
//! starter message's, for a thread started on a message and for a forum
//! post). A forum post's first message leads with the post's title.

use super::Shared;
use super::rest::Auth;
use crate::bridge::Inbound;
use crate::event::{self, ChatEvent};

/// A thread a message was said in.
pub struct Thread {
    pub id: String,
    pub name: String,
    /// A forum post (its parent is a forum channel).
    pub forum: bool,
    /// Who started it.
    pub owner: String,
}

/// Discord's channel type of a forum (and a media channel, its kin).
const FORUMS: [u64; 2] = [15, 16];
/// Discord's thread channel types: announcement, public, private.
const THREADS: [u64; 3] = [10, 11, 12];

impl Shared {
    /// The configured channel a message in Discord channel `id` belongs to,
    /// and the thread it is in: `id` itself when a room reads it, else the
    /// parent of the thread `id` is, when a room reads that.
    pub(super) async fn place(&self, id: &str, inbound: &Inbound) -> (String, Option<Thread>) {
        if inbound.room_of(id).is_some() {
            return (id.to_string(), None);
        }
        match self.thread_info(id).await {
            Some((parent, thread)) if inbound.room_of(&parent).is_some() => (parent, Some(thread)),
            _ => (id.to_string(), None),
        }
    }

    /// Thread `id`'s parent channel and what it is; `None` for a channel
    /// that is not a thread (remembered) or that cannot be read now.
    async fn thread_info(&self, id: &str) -> Option<(String, Thread)> {
        let key = format!("thread:{id}");
        let known = self.names.lock().await.get(&key).cloned();
        let known = match known {
            Some(k) => k,
            None => {
                let v = self.channel_json(id).await;
                let v = match v {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(channel = id, error = %e, "cannot tell which channel a thread is in");
                        return None;
                    }
                };
                let kind = v["type"].as_u64().unwrap_or(0);
                let k = match v["parent_id"].as_str() {
                    Some(parent) if THREADS.contains(&kind) => {
                        let forum = self.is_forum(parent).await;
                        let name = v["name"].as_str().unwrap_or_default();
                        let owner = v["owner_id"].as_str().unwrap_or_default();
                        format!("{parent}\t{}\t{owner}\t{name}", u8::from(forum))
                    }
                    _ => String::new(),
                };
                self.names.lock().await.insert(key, k.clone());
                k
            }
        };
        let mut parts = known.splitn(4, '\t');
        let (parent, forum, owner, name) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        Some((
            parent.to_string(),
            Thread {
                id: id.to_string(),
                name: name.to_string(),
                forum: forum == "1",
                owner: owner.to_string(),
            },
        ))
    }

    async fn is_forum(&self, channel: &str) -> bool {
        let v = self.channel_json(channel).await;
        v.is_ok_and(|v| v["type"].as_u64().is_some_and(|t| FORUMS.contains(&t)))
    }
}

impl Shared {
    /// Put `ev` (said in `thread` of its channel) in that thread: its first
    /// message (a forum post's) leads with the title; the others name the
    /// first message as their thread (the original, where it is a copy of
    /// ours) and answer it unless they answer another. A thread started
    /// without a message has no first message of its own: its title stands
    /// for one, stored once before the first reply seen.
    pub(super) async fn place_in(&self, ev: &mut ChatEvent, thread: &Thread, inbound: &Inbound) {
        if ev.source.message_id == thread.id {
            if thread.forum && !thread.name.is_empty() {
                ev.text = titled(&thread.name, &ev.text);
            }
            return;
        }
        if !thread.forum {
            self.title_without_message(&ev.source.channel, thread, inbound)
                .await;
        }
        let root = event::message_id(&ev.source.bridge, &ev.source.channel, &thread.id);
        let root = inbound.original(&root).await;
        if ev.reply_to.is_none() {
            ev.reply_to = Some(root.clone());
        }
        ev.thread = Some(root);
    }

    /// For a thread of `channel` started without a message: its title as its
    /// first message (same id every time, so stored once).
    async fn title_without_message(&self, channel: &str, thread: &Thread, inbound: &Inbound) {
        let key = format!("starter:{}", thread.id);
        if self.names.lock().await.get(&key).is_some() {
            return;
        }
        let starter = self
            .rest
            .call(
                reqwest::Method::GET,
                &format!("/channels/{channel}/messages/{}", thread.id),
                None,
                Auth::Bot,
            )
            .await;
        match starter {
            // Started on a message: that message is its first.
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                let owner = crate::event::Author {
                    id: thread.owner.clone(),
                    name: thread.owner.clone(),
                    ..Default::default()
                };
                let mut root = ChatEvent::message(
                    &self.name,
                    channel,
                    &thread.id,
                    owner,
                    titled(&thread.name, ""),
                );
                if let Some(t) = super::history::snowflake_time(&thread.id) {
                    root.ts = t;
                }
                inbound.publish(root).await;
            }
            Err(e) => {
                tracing::warn!(thread = %thread.id, error = %e, "cannot tell how a thread was started; asked again next time");
                return;
            }
        }
        self.names.lock().await.insert(key, String::new());
    }
}

/// A forum post's (or thread's) first message: the title in bold, then `text`.
fn titled(title: &str, text: &str) -> String {
    let title = crate::render::escape_markup(title);
    if text.is_empty() {
        format!("**{title}**")
    } else {
        format!("**{title}**\n{text}")
    }
}
