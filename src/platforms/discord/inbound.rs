//! What Discord sends, as chat events: a message's content with mentions and
//! custom emoji resolved to common markup, its author, attachments, stickers
//! and reply reference; our own posts (bot user, our webhooks) recognised and
//! left out.

use serde_json::Value;
use serenity::all::{GuildId, Message, MessageReferenceKind, MessageType, MessageUpdateEvent};

use super::Shared;
use super::content::{self, Found};
use super::rest::Auth;
use crate::bridge::Inbound;
use crate::event::{self, Attachment, Author, ChatEvent, Emote};

impl Shared {
    /// A channel's or role's name, looked up once.
    async fn lookup_name(&self, key: String, path: String) -> Option<String> {
        if let Some(n) = self.names.lock().await.get(&key) {
            return Some(n.clone());
        }
        let v = match self
            .rest
            .call(reqwest::Method::GET, &path, None, Auth::Bot)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                // The mention shows a stand-in this time; asked again next time.
                tracing::warn!(key, error = %e, "discord lookup failed; a stand-in name is used this time");
                metrics::counter!("jetbridge_lookup_failures_total", "bridge" => self.name.clone(), "what" => "name")
                    .increment(1);
                return None;
            }
        };
        let name = if let Some(list) = v.as_array() {
            // Roles come as a list for the guild.
            let mut names = self.names.lock().await;
            for r in list {
                if let (Some(id), Some(n)) = (r["id"].as_str(), r["name"].as_str()) {
                    names.insert(format!("role:{id}"), n.to_string());
                }
            }
            names.get(&key).cloned()
        } else {
            v["name"].as_str().map(str::to_string)
        };
        if let Some(n) = &name {
            self.names.lock().await.insert(key, n.clone());
        }
        name
    }

    /// Discord content → common markup: mentions and custom emoji resolved.
    pub(super) async fn to_common(
        &self,
        content: &str,
        mentions: &[serenity::all::User],
        guild: Option<GuildId>,
    ) -> (String, Vec<Emote>) {
        let mut out = String::with_capacity(content.len());
        let mut emotes = Vec::new();
        let mut rest = content;
        while let Some(start) = rest.find('<') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find('>') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let token = &after[1..end];
            let replaced = if let Some(id) = token.strip_prefix("@&") {
                let name = match guild {
                    Some(g) => {
                        self.lookup_name(format!("role:{id}"), format!("/guilds/{g}/roles"))
                            .await
                    }
                    None => None,
                };
                Some(format!("@{}", name.unwrap_or_else(|| "role".into())))
            } else if let Some(id) = token.strip_prefix("@!").or_else(|| token.strip_prefix('@')) {
                let name = mentions
                    .iter()
                    .find(|u| u.id.to_string() == id)
                    .map(|u| u.global_name.clone().unwrap_or_else(|| u.name.clone()));
                Some(format!("@{}", name.unwrap_or_else(|| "someone".into())))
            } else if let Some(id) = token.strip_prefix('#') {
                let name = self
                    .lookup_name(format!("channel:{id}"), format!("/channels/{id}"))
                    .await;
                Some(format!("#{}", name.unwrap_or_else(|| "channel".into())))
            } else if let Some(e) = token.strip_prefix(':').or_else(|| token.strip_prefix("a:")) {
                e.split_once(':').map(|(name, id)| {
                    let code = format!(":{name}:");
                    let ext = if token.starts_with("a:") {
                        "gif"
                    } else {
                        "png"
                    };
                    if !emotes.iter().any(|x: &Emote| x.name == code) {
                        emotes.push(Emote {
                            zero_width: false,
                            name: code.clone(),
                            url: format!("https://cdn.discordapp.com/emojis/{id}.{ext}"),
                        });
                    }
                    code
                })
            } else {
                None
            };
            match replaced {
                Some(r) => out.push_str(&r),
                None => out.push_str(&after[..=end]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        (out, emotes)
    }

    pub(super) async fn is_own(&self, msg: &Message) -> bool {
        let Some(me) = *self.me.read().await else {
            return false;
        };
        if msg.author.id.get() == me.user_id {
            return true;
        }
        match msg.webhook_id {
            Some(w) => {
                msg.application_id
                    .is_some_and(|a| a.get() == me.application_id)
                    || self.is_own_webhook(&w.to_string()).await
            }
            None => false,
        }
    }

    /// A message as an event: its content, and what it says elsewhere (a
    /// forward, a poll, embeds, Components V2: see `content`), its files as
    /// links viewers elsewhere can open. `raw` is the message's JSON when it
    /// is at hand (serenity drops Components V2); without it, a message that
    /// seems to say nothing is read again over REST. `None` for our own posts,
    /// ignored bots, and what is not chat (joins, pins, boosts).
    pub(super) async fn message_event(
        &self,
        msg: &Message,
        raw: Option<&Value>,
        inbound: &Inbound,
    ) -> Option<ChatEvent> {
        if self.is_own(msg).await {
            return None;
        }
        if self.cfg.ignore_bots && (msg.author.bot || msg.webhook_id.is_some()) {
            return None;
        }
        if !matches!(
            msg.kind,
            MessageType::Regular
                | MessageType::InlineReply
                | MessageType::ChatInputCommand
                | MessageType::ContextMenuCommand
        ) {
            return None;
        }
        let said_in = msg.channel_id.to_string();
        let (channel, thread) = self.place(&said_in, inbound).await;
        let (text, emotes) = self
            .to_common(&msg.content, &msg.mentions, msg.guild_id)
            .await;
        let mut lines: Vec<String> = Vec::new();
        if !text.is_empty() {
            lines.push(text);
        }
        let mut files: Vec<Found> = msg.attachments.iter().map(found_attachment).collect();
        let forward = msg
            .message_reference
            .as_ref()
            .is_some_and(|r| r.kind == MessageReferenceKind::Forward);
        for snap in &msg.message_snapshots {
            let (t, _) = self
                .to_common(&snap.content, &snap.mentions, msg.guild_id)
                .await;
            let mut said: Vec<String> = Vec::new();
            if !t.is_empty() {
                said.push(t);
            }
            said.extend(snap.embeds.iter().flat_map(content::embed_lines));
            lines.push(if said.is_empty() {
                "*Forwarded a message*".to_string()
            } else {
                format!("*Forwarded:* {}", said.join("\n"))
            });
            files.extend(snap.attachments.iter().map(found_attachment));
        }
        if let Some(poll) = &msg.poll {
            lines.extend(content::poll_lines(poll));
        }
        lines.extend(msg.embeds.iter().flat_map(content::embed_lines));
        for s in &msg.sticker_items {
            files.push(Found {
                url: format!("https://media.discordapp.net/stickers/{}.png", s.id),
                name: s.name.clone(),
                content_type: Some("image/png".into()),
                size: None,
            });
        }
        // serenity drops Components V2 (and their flag): read them from the
        // JSON, fetched again when this message seems to say nothing.
        let fetched;
        let raw = match raw {
            Some(r) => Some(r),
            None if lines.is_empty() && files.is_empty() => {
                fetched = self.fetch_raw(&said_in, &msg.id.to_string()).await;
                fetched.as_ref()
            }
            None => None,
        };
        if let Some(raw) = raw {
            let (said, media) = content::components(&raw["components"]);
            lines.extend(said);
            files.extend(media);
        }
        if lines.is_empty() && files.is_empty() {
            tracing::info!(message_id = %msg.id, "a discord message with nothing to relay");
            return None;
        }
        let author = Author {
            id: msg.author.id.to_string(),
            name: msg
                .member
                .as_ref()
                .and_then(|m| m.nick.clone())
                .or_else(|| msg.author.global_name.clone())
                .unwrap_or_else(|| msg.author.name.clone()),
            avatar_url: Some(msg.author.face()),
            color: None,
            bot: msg.author.bot || msg.webhook_id.is_some(),
            badges: bot_badge(msg.author.bot || msg.webhook_id.is_some()),
            first_message: None,
        };
        let mut ev = ChatEvent::message(
            &self.name,
            &channel,
            &msg.id.to_string(),
            author,
            lines.join("\n"),
        );
        ev.ts = chrono::DateTime::parse_from_rfc3339(&msg.timestamp.to_string())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(ev.ts);
        ev.emotes = emotes;
        // A forward's reference points at the original elsewhere: not a reply.
        if !forward {
            ev.reply_to = msg
                .message_reference
                .as_ref()
                .and_then(|r| r.message_id)
                .map(|id| event::message_id(&self.name, &channel, &id.to_string()));
        }
        for f in files {
            ev.attachments.push(Attachment {
                url: self.file_link(&f.url, inbound).await,
                name: f.name,
                content_type: f.content_type,
                size: f.size,
            });
        }
        if let Some(t) = &thread {
            self.place_in(&mut ev, t, inbound).await;
        }
        Some(ev)
    }

    /// A message's JSON as the REST API gives it, if it can be had now.
    async fn fetch_raw(&self, channel: &str, id: &str) -> Option<Value> {
        let path = format!("/channels/{channel}/messages/{id}");
        match self
            .rest
            .call(reqwest::Method::GET, &path, None, Auth::Bot)
            .await
        {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(message_id = id, error = %e, "cannot read the message again");
                None
            }
        }
    }

    /// A link to a Discord file that keeps working once its signed URL has
    /// expired (see `media`); other URLs stay as they are.
    async fn file_link(&self, url: &str, inbound: &Inbound) -> String {
        match super::media::reference(url) {
            Some(reference) => inbound.media_link(&reference, url).await,
            None => url.to_string(),
        }
    }

    /// An edit as an event; `None` for updates that are not edits (embeds
    /// resolved, pins) and for our own posts.
    pub(super) async fn edit_event(
        &self,
        ev: &MessageUpdateEvent,
        inbound: &Inbound,
    ) -> Option<ChatEvent> {
        let (Some(content), Some(edited)) = (ev.content.as_ref(), ev.edited_timestamp) else {
            return None;
        };
        if let Some(author) = &ev.author
            && let Some(me) = *self.me.read().await
            && author.id.get() == me.user_id
        {
            return None;
        }
        if let Some(Some(w)) = ev.webhook_id
            && self.is_own_webhook(&w.to_string()).await
        {
            return None;
        }
        // Resolve mentions as for a new message.
        let mentions = ev.mentions.clone().unwrap_or_default();
        let (text, _) = self.to_common(content, &mentions, ev.guild_id).await;
        let author = ev.author.as_ref().map(|a| Author {
            id: a.id.to_string(),
            name: a.global_name.clone().unwrap_or_else(|| a.name.clone()),
            avatar_url: Some(a.face()),
            color: None,
            bot: a.bot,
            badges: bot_badge(a.bot),
            first_message: None,
        });
        // A thread's messages belong to its parent channel.
        let (channel, _) = self.place(&ev.channel_id.to_string(), inbound).await;
        Some(ChatEvent::edit(
            &self.name,
            &channel,
            &ev.id.to_string(),
            &edited.to_string(),
            author,
            text,
        ))
    }
}

/// A Discord attachment as a file found in a message.
fn found_attachment(a: &serenity::all::Attachment) -> Found {
    Found {
        url: a.url.clone(),
        name: a.filename.clone(),
        content_type: a.content_type.clone(),
        size: Some(u64::from(a.size)),
    }
}

/// The badges a Discord author shows: `bot` for bots and webhooks.
fn bot_badge(bot: bool) -> Vec<String> {
    if bot {
        vec!["bot".to_string()]
    } else {
        Vec::new()
    }
}
