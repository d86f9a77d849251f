//! What Twitch sends, as chat events: PRIVMSG → `message`, USERNOTICE →
//! `notice` (see `notice`), CLEARMSG → `delete`, CLEARCHAT (a ban or
//! timeout) → a `delete` of each of that user's recent messages, both also a
//! `moderation` record (see `moderation`); a refused login → an auth error.
//! Our own login is ignored inbound.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use twitch_irc::message::{
    AsRawIRC, Badge, ClearChatAction, IRCMessage, PrivmsgMessage, RGBColor, ServerMessage,
    TwitchUserBasics,
};

use super::emotes::{Catalog, Wants};
use super::shared::Sessions;
use crate::bridge::{BridgeError, Inbound};
use crate::event::{self, Author, ChatEvent, Emote, SharedChat};
use crate::render;

/// Reads one account's incoming messages into events.
pub struct Reader {
    bridge: String,
    /// Our login, lower-cased; empty when anonymous.
    own_login: String,
    recent: Recent,
    sessions: Arc<Sessions>,
    /// Third-party emotes, and the fetcher to ask for a channel's.
    emotes: (Arc<Catalog>, Wants),
}

impl Reader {
    pub fn new(
        bridge: &str,
        own_login: &str,
        sessions: Arc<Sessions>,
        emotes: (Arc<Catalog>, Wants),
    ) -> Self {
        Reader {
            bridge: bridge.to_string(),
            own_login: own_login.to_lowercase(),
            recent: Recent::default(),
            sessions,
            emotes,
        }
    }

    /// A Shared Chat copy (a message or a notice): whether to store it, and
    /// where it came from. `None`: not stored (the channel it was sent in is
    /// read: its own copy is the one stored).
    fn shared_origin(
        &self,
        source: &IRCMessage,
        channel_id: &str,
        channel_login: &str,
        inbound: &Inbound,
    ) -> Option<Option<SharedChat>> {
        let tags = &source.tags.0;
        let (Some(room), Some(id)) = (tags.get("source-room-id"), tags.get("source-id")) else {
            return Some(None);
        };
        if room.is_empty() || room == channel_id {
            return Some(None);
        }
        if let Some(from) = self.sessions.login_of(room) {
            self.sessions.seen(&from, channel_login);
            if inbound.room_of(&format!("#{from}")).is_some() {
                return None;
            }
        }
        Some(Some(SharedChat {
            room_id: room.clone(),
            message_id: id.clone(),
        }))
    }

    /// The event a chat line (PRIVMSG) or notice (USERNOTICE) stores, as
    /// live or from history, and its sender's login; `None` for anything
    /// else, our own lines, and Shared Chat copies stored elsewhere.
    pub fn chat_event(
        &self,
        msg: &ServerMessage,
        inbound: &Inbound,
    ) -> Option<(ChatEvent, String)> {
        let (mut ev, source, channel_id, login) = match msg {
            ServerMessage::Privmsg(m) => {
                // Our own posts come back on other connections and from other
                // instances with the same login; never re-publish them.
                if !self.own_login.is_empty()
                    && m.sender.login.eq_ignore_ascii_case(&self.own_login)
                {
                    return None;
                }
                let mut ev = privmsg_to_event(&self.bridge, m);
                self.emotes
                    .0
                    .add_to(&m.channel_id, &m.message_text, &mut ev.emotes);
                (ev, &m.source, &m.channel_id, &m.sender.login)
            }
            ServerMessage::UserNotice(n) => {
                let mut ev = super::notice::usernotice_to_event(&self.bridge, n);
                if let Some(text) = &n.message_text {
                    self.emotes.0.add_to(&n.channel_id, text, &mut ev.emotes);
                }
                (ev, &n.source, &n.channel_id, &n.sender.login)
            }
            _ => return None,
        };
        let channel_login = ev.source.channel.trim_start_matches('#').to_string();
        ev.shared_chat = self.shared_origin(source, channel_id, &channel_login, inbound)?;
        Some((ev, login.clone()))
    }

    /// Read what `msg` tells into events and store them.
    pub async fn handle(
        &mut self,
        msg: ServerMessage,
        inbound: &Inbound,
    ) -> Result<(), BridgeError> {
        let msg = match msg {
            // twitch-irc could not read it as what it is: read what it carries.
            ServerMessage::Generic(_) => match super::lenient::repair(msg.source()) {
                None => return Ok(()),
                Some(Ok((repaired, tags))) => {
                    tracing::warn!(line = %msg.source().as_raw_irc(), repaired = ?tags, "a twitch line with tags that do not read; stored without them");
                    repaired
                }
                Some(Err(e)) => {
                    let id = msg.source().tags.0.get("id").cloned().unwrap_or_default();
                    inbound.unparsed(&id, &e);
                    return Ok(());
                }
            },
            msg => msg,
        };
        match msg {
            ServerMessage::Privmsg(_) | ServerMessage::UserNotice(_) => {
                if let Some((ev, login)) = self.chat_event(&msg, inbound) {
                    self.recent
                        .remember(&ev.source.channel, &login, &ev.source.message_id);
                    inbound.publish(ev).await;
                }
            }
            ServerMessage::ClearChat(m) => {
                inbound
                    .publish(super::moderation::clearchat(&self.bridge, &m))
                    .await;
                // A timeout or ban removes the user's messages from chat: delete
                // the ones we relayed.
                let login = match &m.action {
                    ClearChatAction::UserBanned { user_login, .. }
                    | ClearChatAction::UserTimedOut { user_login, .. } => user_login.clone(),
                    ClearChatAction::ChatCleared => {
                        tracing::info!(channel = %m.channel_login, "chat cleared by a moderator");
                        return Ok(());
                    }
                };
                let channel = format!("#{}", m.channel_login);
                for id in self.recent.take_user(&channel, &login) {
                    let mut ev =
                        ChatEvent::delete(&self.bridge, &channel, &id, Some(login_author(&login)));
                    ev.ts = m.server_timestamp;
                    inbound.publish(ev).await;
                }
            }
            ServerMessage::ClearMsg(m) => {
                // One of our own lines removed: jetbridge did it, or a
                // moderator did and the mirrored delete records it.
                if !m.sender_login.eq_ignore_ascii_case(&self.own_login) {
                    inbound
                        .publish(super::moderation::clearmsg(&self.bridge, &m))
                        .await;
                }
                let channel = format!("#{}", m.channel_login);
                let mut ev = ChatEvent::delete(
                    &self.bridge,
                    &channel,
                    &m.message_id,
                    Some(login_author(&m.sender_login)),
                );
                ev.ts = m.server_timestamp;
                inbound.publish(ev).await;
            }
            ServerMessage::RoomState(r) => {
                self.sessions.room(&r.channel_login, &r.channel_id);
                self.emotes.1.room(&r.channel_id);
            }
            ServerMessage::Notice(n) => {
                let text = n.message_text.to_lowercase();
                if n.channel_login.is_none()
                    && (text.contains("login authentication failed")
                        || text.contains("improperly formatted auth")
                        || text.contains("invalid nick"))
                {
                    return Err(BridgeError::auth(
                        format!(
                            "Twitch refused the login of {:?}: {}",
                            self.own_login, n.message_text
                        ),
                        format!("{}.token: a chat OAuth token for that login", self.bridge),
                    ));
                }
                tracing::info!(channel = ?n.channel_login, notice = %n.message_text, "twitch notice");
            }
            _ => {}
        }
        Ok(())
    }
}

/// The author of a delete, known only by login.
fn login_author(login: &str) -> Author {
    Author {
        id: login.to_string(),
        name: login.to_string(),
        ..Default::default()
    }
}

/// A Twitch PRIVMSG as a `message` event of bridge `bridge` (room unset).
pub fn privmsg_to_event(bridge: &str, m: &PrivmsgMessage) -> ChatEvent {
    let channel = format!("#{}", m.channel_login);
    // Twitch text is plain: markup characters are escaped, not interpreted.
    let text = render::escape_markup(&m.message_text);
    let text = if m.is_action && !text.is_empty() {
        format!("*{text}*")
    } else {
        text
    };
    let author = author_of(&m.sender, m.name_color, &m.source, &m.badges);
    let mut ev = ChatEvent::message(bridge, &channel, &m.message_id, author, text);
    ev.ts = m.server_timestamp;
    ev.reply_to = m
        .reply_parent
        .as_ref()
        .map(|p| event::message_id(bridge, &channel, &p.message_id));
    ev.emotes = twitch_emotes(&m.emotes);
    ev
}

/// A Twitch sender as an event's author.
pub(super) fn author_of(
    sender: &TwitchUserBasics,
    color: Option<RGBColor>,
    source: &IRCMessage,
    badges: &[Badge],
) -> Author {
    let badges = badges_of(source, badges);
    Author {
        id: sender.id.clone(),
        name: sender.name.clone(),
        avatar_url: None,
        color: color.map(|c| format!("#{:02X}{:02X}{:02X}", c.r, c.g, c.b)),
        // Twitch's chat-bot badge is the only word it gives on that.
        bot: badges.iter().any(|b| b == "bot"),
        badges,
        first_message: Some(source.tags.0.get("first-msg").is_some_and(|v| v == "1")),
    }
}

/// Twitch's own emotes of a line, each name once.
pub(super) fn twitch_emotes(emotes: &[twitch_irc::message::Emote]) -> Vec<Emote> {
    let mut seen = HashSet::new();
    emotes
        .iter()
        .filter(|e| seen.insert(e.code.clone()))
        .map(|e| Emote {
            zero_width: false,
            name: e.code.clone(),
            url: format!(
                "https://static-cdn.jtvnw.net/emoticons/v2/{}/default/dark/1.0",
                e.id
            ),
        })
        .collect()
}

/// The sender's badges in the fixed vocabulary of events. A Shared Chat copy
/// carries the sender's badges of the channel it was sent in (`source-badges`).
fn badges_of(source: &IRCMessage, badges: &[Badge]) -> Vec<String> {
    let mut names: Vec<String> = match source.tags.0.get("source-badges") {
        Some(src) => src
            .split(',')
            .filter_map(|b| b.split_once('/').map(|(n, _)| n.to_string()))
            .collect(),
        None => badges.iter().map(|b| b.name.clone()).collect(),
    };
    names.dedup();
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let badge = match name.as_str() {
            "broadcaster" => "broadcaster",
            "moderator" => "moderator",
            "vip" => "vip",
            "subscriber" => "subscriber",
            "founder" => "founder",
            "staff" | "admin" | "global_mod" => "staff",
            "bot-badge" | "twitchbot" => "bot",
            _ => continue,
        };
        if !out.iter().any(|b| b == badge) {
            out.push(badge.to_string());
        }
    }
    out
}

/// Recent message ids per channel and author, so that a ban or timeout
/// (CLEARCHAT) can delete what that user said. Bounded per channel.
#[derive(Default)]
struct Recent {
    channels: HashMap<String, VecDeque<(String, String)>>,
}

const RECENT_PER_CHANNEL: usize = 500;

impl Recent {
    fn remember(&mut self, channel: &str, login: &str, id: &str) {
        let q = self.channels.entry(channel.to_string()).or_default();
        if q.len() == RECENT_PER_CHANNEL {
            q.pop_front();
        }
        q.push_back((login.to_lowercase(), id.to_string()));
    }

    fn take_user(&mut self, channel: &str, login: &str) -> Vec<String> {
        let login = login.to_lowercase();
        let Some(q) = self.channels.get_mut(channel) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        q.retain(|(l, id)| {
            if *l == login {
                ids.push(id.clone());
                false
            } else {
                true
            }
        });
        ids
    }
}
