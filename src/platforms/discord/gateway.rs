//! The gateway side, on serenity, on a thread of its own.
//!
//! serenity hands each gateway event to a task of its own, and on a
//! multi-threaded runtime those tasks start in no set order: an edit could
//! overtake its message, a delete its edit. So the client runs on a
//! current-thread runtime, whose tasks start in the order they were spawned,
//! and its handler does nothing but put each event, at once, on one ordered
//! channel that the bridge reads. Whether the session is live is read from
//! serenity's shard manager (a dropped or restarting shard is not).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use serenity::all::{
    ChannelId, ConnectionStage, Context, Event, GatewayIntents, Message, MessageId,
    MessageUpdateEvent, RawEventHandler, ShardManager,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Me;
use crate::bridge::BridgeError;

/// What the gateway said, in the order it said it.
pub enum GatewayEvent {
    /// A new session (after IDENTIFY): what happened meanwhile was not sent.
    Ready(Me),
    /// The old session goes on (RESUME): nothing was missed.
    Resumed,
    Message(Box<Message>),
    Update(Box<MessageUpdateEvent>),
    Delete {
        channel: ChannelId,
        id: MessageId,
    },
    DeleteBulk {
        channel: ChannelId,
        ids: Vec<MessageId>,
    },
    /// Someone's emoji added to (or taken from) a message.
    Reaction(super::reactions::Reacted),
    /// An entry of a guild's audit log (what a moderator did).
    Audit {
        guild: u64,
        entry: Value,
    },
    /// A dispatch serenity could not read into its types, as it came.
    Unread {
        kind: String,
        value: Value,
    },
}

struct Forward(mpsc::UnboundedSender<GatewayEvent>);

#[async_trait]
impl RawEventHandler for Forward {
    async fn raw_event(&self, _ctx: Context, ev: Event) {
        // No await before the send: the order of the tasks is the order here.
        let out = match ev {
            Event::Ready(r) => GatewayEvent::Ready(Me {
                user_id: r.ready.user.id.get(),
                application_id: r.ready.application.id.get(),
            }),
            Event::Resumed(_) => GatewayEvent::Resumed,
            Event::MessageCreate(m) => GatewayEvent::Message(Box::new(m.message)),
            Event::MessageUpdate(u) => GatewayEvent::Update(Box::new(u)),
            Event::MessageDelete(d) => GatewayEvent::Delete {
                channel: d.channel_id,
                id: d.message_id,
            },
            Event::MessageDeleteBulk(d) => GatewayEvent::DeleteBulk {
                channel: d.channel_id,
                ids: d.ids,
            },
            Event::ReactionAdd(r) => reaction(r.reaction, true, true),
            Event::ReactionRemove(r) => reaction(r.reaction, false, true),
            Event::ReactionRemoveEmoji(r) => reaction(r.reaction, false, false),
            // A moderator removed every reaction of the message.
            Event::ReactionRemoveAll(r) => GatewayEvent::Reaction(super::reactions::Reacted {
                channel: r.channel_id.to_string(),
                message: r.message_id.to_string(),
                user: None,
                emoji: "*".into(),
                add: false,
                author: None,
            }),
            Event::GuildAuditLogEntryCreate(e) => GatewayEvent::Audit {
                guild: e.guild_id.get(),
                entry: serde_json::to_value(&e.entry).unwrap_or_default(),
            },
            Event::Unknown(u) => GatewayEvent::Unread {
                kind: u.kind,
                value: u.value,
            },
            _ => return,
        };
        let _ = self.0.send(out);
    }
}

/// A reaction event: the emoji as the event carries it (Unicode, or
/// `:name:` for the guild's own), and who, where `by_someone`.
fn reaction(r: serenity::all::Reaction, add: bool, by_someone: bool) -> GatewayEvent {
    use serenity::all::ReactionType;
    let emoji = match &r.emoji {
        ReactionType::Unicode(s) => s.clone(),
        ReactionType::Custom { name, id, .. } => {
            format!(":{}:", name.clone().unwrap_or_else(|| id.to_string()))
        }
        _ => ":unknown:".into(),
    };
    let user = r.user_id.filter(|_| by_someone).map(|id| {
        let name = r
            .member
            .as_ref()
            .map(|m| m.display_name().to_string())
            .unwrap_or_else(|| id.to_string());
        (id.get(), name)
    });
    GatewayEvent::Reaction(super::reactions::Reacted {
        channel: r.channel_id.to_string(),
        message: r.message_id.to_string(),
        user,
        emoji,
        add,
        author: r.message_author_id.map(|a| a.get()),
    })
}

/// A running gateway client.
pub struct Gateway {
    pub events: mpsc::UnboundedReceiver<GatewayEvent>,
    /// What `Client::start` returned, once it returns.
    pub ended: oneshot::Receiver<Result<(), serenity::Error>>,
    shards: Arc<ShardManager>,
    stop: CancellationToken,
}

impl Gateway {
    /// Start the client with `token` against `api_url` on a thread of its own.
    pub async fn start(name: &str, api_url: &str, token: &str) -> Result<Gateway, BridgeError> {
        let (tx, events) = mpsc::unbounded_channel();
        let (ended_tx, ended) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let stop = CancellationToken::new();
        let thread_stop = stop.clone();
        let http = serenity::http::HttpBuilder::new(token)
            .proxy(api_url.trim_end_matches('/'))
            .ratelimiter_disabled(true)
            .build();
        std::thread::Builder::new()
            .name(format!("discord-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(BridgeError::connection(
                            "cannot start the discord runtime",
                            e,
                        )));
                        return;
                    }
                };
                runtime.block_on(async move {
                    // GUILD_MODERATION: the audit log, for the moderation trail.
                    let intents = GatewayIntents::GUILD_MESSAGES
                        | GatewayIntents::MESSAGE_CONTENT
                        | GatewayIntents::GUILD_MODERATION
                        | GatewayIntents::GUILD_MESSAGE_REACTIONS;
                    let client = serenity::all::ClientBuilder::new_with_http(http, intents)
                        .raw_event_handler(Forward(tx))
                        .await;
                    let mut client = match client {
                        Ok(c) => c,
                        Err(e) => {
                            let _ =
                                ready_tx.send(Err(BridgeError::connection("discord client", e)));
                            return;
                        }
                    };
                    let shards = client.shard_manager.clone();
                    if ready_tx.send(Ok(shards.clone())).is_err() {
                        return;
                    }
                    let result = tokio::select! {
                        r = client.start() => r,
                        _ = thread_stop.cancelled() => {
                            shards.shutdown_all().await;
                            Ok(())
                        }
                    };
                    let _ = ended_tx.send(result);
                });
            })
            .map_err(|e| BridgeError::connection("cannot start the discord thread", e))?;
        let shards = ready_rx
            .await
            .map_err(|_| BridgeError::Ended("the discord thread ended at start"))??;
        Ok(Gateway {
            events,
            ended,
            shards,
            stop,
        })
    }

    /// Whether the session is live: every shard runs and is connected.
    pub async fn connected(&self) -> Result<(), NotConnected> {
        let runners = self.shards.runners.lock().await;
        if runners.is_empty() {
            return Err(NotConnected::Reconnecting);
        }
        match runners
            .values()
            .find(|r| r.stage != ConnectionStage::Connected)
        {
            Some(r) => Err(NotConnected::Stage(r.stage)),
            None => Ok(()),
        }
    }

    /// How often [`connected`](Self::connected) is worth asking.
    pub const CHECK_EVERY: Duration = Duration::from_secs(1);
}

/// Why the gateway session is not live now.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum NotConnected {
    /// No shard runs: serenity is opening a new session.
    #[error("gateway reconnecting")]
    Reconnecting,
    /// A shard is in this stage of its connection.
    #[error("gateway {0}")]
    Stage(ConnectionStage),
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // The thread shuts its shards down and ends.
        self.stop.cancel();
    }
}

/// What a serenity error means for the bridge.
pub fn classify(name: &str, e: serenity::Error) -> BridgeError {
    use serenity::gateway::GatewayError;
    let refused = || {
        BridgeError::auth(
            "Discord refused the bot token",
            format!("{name}.token / JETBRIDGE_{}__TOKEN", name.to_uppercase()),
        )
    };
    match &e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => refused(),
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => BridgeError::auth(
            "Discord refused the MESSAGE_CONTENT intent",
            "the bot's intents in the developer portal: enable MESSAGE_CONTENT",
        ),
        serenity::Error::Http(h) if h.status_code().is_some_and(|s| s.as_u16() == 401) => refused(),
        _ => BridgeError::connection("discord", e),
    }
}
