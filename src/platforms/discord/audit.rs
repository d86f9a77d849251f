//! What Discord's moderators do, from the guild's audit log as the gateway
//! streams it (`GUILD_AUDIT_LOG_ENTRY_CREATE`, intent GUILD_MODERATION; the
//! bot needs View Audit Log): a message of someone else deleted (type 72,
//! the author but not the message is named), a ban (22) and its lifting
//! (23), a timeout given or lifted (24, `communication_disabled_until`).
//! Each is a `moderation` event with who acted, in each mapped channel of
//! that guild. What the bot itself did is the console's or a mirrored
//! delete's, recorded there.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event::{Author, ChatEvent, ModAction, ModOrigin, Moderation};

/// One audit log entry, as a moderation; `None` for what is not one.
/// Returns the moderation and the channel it names, if it names one.
pub fn moderation(entry: &Value, now: DateTime<Utc>) -> Option<(Moderation, Option<String>)> {
    let someone = |v: &Value| {
        v.as_str().map(|id| Author {
            id: id.to_string(),
            name: id.to_string(),
            ..Default::default()
        })
    };
    let mut duration_s = None;
    let action = match entry["action_type"].as_u64()? {
        72 => ModAction::Delete,
        22 => ModAction::Ban,
        23 => ModAction::Unban,
        24 => {
            let change = entry["changes"]
                .as_array()?
                .iter()
                .find(|c| c["key"] == "communication_disabled_until")?;
            match change["new_value"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            {
                Some(until) => {
                    duration_s =
                        Some((until.with_timezone(&Utc) - now).num_seconds().max(0) as u64);
                    ModAction::Timeout
                }
                None => ModAction::Unban,
            }
        }
        _ => return None,
    };
    let channel = entry["options"]["channel_id"].as_str().map(str::to_string);
    Some((
        Moderation {
            action,
            actor: someone(&entry["user_id"]),
            user: someone(&entry["target_id"]),
            target: None,
            duration_s,
            reason: entry["reason"].as_str().map(str::to_string),
            origin: ModOrigin::Platform,
            results: Vec::new(),
        },
        channel,
    ))
}

/// The event of `moderation` in `channel`, one per audit entry and channel.
pub fn event(bridge: &str, channel: &str, entry: &Value, moderation: Moderation) -> ChatEvent {
    let key = format!("audit:{}", entry["id"].as_str().unwrap_or_default());
    ChatEvent::moderation(bridge, channel, &key, moderation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_entries_read_as_what_moderators_did() {
        let now = Utc::now();
        let until = (now + chrono::Duration::seconds(600)).to_rfc3339();
        let timeout = json!({"id": "1", "action_type": 24, "user_id": "7", "target_id": "8",
            "changes": [{"key": "communication_disabled_until", "new_value": until}]});
        let (m, ch) = moderation(&timeout, now).unwrap();
        assert_eq!(
            (m.action, m.duration_s, ch),
            (ModAction::Timeout, Some(600), None)
        );
        assert_eq!(m.actor.unwrap().id, "7");
        let lifted = json!({"id": "2", "action_type": 24, "user_id": "7", "target_id": "8",
            "changes": [{"key": "communication_disabled_until", "old_value": until}]});
        assert_eq!(moderation(&lifted, now).unwrap().0.action, ModAction::Unban);
        let nick = json!({"id": "3", "action_type": 24, "user_id": "7", "target_id": "8",
            "changes": [{"key": "nick", "new_value": "x"}]});
        assert!(moderation(&nick, now).is_none());
        let delete = json!({"id": "4", "action_type": 72, "user_id": "7", "target_id": "8",
            "options": {"channel_id": "111", "count": "1"}});
        let (m, ch) = moderation(&delete, now).unwrap();
        assert_eq!((m.action, ch.as_deref()), (ModAction::Delete, Some("111")));
        assert_eq!(m.user.unwrap().id, "8");
        let ban = json!({"id": "5", "action_type": 22, "user_id": "7", "target_id": "8", "reason": "spam"});
        let (m, _) = moderation(&ban, now).unwrap();
        assert_eq!(
            (m.action, m.reason.as_deref()),
            (ModAction::Ban, Some("spam"))
        );
        assert!(moderation(&json!({"action_type": 1}), now).is_none());
    }
}
