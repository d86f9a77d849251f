//! What Slack sends, as chat events: message events (plain, `/me`, file
//! shares, thread broadcasts, other bots) with mrkdwn made common markup and
//! users resolved, `message_changed` as edits, `message_deleted` as deletes;
//! our own bot never comes back in.

use slack_morphism::prelude::*;

use super::Shared;
use super::files::FileRef;
use super::markup::{plain_to_common, unescape};
use crate::bridge::Inbound;
use crate::event::{self, Attachment, Author, ChatEvent, Reaction, ReactionOp};
use crate::render;

impl Shared {
    /// Slack mrkdwn → common markup.
    async fn to_common(&self, mrkdwn: &str) -> String {
        let mut out = String::with_capacity(mrkdwn.len());
        let mut rest = mrkdwn;
        while let Some(start) = rest.find('<') {
            out.push_str(&plain_to_common(&rest[..start]));
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else {
                out.push_str(&plain_to_common(&rest[start..]));
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (target, label) = match inner.split_once('|') {
                Some((t, l)) => (t, Some(l)),
                None => (inner, None),
            };
            let piece = if let Some(user) = target.strip_prefix('@') {
                let name = match label {
                    Some(l) => l.to_string(),
                    None => self.user(user).await.name,
                };
                format!("@{}", render::escape_markup(&name))
            } else if let Some(ch) = target.strip_prefix('#') {
                let name = match label {
                    Some(l) => l.to_string(),
                    None => self.channel_name(ch).await,
                };
                format!("#{}", render::escape_markup(&name))
            } else if let Some(special) = target.strip_prefix('!') {
                // <!here>, <!channel>, <!subteam^ID|@team>, <!date…|fallback>
                match label {
                    Some(l) => render::escape_markup(&unescape(l)),
                    None => format!("@{}", special.split('^').next().unwrap_or(special)),
                }
            } else {
                let url = unescape(target);
                match label {
                    Some(l) if unescape(l) != url => {
                        format!("[{}]({url})", render::escape_markup(&unescape(l)))
                    }
                    _ => url,
                }
            };
            out.push_str(&piece);
            rest = &after[end + 1..];
        }
        out.push_str(&plain_to_common(rest));
        out
    }

    async fn author(&self, sender: &SlackMessageSender) -> Author {
        match &sender.user {
            Some(u) => {
                let person = self.user(u.as_ref()).await;
                let mut author = Author {
                    id: u.to_string(),
                    name: person.name,
                    avatar_url: person.avatar,
                    color: None,
                    bot: false,
                    badges: person.badges,
                    first_message: None,
                };
                if sender.bot_id.is_some() {
                    mark_bot(&mut author);
                }
                author
            }
            None => Author {
                id: sender
                    .bot_id
                    .as_ref()
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                name: sender.username.clone().unwrap_or_else(|| "bot".into()),
                avatar_url: None,
                color: None,
                bot: true,
                badges: vec!["bot".to_string()],
                first_message: None,
            },
        }
    }

    async fn is_own(&self, sender: &SlackMessageSender) -> bool {
        let me = self.me.read().await;
        let Some((user, bot)) = me.as_ref() else {
            return false;
        };
        sender.user.as_ref().is_some_and(|u| u.as_ref() == user)
            || (sender.bot_id.is_some() && sender.bot_id.as_ref().map(|b| b.to_string()) == *bot)
    }

    /// Publish what a message event says (a message, an edit, a delete);
    /// `files` were taken out of its JSON (see `files`).
    pub(super) async fn on_message(
        &self,
        ev: SlackMessageEvent,
        files: &[FileRef],
        inbound: &Inbound,
    ) {
        if let Some(e) = self.message_event(ev, files, inbound).await {
            inbound.publish(e).await;
        }
    }

    /// What a message event says, as a chat event; `None` for our own posts,
    /// ignored bots, and what is not chat (joins, unfurls).
    pub(super) async fn message_event(
        &self,
        ev: SlackMessageEvent,
        files: &[FileRef],
        inbound: &Inbound,
    ) -> Option<ChatEvent> {
        let channel = ev.origin.channel.as_ref().map(|c| c.to_string())?;
        match ev.subtype {
            Some(SlackMessageEventType::MessageChanged) => {
                let edited = ev.message?;
                if self.is_own(&edited.sender).await {
                    return None;
                }
                let Some(marker) = edited.edited.as_ref().map(|e| e.ts.to_string()) else {
                    // An unfurl or other change of attachments, not an edit.
                    return None;
                };
                let text = self
                    .to_common(
                        edited
                            .content
                            .as_ref()
                            .and_then(|c| c.text.as_deref())
                            .unwrap_or(""),
                    )
                    .await;
                let author = self.author(&edited.sender).await;
                let e = ChatEvent::edit(
                    &self.name,
                    &channel,
                    edited.ts.as_ref(),
                    &marker,
                    Some(author),
                    text,
                );
                Some(e)
            }
            Some(SlackMessageEventType::MessageDeleted) => {
                let ts = ev
                    .deleted_ts
                    .or_else(|| ev.previous_message.as_ref().map(|p| p.ts.clone()))?;
                // A post of ours deleted is kept too: if jetbridge did not
                // delete it, a moderator did, and the router follows it to the
                // original (a mirrored delete).
                let author = match &ev.previous_message {
                    Some(p) if self.is_own(&p.sender).await => None,
                    Some(p) => Some(self.author(&p.sender).await),
                    None => None,
                };
                Some(ChatEvent::delete(&self.name, &channel, ts.as_ref(), author))
            }
            None
            | Some(SlackMessageEventType::MeMessage)
            | Some(SlackMessageEventType::FileShare)
            | Some(SlackMessageEventType::ThreadBroadcast)
            | Some(SlackMessageEventType::BotMessage) => {
                if self.is_own(&ev.sender).await {
                    return None;
                }
                let is_bot = ev.sender.bot_id.is_some()
                    || ev.subtype == Some(SlackMessageEventType::BotMessage);
                if is_bot && self.cfg.ignore_bots {
                    return None;
                }
                let content = ev.content.as_ref();
                let mut text = self
                    .to_common(content.and_then(|c| c.text.as_deref()).unwrap_or(""))
                    .await;
                if ev.subtype == Some(SlackMessageEventType::MeMessage) && !text.is_empty() {
                    text = format!("*{text}*");
                }
                let ts = ev.origin.ts.to_string();
                let mut author = self.author(&ev.sender).await;
                if is_bot {
                    mark_bot(&mut author);
                }
                let mut e = ChatEvent::message(&self.name, &channel, &ts, author, text);
                if let Some(t) = slack_ts_to_time(&ts) {
                    e.ts = t;
                }
                // A thread reply: in the thread of its first message (the
                // original, when that is a copy of ours), answering it.
                if let Some(thread) = ev.origin.thread_ts.as_ref().map(|t| t.to_string())
                    && thread != ts
                {
                    let root = event::message_id(&self.name, &channel, &thread);
                    let root = inbound.original(&root).await;
                    e.reply_to = Some(root.clone());
                    e.thread = Some(root);
                }
                let mut hidden = 0;
                for f in files {
                    if f.hidden {
                        hidden += 1;
                        continue;
                    }
                    let fallback = f.fallback.clone().unwrap_or_default();
                    e.attachments.push(Attachment {
                        url: inbound.media_link(&f.id, &fallback).await,
                        name: f.name.clone(),
                        content_type: f.mimetype.clone(),
                        size: f.size,
                    });
                }
                if hidden > 0 {
                    let note = "*(a file Slack no longer shows on this workspace's plan)*";
                    e.text = if e.text.is_empty() {
                        note.to_string()
                    } else {
                        format!("{}\n{note}", e.text)
                    };
                }
                if e.text.is_empty() && e.attachments.is_empty() {
                    return None;
                }
                Some(e)
            }
            // Joins, topic changes and the like are not chat.
            Some(_) => None,
        }
    }
}

/// A Slack `ts` ("1700000000.123456") as a time.
pub fn slack_ts_to_time(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let micros: u32 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    chrono::DateTime::from_timestamp(secs, micros * 1000)
}

/// Marks `author` a bot, with the `bot` badge once beside what users.info gave.
fn mark_bot(author: &mut Author) {
    author.bot = true;
    if !author.badges.iter().any(|b| b == "bot") {
        author.badges.push("bot".to_string());
    }
}

impl Shared {
    /// Someone's emoji added to (or taken from) a message: a `reaction`
    /// event, its target the original when the message is one of our copies.
    /// Our own reactions are the mirrors of others' and are not kept.
    pub(super) async fn on_reaction(
        &self,
        r: &SlackReactionAddedEvent,
        add: bool,
        inbound: &Inbound,
    ) {
        let (user, item_user, name, item, event_ts) = (
            &r.user,
            r.item_user.as_ref(),
            &r.reaction,
            &r.item,
            &r.event_ts,
        );
        let SlackReactionsItem::Message(message) = item else {
            return;
        };
        let Some(channel) = message.origin.channel.as_ref().map(|c| c.to_string()) else {
            return;
        };
        let sender = SlackMessageSender::new().with_user(user.clone());
        if self.is_own(&sender).await {
            return;
        }
        let author = self.author(&sender).await;
        let op = if add {
            ReactionOp::Add
        } else {
            ReactionOp::Remove
        };
        let reaction = Reaction {
            emoji: super::emoji::from_slack(name.as_ref()),
            op,
        };
        let mut ev = ChatEvent::reaction(
            &self.name,
            &channel,
            message.origin.ts.as_ref(),
            Some(author),
            reaction,
            Some(event_ts.as_ref()),
        );
        let ours = match (item_user, self.me.read().await.as_ref()) {
            (Some(u), Some((me, _))) => u.as_ref() == me,
            _ => false,
        };
        if let Some(t) = &ev.target {
            ev.target = Some(if ours {
                inbound.original_of_ours(t).await
            } else {
                inbound.original(t).await
            });
        }
        inbound.publish(ev).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ts_parses() {
        let t = slack_ts_to_time("1700000000.123456").unwrap();
        assert_eq!(t.timestamp_millis(), 1_700_000_000_123);
    }
}
