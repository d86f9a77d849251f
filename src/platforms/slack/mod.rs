//! The Slack bridge, on slack-morphism (unmodified): Socket Mode in (no public
//! endpoint), the Web API out. Message events become message/edit/delete events
//! with mrkdwn converted to the common markup; posts carry the remote author's
//! name and avatar, thread under the parent's copy, and are edited and deleted
//! through the id map.

mod api;
mod config;
mod emoji;
mod files;
mod history;
mod inbound;
mod markup;
mod outbound;
mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::sync::{Mutex, RwLock};

use crate::bridge::{
    Account, Action, Bridge, BridgeContext, BridgeError, BuildError, DeliverFailure, Delivery,
    Media, MediaError, ModerateError, OutboundSpec, Platform, Posted, UserAction,
};
use crate::cache::Bounded;
use crate::config::{CommonBridgeConfig, InvalidChannel, InvalidSetting, NoOptions};
use crate::event::ChatEvent;
use crate::ratelimit::Rate;
use crate::render;

pub use config::SlackConfig;
pub use markup::{escape_slack, to_mrkdwn};

/// The Slack platform.
pub struct Slack;

impl Platform for Slack {
    const NAME: &'static str = "slack";
    const HAS_HISTORY: bool = true;
    type Settings = SlackConfig;
    type ChannelOptions = NoOptions;

    fn check(settings: &SlackConfig) -> Result<(), InvalidSetting> {
        settings.check()
    }

    fn normalize_channel(channel: &str) -> Result<String, InvalidChannel> {
        config::normalize_channel(channel)
    }

    fn build(account: Account<'_, Self>) -> Result<Arc<dyn Bridge>, BuildError> {
        let cfg = account.settings.clone();
        let client = api::client(&cfg.api_url)?;
        let bot_token = SlackApiToken::new(cfg.bot_token.expose().into());
        let user_token = (!cfg.user_token.is_empty())
            .then(|| SlackApiToken::new(cfg.user_token.expose().into()));
        // Files are fetched with the bot token: a redirect means it was refused
        // (Slack's sign-in page), never a place to follow it to.
        let download = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BuildError::HttpClient(Box::new(e)))?;
        Ok(Arc::new(SlackBridge(Arc::new(Shared {
            name: account.name.to_string(),
            common: account.common.clone(),
            cfg,
            client,
            bot_token,
            user_token,
            me: RwLock::new(None),
            customize: AtomicBool::new(true),
            users: Mutex::new(Bounded::new(api::USER_CACHE)),
            channels: Mutex::new(Bounded::new(api::CHANNEL_CACHE)),
            download,
        }))))
    }
}

/// The state the bridge and the Socket Mode callbacks share.
struct Shared {
    name: String,
    common: CommonBridgeConfig,
    cfg: SlackConfig,
    client: Arc<SlackHyperClient>,
    bot_token: SlackApiToken,
    /// An admin's token, for deleting what is not the bot's.
    user_token: Option<SlackApiToken>,
    /// Our bot user and bot id, from `auth.test`.
    me: RwLock<Option<(String, Option<String>)>>,
    /// Whether Slack lets us post with a custom name and icon.
    customize: AtomicBool,
    /// Users by id: display name and avatar.
    users: Mutex<Bounded<String, api::Person>>,
    /// Channel names by id.
    channels: Mutex<Bounded<String, String>>,
    /// Downloads files (see `files`).
    download: reqwest::Client,
}

pub struct SlackBridge(Arc<Shared>);

#[async_trait]
impl Bridge for SlackBridge {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn common(&self) -> &CommonBridgeConfig {
        &self.0.common
    }

    fn spec(&self) -> OutboundSpec {
        OutboundSpec {
            max_chars: 4000,
            // Slack: about one message per second per channel.
            rate: self.0.common.rate_limit.then_some(Rate {
                messages: 1,
                per: Duration::from_secs(1),
            }),
            can_edit: true,
            can_react: true,
            joiner: "\n",
            default_format: "*{name}* ({bridge}): {text}",
        }
    }

    fn render_name(&self, name: &str) -> String {
        escape_slack(&render::single_line(name))
    }

    fn render_text(&self, markup: &str) -> String {
        to_mrkdwn(markup)
    }

    fn render(&self, ev: &ChatEvent, channel: &str) -> Vec<String> {
        // With a custom name the post shows the author: the text alone.
        if self.0.customize.load(Ordering::Relaxed) {
            return crate::bridge::render_text_only(self, ev);
        }
        crate::bridge::default_render(self, ev, channel)
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let b = &self.0;
        for (key, token) in [
            ("bot_token", &b.cfg.bot_token),
            ("app_token", &b.cfg.app_token),
        ] {
            if token.is_empty() {
                return Err(BridgeError::auth(
                    format!("{}.{key} is empty", b.name),
                    format!(
                        "JETBRIDGE_{}__{}",
                        b.name.to_uppercase(),
                        key.to_uppercase()
                    ),
                ));
            }
        }
        let session = b.client.open_session(&b.bot_token);
        let me = match session.auth_test().await {
            Ok(r) => r,
            Err(SlackClientError::ApiError(a)) if api::is_token_error(&a.code) => {
                return Err(BridgeError::auth(
                    format!("Slack refused the bot token: {}", a.code),
                    format!(
                        "{}.bot_token / JETBRIDGE_{}__BOT_TOKEN",
                        b.name,
                        b.name.to_uppercase()
                    ),
                ));
            }
            Err(e) => {
                return Err(BridgeError::connection(
                    format!("cannot reach the Slack API at {}", b.cfg.api_url),
                    e,
                ));
            }
        };
        *b.me.write().await = Some((me.user_id.to_string(), me.bot_id.map(|x| x.to_string())));

        // Catch up before the socket opens. Slack hands each event to one of
        // the app's open sockets; one held here while a long catch-up runs
        // (the recheck reads the last hour) would be stored late, behind what
        // another instance stored meanwhile, or, if this one stopped first,
        // only when Slack sends it again. Until this socket opens, Slack
        // gives everything to the others; once it is open, what was said in
        // between is read (see `Connected`).
        tokio::select! {
            _ = b.catch_up(&ctx) => {}
            _ = ctx.give_up.cancelled() => return Ok(()),
        }
        let mut caught_up_at_start = true;

        // The socket reads; this loop handles what it read, one event after
        // the other, and hands each envelope back to be acknowledged once
        // its event is queued.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (ack_tx, ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = ctx.shutdown.child_token();
        let socket = socket::run(
            b,
            &ctx.inbound,
            tx,
            ack_rx,
            stop.clone(),
            ctx.give_up.clone(),
        );
        tokio::pin!(socket);
        let _stop = stop.drop_guard();
        loop {
            tokio::select! {
                ended = &mut socket => return ended,
                _ = ctx.give_up.cancelled() => return Ok(()),
                ev = rx.recv() => match ev {
                    Some(socket::SocketEvent::Connected) => {
                        ctx.status.connected();
                        // Whatever was said while no connection was open is not
                        // coming: read it before the events queued behind.
                        let catch_up = async {
                            match std::mem::take(&mut caught_up_at_start) {
                                true => b.catch_up_since_last(&ctx).await,
                                false => b.catch_up(&ctx).await,
                            }
                        };
                        tokio::select! {
                            _ = catch_up => {}
                            _ = ctx.give_up.cancelled() => return Ok(()),
                        }
                    }
                    Some(socket::SocketEvent::Lost(why)) => ctx.status.connecting(why),
                    Some(socket::SocketEvent::Push(cb, files, envelope)) => {
                        // A stop that cannot wait any longer leaves it
                        // unacknowledged: Slack sends it again.
                        let handled = async {
                            match cb.event {
                                SlackEventCallbackBody::Message(msg) => {
                                    b.on_message(msg, &files, &ctx.inbound).await
                                }
                                SlackEventCallbackBody::ReactionAdded(r) => {
                                    b.on_reaction(&r, true, &ctx.inbound).await
                                }
                                SlackEventCallbackBody::ReactionRemoved(r) => {
                                    // The same fields: read as one.
                                    let r = SlackReactionAddedEvent {
                                        user: r.user,
                                        reaction: r.reaction,
                                        item_user: r.item_user,
                                        item: r.item,
                                        event_ts: r.event_ts,
                                    };
                                    b.on_reaction(&r, false, &ctx.inbound).await
                                }
                                _ => {}
                            }
                        };
                        tokio::select! {
                            _ = handled => {}
                            _ = ctx.give_up.cancelled() => return Ok(()),
                        }
                        if let Some(envelope) = envelope {
                            let _ = ack_tx.send(envelope);
                        }
                    }
                    Some(socket::SocketEvent::Flush(done)) => {
                        let _ = done.send(());
                    }
                    None => return Ok(()),
                },
            }
        }
    }

    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverFailure> {
        match &d.action {
            // Rendered for a custom name, but Slack refused that since: the
            // template has to carry the name now.
            // In the thread of its first message's copy, or of the message
            // it answers (Slack threads are its replies).
            Action::Post {
                reply_to,
                thread,
                first,
                ..
            } if !d.combined && !self.0.customize.load(Ordering::Relaxed) => {
                let parts = crate::bridge::default_render(self, d.event, d.channel);
                let rest = parts.get(*first..).unwrap_or_default();
                self.0.post(&d, rest, thread.or(*reply_to)).await
            }
            Action::Post {
                parts,
                reply_to,
                thread,
                ..
            } => self.0.post(&d, parts, thread.or(*reply_to)).await,
            Action::Edit { target, parts } => Ok(self.0.edit(d.channel, target, parts).await?),
            Action::Delete { target } => Ok(self.0.delete(d.channel, target).await?),
            Action::React { target, emoji, add } => {
                Ok(self.0.react(d.channel, target, emoji, *add).await?)
            }
        }
    }

    async fn moderate(&self, _channel: &str, _action: &UserAction) -> Result<(), ModerateError> {
        Err(ModerateError::Unsupported(
            "Slack has no timeouts or bans a bot can give (a workspace admin deactivates users in Slack's admin pages)".into(),
        ))
    }

    async fn media(&self, reference: &str) -> Result<Media, MediaError> {
        self.0.open_media(reference).await
    }
}
