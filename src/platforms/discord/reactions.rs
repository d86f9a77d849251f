//! Discord reactions as `reaction` events: someone's emoji added or taken
//! back, a moderator clearing one emoji (no one named) or every emoji (`*`).
//! The bot's own reactions are the mirrors of others' and are not kept; a
//! reaction to one of our posts is stored as one to the original.

use serde_json::Value;

use super::DiscordBridge;
use crate::bridge::BridgeContext;
use crate::event::{Author, ChatEvent, Reaction, ReactionOp};

/// A reaction as the gateway said it.
pub struct Reacted {
    pub channel: String,
    pub message: String,
    /// Who reacted (id, name); `None`: everyone's (a moderator's clearing).
    pub user: Option<(u64, String)>,
    /// Unicode, or `:name:` for the guild's own emoji.
    pub emoji: String,
    pub add: bool,
    /// Who wrote the message, where Discord says.
    pub author: Option<u64>,
}

/// The emoji as the event carries it, from Discord's emoji object.
pub fn emoji(e: &Value) -> Option<String> {
    match (e["id"].as_str(), e["name"].as_str()) {
        (None, Some(unicode)) => Some(unicode.to_string()),
        (Some(id), name) => Some(format!(":{}:", name.unwrap_or(id))),
        (None, None) => None,
    }
}

/// `MESSAGE_REACTION_REMOVE_EMOJI` as Discord sends it (serenity cannot read
/// it): a moderator removed everyone's reactions with one emoji.
pub fn cleared_emoji(v: &Value) -> Option<Reacted> {
    Some(Reacted {
        channel: v["channel_id"].as_str()?.to_string(),
        message: v["message_id"].as_str()?.to_string(),
        user: None,
        emoji: emoji(&v["emoji"])?,
        add: false,
        author: None,
    })
}

impl DiscordBridge {
    pub(super) async fn on_reaction(&self, r: Reacted, ctx: &BridgeContext) {
        let shared = &self.0;
        let me = shared.me.read().await.as_ref().map(|m| m.user_id);
        if r.user.as_ref().is_some_and(|(id, _)| Some(*id) == me) {
            return;
        }
        let author = r.user.map(|(id, name)| Author {
            id: id.to_string(),
            name,
            ..Default::default()
        });
        let op = if r.add {
            ReactionOp::Add
        } else {
            ReactionOp::Remove
        };
        let reaction = Reaction { emoji: r.emoji, op };
        let mut ev =
            ChatEvent::reaction(&shared.name, &r.channel, &r.message, author, reaction, None);
        // A post of ours (the bot's, or one of our webhooks') is a copy.
        let ours = match r.author {
            Some(a) => Some(a) == me || shared.is_own_webhook(&a.to_string()).await,
            None => false,
        };
        if let Some(t) = &ev.target {
            ev.target = Some(if ours {
                ctx.inbound.original_of_ours(t).await
            } else {
                ctx.inbound.original(t).await
            });
        }
        ctx.inbound.publish(ev).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cleared_emoji_as_discord_sends_it() {
        let v = json!({"channel_id": "1", "message_id": "2", "guild_id": "3",
                       "emoji": {"id": null, "name": "🔥"}});
        let r = cleared_emoji(&v).unwrap();
        assert_eq!(
            (r.emoji.as_str(), r.add, r.user.is_none()),
            ("🔥", false, true)
        );
        assert_eq!(
            emoji(&json!({"id": "9", "name": "blobcat"})).as_deref(),
            Some(":blobcat:")
        );
        assert!(cleared_emoji(&json!({"channel_id": "1"})).is_none());
    }
}
