//! What Twitch moderators do, as `moderation` events for the audit trail
//! (docs/events.md §3.5): a CLEARMSG is a `delete` of one message, a CLEARCHAT
//! a `ban` or a `timeout` of a user (with `ban-duration`), or the whole chat
//! cleared. IRC does not say which moderator acted, so `actor` is null. Ids
//! come from Twitch's own data, so every instance stores each once.

use twitch_irc::message::{ClearChatAction, ClearChatMessage, ClearMsgMessage};

use crate::event::{self, Author, ChatEvent, ModAction, ModOrigin, Moderation};

fn user(login: &str, id: Option<&str>) -> Author {
    Author {
        id: id.unwrap_or(login).to_string(),
        name: login.to_string(),
        ..Default::default()
    }
}

fn platform(action: ModAction, user: Option<Author>) -> Moderation {
    Moderation {
        action,
        actor: None,
        user,
        target: None,
        duration_s: None,
        reason: None,
        origin: ModOrigin::Platform,
        results: Vec::new(),
    }
}

/// A moderator deleted one message (CLEARMSG).
pub fn clearmsg(bridge: &str, m: &ClearMsgMessage) -> ChatEvent {
    let channel = format!("#{}", m.channel_login);
    let mut moderation = platform(ModAction::Delete, Some(user(&m.sender_login, None)));
    moderation.target = Some(event::message_id(bridge, &channel, &m.message_id));
    let mut ev = ChatEvent::moderation(
        bridge,
        &channel,
        &format!("delete:{}", m.message_id),
        moderation,
    );
    ev.ts = m.server_timestamp;
    ev
}

/// A moderator banned or timed out a user, or cleared the chat (CLEARCHAT).
pub fn clearchat(bridge: &str, m: &ClearChatMessage) -> ChatEvent {
    let channel = format!("#{}", m.channel_login);
    let at = m.server_timestamp.timestamp_millis();
    let (moderation, key) = match &m.action {
        ClearChatAction::UserBanned {
            user_login,
            user_id,
        } => (
            platform(ModAction::Ban, Some(user(user_login, Some(user_id)))),
            format!("ban:{user_id}:{at}"),
        ),
        ClearChatAction::UserTimedOut {
            user_login,
            user_id,
            timeout_length,
        } => {
            let mut m = platform(ModAction::Timeout, Some(user(user_login, Some(user_id))));
            m.duration_s = Some(timeout_length.as_secs());
            (m, format!("timeout:{user_id}:{at}"))
        }
        ClearChatAction::ChatCleared => (platform(ModAction::Clear, None), format!("clear:{at}")),
    };
    let mut ev = ChatEvent::moderation(bridge, &channel, &key, moderation);
    ev.ts = m.server_timestamp;
    ev
}
