//! Lines twitch-irc will not read as what they are. It refuses a whole
//! PRIVMSG for one malformed tag (`emotes=25:04`, `badges=subscriber24`) or a
//! missing one (no `display-name`) and hands it on as a generic message. The
//! line still says who said what: here each tag it chokes on is dropped or
//! filled from what the line does carry (the login in its prefix), until it
//! reads; what is left out is only what could not be read.

use std::time::{SystemTime, UNIX_EPOCH};

use twitch_irc::message::{IRCMessage, ServerMessage, ServerMessageParseError};

/// The commands worth repairing: chat and moderation.
const REPAIRED: [&str; 4] = ["PRIVMSG", "CLEARMSG", "CLEARCHAT", "USERNOTICE"];

/// At most this many tags are repaired in one line.
const MAX_REPAIRS: usize = 12;

/// `line` as what it is, and the tags that had to be dropped or filled in;
/// `None` when it is not a repairable command. An error when even that does
/// not make it readable.
pub fn repair(
    line: &IRCMessage,
) -> Option<Result<(ServerMessage, Vec<&'static str>), ServerMessageParseError>> {
    if !REPAIRED.contains(&line.command.as_str()) {
        return None;
    }
    let mut msg = line.clone();
    let mut repaired: Vec<&'static str> = Vec::new();
    loop {
        let err = match ServerMessage::try_from(msg.clone()) {
            Ok(ServerMessage::Generic(_)) => return None,
            Ok(mut parsed) => {
                // A notice's stood-in details are not what Twitch said.
                if let ServerMessage::UserNotice(n) = &mut parsed {
                    for key in repaired.iter().filter(|k| k.starts_with("msg-param-")) {
                        n.source.tags.0.remove(*key);
                    }
                }
                return Some(Ok((parsed, repaired)));
            }
            Err(e) => e,
        };
        let key = match &err {
            ServerMessageParseError::MalformedTagValue(_, key, _)
            | ServerMessageParseError::MissingTag(_, key)
            | ServerMessageParseError::MissingTagValue(_, key) => *key,
            _ => return Some(Err(err)),
        };
        if repaired.len() >= MAX_REPAIRS || repaired.iter().filter(|k| **k == key).count() >= 2 {
            return Some(Err(err));
        }
        let Some(value) = stand_in(&msg, key) else {
            return Some(Err(err));
        };
        msg.tags.0.insert(key.to_string(), value);
        repaired.push(key);
    }
}

/// What a tag that does not read is replaced with: empty where empty means
/// "none" (emotes, badges, colour), the login where a name is wanted, the
/// server's time where a time is; `None` where nothing can stand in (which
/// message a CLEARMSG deletes).
fn stand_in(msg: &IRCMessage, key: &str) -> Option<String> {
    // A chat line names its sender in its prefix; a notice (from
    // tmi.twitch.tv) in its `login` tag.
    let login = || {
        let from_prefix = msg.prefix.as_ref().and_then(|p| match p {
            twitch_irc::message::IRCPrefix::Full { nick, .. } => Some(nick.clone()),
            twitch_irc::message::IRCPrefix::HostOnly { .. } => None,
        });
        from_prefix.or_else(|| msg.tags.0.get("login").filter(|l| !l.is_empty()).cloned())
    };
    match key {
        "emotes" | "badges" | "badge-info" | "color" | "emote-sets" | "source-badges"
        | "source-badge-info" => Some(String::new()),
        "display-name" | "login" => login(),
        // The author's id stands as their login: the same person each time.
        "user-id" => login(),
        "room-id" => msg
            .params
            .first()
            .map(|c| c.trim_start_matches('#').to_string()),
        "tmi-sent-ts" => Some(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default()
                .to_string(),
        ),
        // A message without an id: one derived from what it is, so that two
        // instances reading it store it once.
        "id" => Some(derived_id(msg)),
        // A notice's detail: absent reads as empty, malformed (a count that
        // is not a number) as zero.
        k if k.starts_with("msg-param-") => Some(if msg.tags.0.contains_key(k) {
            "0".to_string()
        } else {
            String::new()
        }),
        _ => None,
    }
}

/// A stable id for a line without one: FNV-1a over its channel, time,
/// sender and text.
fn derived_id(msg: &IRCMessage) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let ts = msg.tags.0.get("tmi-sent-ts").map(String::as_str);
    let parts = [
        msg.params.join(" "),
        ts.unwrap_or_default().to_string(),
        format!("{:?}", msg.prefix),
    ];
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("jb-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> IRCMessage {
        IRCMessage::parse(line).expect("an IRC line")
    }

    const TAGS: &str = "badge-info=;badges=;color=#FF0000;display-name=Ann;emotes=;id=abc;room-id=1;tmi-sent-ts=1700000000000;user-id=42";

    #[test]
    fn a_malformed_emotes_tag_leaves_the_text_and_author() {
        let line = parse(&format!(
            "@{};emotes=25:04 :ann!ann@ann.tmi.twitch.tv PRIVMSG #chan :Kappa hi",
            TAGS.replace("emotes=;", "")
        ));
        let Some(Ok((ServerMessage::Privmsg(m), fixed))) = repair(&line) else {
            panic!("not repaired");
        };
        assert_eq!(
            (m.message_text.as_str(), m.sender.name.as_str()),
            ("Kappa hi", "Ann")
        );
        assert!(m.emotes.is_empty());
        assert_eq!(fixed, vec!["emotes"]);
    }

    #[test]
    fn a_badge_without_a_version_and_a_missing_display_name_are_stood_in() {
        let tags = TAGS
            .replace("badges=;", "badges=subscriber24;")
            .replace("display-name=Ann;", "");
        let line = parse(&format!(
            "@{tags} :ann!ann@ann.tmi.twitch.tv PRIVMSG #chan :hello"
        ));
        let Some(Ok((ServerMessage::Privmsg(m), fixed))) = repair(&line) else {
            panic!("not repaired");
        };
        assert_eq!(m.sender.name, "ann");
        assert_eq!(m.message_id, "abc");
        assert!(fixed.contains(&"badges") && fixed.contains(&"display-name"));
    }

    #[test]
    fn a_line_without_an_id_gets_the_same_derived_id_each_time() {
        let line = parse(&format!(
            "@{} :ann!ann@ann.tmi.twitch.tv PRIVMSG #chan :hello",
            TAGS.replace("id=abc;", "")
        ));
        let id = |l: &IRCMessage| match repair(l) {
            Some(Ok((ServerMessage::Privmsg(m), _))) => m.message_id,
            _ => panic!("not repaired"),
        };
        assert_eq!(id(&line), id(&line.clone()));
        assert!(id(&line).starts_with("jb-"));
    }

    #[test]
    fn what_nothing_can_stand_in_for_stays_unreadable_and_other_commands_are_not_touched() {
        // A CLEARMSG without the message it deletes.
        let line = parse("@login=ann;room-id=1;tmi-sent-ts=1 :tmi.twitch.tv CLEARMSG #chan :x");
        assert!(matches!(repair(&line), Some(Err(_))));
        let ping = parse("PING :tmi.twitch.tv");
        assert!(repair(&ping).is_none());
    }
}
