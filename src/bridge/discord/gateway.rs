//! The gateway side, on serenity: its event handler turns dispatches into chat
//! events (messages, edits, deletes) and reports the session's state, and
//! serenity's errors are told apart (a refused token, a refused intent, the
//! rest).

use std::sync::Arc;

use async_trait::async_trait;
use serenity::all::{
    ChannelId, Context, EventHandler, GuildId, Message, MessageId, MessageUpdateEvent, Ready,
};

use super::{Me, Shared};
use crate::bridge::{BridgeError, Inbound, StatusReporter};
use crate::event::{Author, ChatEvent};

/// serenity's event handler for one bridge.
pub struct Handler {
    pub shared: Arc<Shared>,
    pub inbound: Inbound,
    pub status: StatusReporter,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        *self.shared.me.write().await = Some(Me {
            user_id: ready.user.id.get(),
            application_id: ready.application.id.get(),
        });
        tracing::info!(user = %ready.user.name, "discord ready");
        self.status.connected();
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        if let Some(ev) = self.shared.message_event(&msg).await {
            self.inbound.publish(ev).await;
        }
    }

    async fn message_update(
        &self,
        _ctx: Context,
        _old: Option<Message>,
        _new: Option<Message>,
        ev: MessageUpdateEvent,
    ) {
        // An update without new content (embeds resolved, pins) is not an edit.
        let (Some(content), Some(edited)) = (ev.content.clone(), ev.edited_timestamp) else {
            return;
        };
        if let Some(author) = &ev.author
            && let Some(me) = *self.shared.me.read().await
            && author.id.get() == me.user_id
        {
            return;
        }
        if let Some(Some(w)) = ev.webhook_id
            && self.shared.is_own_webhook(&w.to_string()).await
        {
            return;
        }
        // Resolve mentions as for a new message.
        let mentions = ev.mentions.clone().unwrap_or_default();
        let (text, _) = self
            .shared
            .to_common(&content, &mentions, ev.guild_id)
            .await;
        let author = ev.author.as_ref().map(|a| Author {
            id: a.id.to_string(),
            name: a.global_name.clone().unwrap_or_else(|| a.name.clone()),
            avatar_url: Some(a.face()),
            color: None,
            bot: a.bot,
        });
        let edit = ChatEvent::edit(
            &self.shared.name,
            &ev.channel_id.to_string(),
            &ev.id.to_string(),
            &edited.to_string(),
            author,
            text,
        );
        self.inbound.publish(edit).await;
    }

    async fn message_delete(
        &self,
        _ctx: Context,
        channel: ChannelId,
        id: MessageId,
        _guild: Option<GuildId>,
    ) {
        let ev = ChatEvent::delete(
            &self.shared.name,
            &channel.to_string(),
            &id.to_string(),
            None,
        );
        self.inbound.publish(ev).await;
    }

    async fn message_delete_bulk(
        &self,
        _ctx: Context,
        channel: ChannelId,
        ids: Vec<MessageId>,
        _guild: Option<GuildId>,
    ) {
        for id in ids {
            let ev = ChatEvent::delete(
                &self.shared.name,
                &channel.to_string(),
                &id.to_string(),
                None,
            );
            self.inbound.publish(ev).await;
        }
    }
}

/// What a serenity error means for the bridge.
pub fn classify(name: &str, e: serenity::Error) -> BridgeError {
    use serenity::gateway::GatewayError;
    let refused = || {
        BridgeError::Auth(format!(
            "Discord refused the bot token (check {name}.token / JETBRIDGE_{}__TOKEN)",
            name.to_uppercase()
        ))
    };
    match &e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => refused(),
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => BridgeError::Auth(
            "Discord refused the MESSAGE_CONTENT intent: enable it for the bot in the developer portal".into(),
        ),
        serenity::Error::Http(h) if h.status_code().is_some_and(|s| s.as_u16() == 401) => {
            refused()
        }
        _ => BridgeError::Connection(format!("discord: {e}")),
    }
}
