//! Twitch USERNOTICE (subs, resubs, gifts, raids, announcements, watch
//! streaks, Shared Chat notices) as `notice` events (docs/events.md §3):
//! `notice.type` is the `msg-id` verbatim, `system_text` Twitch's own line
//! (`system-msg`, which twitch-irc has unescaped), `params` the `msg-param-*`
//! tags, and `text` the user's own words.

use twitch_irc::message::UserNoticeMessage;

use super::inbound::{author_of, twitch_emotes};
use crate::event::{ChatEvent, Notice};
use crate::render;

const PARAM_PREFIX: &str = "msg-param-";

/// A USERNOTICE as a `notice` event of bridge `bridge` (room unset).
pub fn usernotice_to_event(bridge: &str, n: &UserNoticeMessage) -> ChatEvent {
    let channel = format!("#{}", n.channel_login);
    let tags = &n.source.tags.0;
    let mut params: std::collections::BTreeMap<String, String> = tags
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PARAM_PREFIX)?.to_string(), v.clone())))
        .collect();
    // What a Shared Chat notice was in the channel it was sent in.
    if let Some(t) = tags.get("source-msg-id") {
        params.insert("source-msg-id".to_string(), t.clone());
    }
    let notice = Notice {
        kind: n.event_id.clone(),
        system_text: n.system_message.trim().to_string(),
        params,
    };
    let author = author_of(&n.sender, n.name_color, &n.source, &n.badges);
    // Twitch text is plain: markup characters are escaped, not interpreted.
    let text = n
        .message_text
        .as_deref()
        .map(render::escape_markup)
        .unwrap_or_default();
    let mut ev = ChatEvent::notice(bridge, &channel, &n.message_id, author, text, notice);
    ev.ts = n.server_timestamp;
    ev.emotes = twitch_emotes(&n.emotes);
    ev
}
