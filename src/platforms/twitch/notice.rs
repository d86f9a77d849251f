//! Twitch USERNOTICE (subs, resubs, gifts, raids, announcements, watch
//! streaks, Shared Chat notices) as `notice` events (docs/events.md §3.4):
//! `notice.type` is the `msg-id` verbatim, `system_text` Twitch's own line
//! (`system-msg`, which twitch-irc has unescaped), `params` the non-empty `msg-param-*`
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
        // An empty value says nothing (and is what a repaired tag holds).
        .filter(|(_, v)| !v.is_empty())
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

#[cfg(test)]
mod tests {
    use twitch_irc::message::{IRCMessage, ServerMessage};

    use super::*;
    use crate::event::EventKind;

    const LINES: &str = include_str!("../../../tests/fixtures/twitch/usernotice.txt");

    fn lines() -> impl Iterator<Item = &'static str> {
        LINES
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    /// A line as the reader gets it: parsed, or repaired where twitch-irc
    /// refuses a tag.
    fn notice(line: &str) -> UserNoticeMessage {
        let irc = IRCMessage::parse(line).expect("an IRC line");
        let msg = match ServerMessage::try_from(irc.clone()) {
            Ok(ServerMessage::UserNotice(n)) => return n,
            _ => {
                super::super::lenient::repair(&irc)
                    .expect("repairable")
                    .expect("repaired")
                    .0
            }
        };
        match msg {
            ServerMessage::UserNotice(n) => n,
            other => panic!("not a USERNOTICE: {other:?}"),
        }
    }

    #[test]
    fn every_captured_usernotice_is_one_notice_with_its_type_line_params_and_words() {
        let mut n = 0;
        for line in lines() {
            let irc = IRCMessage::parse(line).unwrap();
            let tags = &irc.tags.0;
            let ev = usernotice_to_event("twitch", &notice(line));
            assert_eq!(ev.kind, EventKind::Notice, "{line}");
            let got = ev.notice.as_ref().unwrap();
            assert_eq!(got.kind, tags["msg-id"], "{line}");
            assert_eq!(got.system_text, tags["system-msg"].trim(), "{line}");
            assert!(!got.system_text.contains("\\s"), "unescaped: {line}");
            let params = tags
                .iter()
                .filter(|(k, v)| k.starts_with("msg-param-") && !v.is_empty())
                .count();
            let extra = usize::from(tags.contains_key("source-msg-id"));
            assert_eq!(got.params.len(), params + extra, "{line}");
            let words = irc.params.get(1).cloned().unwrap_or_default();
            assert_eq!(
                crate::render::markup_to_plain(&ev.text),
                words,
                "the user's own words: {line}"
            );
            assert_eq!(
                ev.id,
                crate::event::message_id("twitch", &ev.source.channel, &tags["id"])
            );
            assert!(!ev.author.as_ref().unwrap().name.is_empty(), "{line}");
            n += 1;
        }
        assert_eq!(n, 30);
    }

    #[test]
    fn relayed_notices_read_as_what_they_are() {
        let by_type = |t: &str| {
            lines()
                .map(|l| usernotice_to_event("twitch", &notice(l)))
                .find(|ev| ev.notice.as_ref().unwrap().kind == t)
                .unwrap()
        };
        let announcement = crate::bridge::notice_text(&by_type("announcement"));
        assert!(
            announcement.starts_with("📣 **Announcement:** hello pajs"),
            "{announcement}"
        );
        let resub = crate::bridge::notice_text(&by_type("resub"));
        assert!(
            resub.starts_with("⭐ _Gutrin subscribed at Tier 1."),
            "{resub}"
        );
        let raid = crate::bridge::notice_text(&by_type("raid"));
        assert!(raid.starts_with("🚀 _"), "{raid}");
        // A Shared Chat announcement is an announcement.
        let shared = lines()
            .map(|l| usernotice_to_event("twitch", &notice(l)))
            .find(|ev| {
                ev.notice.as_ref().unwrap().effective_type() == "announcement"
                    && ev.notice.as_ref().unwrap().kind == "sharedchatnotice"
            })
            .unwrap();
        assert!(crate::bridge::notice_text(&shared).starts_with("📣"));
    }
}
