//! The Discord bridge: serenity's gateway for inbound (MESSAGE_CREATE, UPDATE,
//! DELETE, DELETE_BULK), our own REST client for outbound (webhooks with the
//! remote author's name and avatar, or bot messages), edits and deletes.

mod audit;
mod config;
mod content;
mod gateway;
mod history;
mod inbound;
mod markup;
mod media;
mod moderate;
mod outbound;
mod reactions;
mod rest;
mod threads;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, RwLock};

use crate::bridge::{
    Account, Action, Bridge, BridgeContext, BridgeError, BuildError, DeliverFailure, Delivery,
    Media, MediaError, ModerateError, OutboundSpec, Platform, Posted, UserAction,
};
use crate::cache::Bounded;
use crate::config::{CommonBridgeConfig, InvalidChannel, InvalidSetting};
use crate::event::ChatEvent;
use crate::ratelimit::Rate;
use crate::render;

pub use config::{DiscordChannel, DiscordConfig};
pub use markup::{to_discord, webhook_username};

use config::Webhook;
use rest::{Auth, Rest};

/// The Discord platform.
pub struct Discord;

impl Platform for Discord {
    const NAME: &'static str = "discord";
    const HAS_HISTORY: bool = true;
    type Settings = DiscordConfig;
    type ChannelOptions = DiscordChannel;

    fn check(settings: &DiscordConfig) -> Result<(), InvalidSetting> {
        settings.check()
    }

    fn normalize_channel(channel: &str) -> Result<String, InvalidChannel> {
        config::normalize_channel(channel)
    }

    fn build(account: Account<'_, Self>) -> Result<Arc<dyn Bridge>, BuildError> {
        let mut webhooks = HashMap::new();
        let mut own = HashSet::new();
        for ch in &account.channels {
            if let Some(w) = &ch.options.webhook_url {
                own.insert(w.id.clone());
                webhooks.insert(ch.channel.to_string(), w.clone());
            }
        }
        let cfg = account.settings.clone();
        let rest = Rest::new(account.name, &cfg.api_url, cfg.token.clone())
            .map_err(|e| BuildError::HttpClient(Box::new(e)))?;
        Ok(Arc::new(DiscordBridge(Arc::new(Shared {
            name: account.name.to_string(),
            common: account.common.clone(),
            cfg,
            rest,
            me: RwLock::new(None),
            webhooks: Mutex::new(webhooks),
            own_webhooks: RwLock::new(own),
            names: Mutex::new(Bounded::new(NAME_CACHE)),
            fresh: media::Fresh::default(),
        }))))
    }
}

/// What we learn at READY: who we are, to ignore our own echoes.
#[derive(Debug, Clone, Copy, Default)]
struct Me {
    user_id: u64,
    application_id: u64,
}

/// Channel and role names kept at most (mentions resolve them).
pub const NAME_CACHE: usize = 2000;

/// The state the bridge and serenity's event handler share.
struct Shared {
    name: String,
    common: CommonBridgeConfig,
    cfg: DiscordConfig,
    rest: Rest,
    me: RwLock<Option<Me>>,
    /// Webhooks by channel: configured ones, and ones we created or found.
    webhooks: Mutex<HashMap<String, Webhook>>,
    /// Webhook ids we post through (their echoes are ours).
    own_webhooks: RwLock<HashSet<String>>,
    /// Channel and role names by `channel:<id>` / `role:<id>`.
    names: Mutex<Bounded<String, String>>,
    /// Freshly signed attachment URLs.
    fresh: media::Fresh,
}

impl Shared {
    async fn is_own_webhook(&self, id: &str) -> bool {
        self.own_webhooks.read().await.contains(id)
    }
}

impl DiscordBridge {
    /// What a moderator did, from the guild's audit log: one `moderation`
    /// event in the channel it names, or in each mapped channel of the guild.
    async fn on_audit(&self, guild: u64, entry: &serde_json::Value, ctx: &BridgeContext) {
        let shared = &self.0;
        let me = shared
            .me
            .read()
            .await
            .as_ref()
            .map(|m| m.user_id.to_string());
        if me.is_some() && entry["user_id"].as_str() == me.as_deref() {
            // Our own: the console's or a mirrored delete's record says it.
            return;
        }
        let Some((moderation, named)) = audit::moderation(entry, chrono::Utc::now()) else {
            return;
        };
        let mut channels = Vec::new();
        for (channel, _) in &ctx.channels {
            let here = match &named {
                Some(c) => c == channel,
                None => matches!(shared.guild_of(channel).await, Ok(g) if g == guild.to_string()),
            };
            if here {
                channels.push(channel.clone());
            }
        }
        for channel in channels {
            let ev = audit::event(&shared.name, &channel, entry, moderation.clone());
            ctx.inbound.publish(ev).await;
        }
    }

    /// A dispatch serenity could not read. For a message, most often a
    /// component of a kind serenity does not know inside an action row: it is
    /// read again without its components (which are read from the JSON), so
    /// that it is not lost; whatever still cannot be read is counted and
    /// logged with its id.
    async fn on_unread(&self, kind: &str, value: serde_json::Value, ctx: &BridgeContext) {
        let id = value["id"].as_str().unwrap_or("?").to_string();
        if kind == "MESSAGE_REACTION_REMOVE_EMOJI" {
            // serenity wants fields Discord does not send with this one.
            if let Some(r) = reactions::cleared_emoji(&value) {
                self.on_reaction(r, ctx).await;
            }
            return;
        }
        if kind != "MESSAGE_CREATE" {
            tracing::debug!(kind, "a gateway event serenity could not read");
            return;
        }
        let mut lenient = value.clone();
        if let Some(m) = lenient.as_object_mut() {
            m.remove("components");
        }
        match serde_json::from_value::<serenity::all::Message>(lenient) {
            Ok(msg) => {
                ctx.inbound.unparsed(
                    &id,
                    &"serenity could not read its components; read from the JSON",
                );
                if let Some(ev) = self.0.message_event(&msg, Some(&value), &ctx.inbound).await {
                    ctx.inbound.publish(ev).await;
                }
            }
            Err(e) => ctx.inbound.unparsed(&id, &e),
        }
    }

    /// Turn one gateway event into chat events, in the gateway's order.
    async fn on_gateway(&self, ev: gateway::GatewayEvent, ctx: &BridgeContext) {
        use gateway::GatewayEvent as G;
        let shared = &self.0;
        match ev {
            G::Ready(me) => {
                *shared.me.write().await = Some(me);
                tracing::info!("discord ready");
                // A new session: what was said since the last one is not
                // coming. Read it before the events queued behind this one.
                shared.catch_up(ctx).await;
            }
            G::Resumed => tracing::info!("discord session resumed"),
            G::Message(msg) => {
                if let Some(ev) = shared.message_event(&msg, None, &ctx.inbound).await {
                    ctx.inbound.publish(ev).await;
                }
            }
            G::Update(update) => {
                if let Some(ev) = shared.edit_event(&update, &ctx.inbound).await {
                    ctx.inbound.publish(ev).await;
                }
            }
            G::Delete { channel, id } => {
                // A thread's messages belong to its parent channel.
                let (channel, _) = shared.place(&channel.to_string(), &ctx.inbound).await;
                let ev = ChatEvent::delete(&shared.name, &channel, &id.to_string(), None);
                ctx.inbound.publish(ev).await;
            }
            G::DeleteBulk { channel, ids } => {
                for id in ids {
                    let ev = ChatEvent::delete(
                        &shared.name,
                        &channel.to_string(),
                        &id.to_string(),
                        None,
                    );
                    ctx.inbound.publish(ev).await;
                }
            }
            G::Reaction(r) => self.on_reaction(r, ctx).await,
            G::Audit { guild, entry } => self.on_audit(guild, &entry, ctx).await,
            G::Unread { kind, value } => self.on_unread(&kind, value, ctx).await,
        }
    }
}

pub struct DiscordBridge(Arc<Shared>);

#[async_trait]
impl Bridge for DiscordBridge {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn common(&self) -> &CommonBridgeConfig {
        &self.0.common
    }

    fn spec(&self) -> OutboundSpec {
        OutboundSpec {
            max_chars: 2000,
            // Discord's per-channel bucket for posts: 5 per 5 s.
            rate: self.0.common.rate_limit.then_some(Rate {
                messages: 5,
                per: Duration::from_secs(5),
            }),
            can_edit: true,
            can_react: true,
            joiner: "\n",
            default_format: "**{name}** ({bridge}): {text}",
        }
    }

    fn render_name(&self, name: &str) -> String {
        to_discord(&render::escape_markup(&render::single_line(name)))
    }

    fn render_text(&self, markup: &str) -> String {
        to_discord(markup)
    }

    fn render(&self, ev: &ChatEvent, channel: &str) -> Vec<String> {
        // Through a webhook the name shows as the poster: the text alone (a
        // reply to its thread's first message is in the thread, not a reply).
        if self.0.cfg.webhooks && (ev.reply_to.is_none() || ev.reply_to == ev.thread) {
            return crate::bridge::render_text_only(self, ev);
        }
        crate::bridge::default_render(self, ev, channel)
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let shared = &self.0;
        let token = shared.cfg.token.expose().to_string();
        if token.is_empty() {
            return Err(BridgeError::auth(
                format!("{}.token is empty", shared.name),
                format!("JETBRIDGE_{}__TOKEN", shared.name.to_uppercase()),
            ));
        }
        // Ask who we are first: a refused token is then one clear error, not a
        // gateway retry loop.
        if let Err(e) = shared
            .rest
            .call(reqwest::Method::GET, "/users/@me", None, Auth::Bot)
            .await
        {
            return Err(if e.is_unauthorized() {
                BridgeError::auth("Discord refused the bot token", shared.rest.token_hint())
            } else {
                BridgeError::connection(
                    format!("cannot reach the Discord API at {}", shared.cfg.api_url),
                    e,
                )
            });
        }
        let mut gateway =
            gateway::Gateway::start(&shared.name, &shared.cfg.api_url, &token).await?;
        let mut check = tokio::time::interval(gateway::Gateway::CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut live = false;
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => {
                    // Read nothing new; what the gateway already gave us is
                    // queued before we go (Discord would not send it again).
                    while let Ok(ev) = gateway.events.try_recv() {
                        tokio::select! {
                            _ = self.on_gateway(ev, &ctx) => {}
                            _ = ctx.give_up.cancelled() => break,
                        }
                    }
                    return Ok(());
                }
                ended = &mut gateway.ended => {
                    return match ended {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(gateway::classify(&shared.name, e)),
                        Err(_) => Err(BridgeError::Ended("the discord thread ended")),
                    };
                }
                ev = gateway.events.recv() => {
                    let Some(ev) = ev else {
                        return Err(BridgeError::Ended("the discord gateway stopped"));
                    };
                    self.on_gateway(ev, &ctx).await;
                }
                _ = check.tick() => {
                    match gateway.connected().await {
                        Ok(()) if !live => {
                            live = true;
                            ctx.status.connected();
                        }
                        Ok(()) => {}
                        Err(why) => {
                            if live {
                                tracing::warn!(state = %why, "discord gateway session lost");
                            }
                            live = false;
                            ctx.status.connecting(why.to_string());
                        }
                    }
                }
            }
        }
    }

    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverFailure> {
        match &d.action {
            Action::Post {
                parts,
                first,
                reply_to,
                thread,
            } => self.0.post(&d, parts, *first, *reply_to, *thread).await,
            Action::Edit { target, parts } => Ok(self.0.edit(d.channel, target, parts).await?),
            Action::Delete { target } => Ok(self.0.delete(d.channel, target).await?),
            Action::React { target, emoji, add } => {
                Ok(self.0.react(d.channel, target, emoji, *add).await?)
            }
        }
    }

    async fn moderate(&self, channel: &str, action: &UserAction) -> Result<(), ModerateError> {
        self.0.moderate(channel, action).await
    }

    async fn media(&self, reference: &str) -> Result<Media, MediaError> {
        self.0.open_media(reference).await
    }
}
