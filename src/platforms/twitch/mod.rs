//! The Twitch bridge: IRC over TCP or TLS to the configured `server`. Reading
//! is twitch-irc's (unmodified): PRIVMSG in as `message` events, CLEARMSG and
//! CLEARCHAT in as `delete`, our own login ignored. Writing is on a connection
//! of our own ([`writer`]): PRIVMSG out with control characters stripped and
//! commands defused, a window of unconfirmed lines per channel sent again in
//! order after a drop. Pacing and order are the router's.

mod config;
mod connection;
mod emotes;
mod gate;
mod helix;
mod history;
mod inbound;
mod lenient;
mod markup;
mod moderation;
mod notice;
mod outbox;
mod providers;
mod shared;
mod via_api;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use twitch_irc::ClientConfig;
use twitch_irc::login::StaticLoginCredentials;
use twitch_irc::message::ServerMessage;

use crate::bridge::{
    Account, Action, Bridge, BridgeContext, BridgeError, BuildError, DeliverError, DeliverFailure,
    Delivery, ModerateError, OutboundSpec, Platform, Posted, UserAction,
};
use crate::config::{CommonBridgeConfig, InvalidChannel, InvalidSetting, NoOptions};
use crate::ratelimit::Rate;
use crate::render;

pub use config::{Endpoint, SendVia, TwitchConfig};
pub use inbound::privmsg_to_event;

/// The Twitch platform.
pub struct Twitch;

impl Platform for Twitch {
    const NAME: &'static str = "twitch";
    type Settings = TwitchConfig;
    type ChannelOptions = NoOptions;

    fn check(settings: &TwitchConfig) -> Result<(), InvalidSetting> {
        settings.check()
    }

    fn normalize_channel(channel: &str) -> Result<String, InvalidChannel> {
        config::normalize_channel(channel)
    }

    fn build(account: Account<'_, Self>) -> Result<Arc<dyn Bridge>, BuildError> {
        let endpoint = account
            .settings
            .endpoint()
            .ok_or_else(|| BuildError::Setting {
                account: account.name.to_string(),
                setting: InvalidSetting::new("server", "not host:port"),
            })?;
        let http = providers::client(Duration::from_secs(10));
        let helix = helix::Helix::new(account.settings, http.clone()).map(Arc::new);
        Ok(Arc::new(TwitchBridge {
            http,
            helix,
            name: account.name.to_string(),
            common: account.common.clone(),
            cfg: account.settings.clone(),
            endpoint,
            writer: std::sync::OnceLock::new(),
            sessions: Arc::new(shared::Sessions::default()),
            emotes: Arc::new(emotes::Catalog::new(&account.settings.emotes)),
        }))
    }
}

pub struct TwitchBridge {
    /// For the recent-messages service.
    http: reqwest::Client,
    /// Twitch's API, when the account has credentials for it.
    helix: Option<Arc<helix::Helix>>,
    name: String,
    common: CommonBridgeConfig,
    cfg: TwitchConfig,
    endpoint: Endpoint,
    /// The connection lines are written on, opened at the first line.
    writer: std::sync::OnceLock<writer::Writer>,
    /// Rooms and Shared Chat sessions, as the reader learns them.
    sessions: Arc<shared::Sessions>,
    /// Third-party emotes, kept across connections.
    emotes: Arc<emotes::Catalog>,
}

impl TwitchBridge {
    fn credentials(&self) -> StaticLoginCredentials {
        if self.cfg.is_anonymous() {
            StaticLoginCredentials::anonymous()
        } else {
            // twitch-irc adds `oauth:` itself.
            StaticLoginCredentials::new(self.cfg.login.to_lowercase(), Some(self.bare_token()))
        }
    }

    /// The token without its `oauth:` (what IRC's `PASS oauth:…` adds).
    fn bare_token(&self) -> String {
        let token = self.cfg.token.expose();
        token.strip_prefix("oauth:").unwrap_or(token).to_string()
    }

    fn client_config(&self) -> ClientConfig<StaticLoginCredentials> {
        let mut config = ClientConfig::new_simple(self.credentials());
        // twitch-irc only reads here (lines go out on the writer's
        // connection). It opens another connection when one is "busy" or
        // holds many channels; one connection carrying every channel keeps
        // one read gate and one catch-up per reconnect. With no time per
        // message a connection is never busy. (`max_waiting` is doubled
        // inside twitch-irc: keep it small.)
        config.max_channels_per_connection = usize::MAX;
        config.time_per_message = Duration::ZERO;
        config.max_waiting_messages_per_connection = 64;
        config.connect_timeout = Duration::from_secs(10);
        config.tracing_identifier = Some(self.name.clone().into());
        config
    }
}

#[async_trait]
impl Bridge for TwitchBridge {
    fn name(&self) -> &str {
        &self.name
    }

    fn common(&self) -> &CommonBridgeConfig {
        &self.common
    }

    fn spec(&self) -> OutboundSpec {
        OutboundSpec {
            // 500 on the wire, less the two characters of the command guard.
            max_chars: 498,
            rate: self.common.rate_limit.then_some(Rate {
                messages: 20,
                per: Duration::from_secs(30),
            }),
            can_edit: false,
            can_react: false,
            joiner: " | ",
            default_format: "[{bridge}] {name}: {text}",
        }
    }

    fn render_name(&self, name: &str) -> String {
        render::single_line(name)
    }

    fn render_text(&self, markup: &str) -> String {
        markup::to_plain_line(markup)
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let gate = Arc::new(gate::ReadGate::new(&self.name));
        let running = connection::start(
            &self.name,
            self.endpoint.clone(),
            gate.clone(),
            self.client_config(),
        )
        .await
        .map_err(|e| BridgeError::connection("cannot start the twitch client", e))?;
        let connection::Running {
            client,
            mut incoming,
            ..
        } = running;
        let wanted: HashSet<String> = ctx
            .channels
            .iter()
            .map(|(c, _)| c.trim_start_matches('#').to_string())
            .collect();
        client
            .set_wanted_channels(wanted.clone())
            .map_err(|e| BridgeError::connection("invalid channel", e))?;
        let fetching = ctx.shutdown.child_token();
        let _stop_fetching = fetching.clone().drop_guard();
        let wants = emotes::start(
            &self.name,
            self.emotes.clone(),
            self.cfg.emote_api.clone(),
            fetching,
        );
        let mut reader = inbound::Reader::new(
            &self.name,
            &self.cfg.login,
            self.sessions.clone(),
            (self.emotes.clone(), wants),
        );
        // The connection each channel last caught up on.
        let mut caught_up: HashMap<String, u64> = HashMap::new();
        let mut check = tokio::time::interval(Duration::from_millis(250));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut all_joined = false;
        ctx.status
            .connecting(format!("joining {} channels", wanted.len()));
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => {
                    // Read nothing new; the lines already received are queued
                    // before we go (IRC never sends a line again).
                    while let Ok(msg) = incoming.try_recv() {
                        tokio::select! {
                            handled = reader.handle(msg, &ctx.inbound) => handled?,
                            _ = ctx.give_up.cancelled() => break,
                        }
                    }
                    return Ok(());
                }
                msg = incoming.recv() => {
                    let Some(msg) = msg else {
                        return Err(BridgeError::Ended("twitch client stopped"));
                    };
                    let joined = match &msg {
                        ServerMessage::RoomState(r) => Some(format!("#{}", r.channel_login)),
                        _ => None,
                    };
                    reader.handle(msg, &ctx.inbound).await?;
                    if let Some(channel) = joined
                        && caught_up.get(&channel) != Some(&gate.generation())
                    {
                        // Joined on a new connection: what was said since the
                        // last one is not coming over IRC. Read it before the
                        // lines queued behind this one.
                        caught_up.insert(channel.clone(), gate.generation());
                        tokio::select! {
                            _ = self.catch_up(&ctx, &reader, &channel) => {}
                            _ = ctx.give_up.cancelled() => return Ok(()),
                        }
                    }
                    gate.took();
                }
                _ = check.tick() => {
                    if incoming.is_empty() {
                        gate.idle();
                    }
                    let mut joined = 0;
                    for login in &wanted {
                        if client.get_channel_status(login.clone()).await == (true, true) {
                            joined += 1;
                        }
                    }
                    if joined == wanted.len() {
                        if !all_joined {
                            ctx.status.connected();
                            all_joined = true;
                            // Joined: look less often.
                            check = tokio::time::interval(Duration::from_secs(2));
                        }
                    } else {
                        if all_joined {
                            check = tokio::time::interval(Duration::from_millis(250));
                        }
                        all_joined = false;
                        ctx.status.connecting(format!("joined {joined}/{} channels of {}", wanted.len(), self.cfg.server));
                    }
                }
            }
        }
    }

    async fn moderate(&self, channel: &str, action: &UserAction) -> Result<(), ModerateError> {
        self.moderate_api(channel.trim_start_matches('#'), action)
            .await
    }

    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverFailure> {
        let (parts, reply_to) = match d.action {
            // Twitch has no threads: a thread reply is a reply line.
            Action::Post {
                parts,
                first,
                reply_to,
                ..
            } => (parts, reply_to.filter(|_| first == 0)),
            // A copy has Twitch's id (from the API's answer, or the
            // USERSTATE answering the line): the API removes it.
            Action::Delete { target } if !target.ids.is_empty() => {
                return self.delete_api(d.channel, target).await;
            }
            // Twitch cannot edit or react; a copy without an id cannot be found.
            Action::Edit { .. } | Action::Delete { .. } | Action::React { .. } => {
                return Ok(Posted::default());
            }
        };
        let login = d.channel.trim_start_matches('#').to_string();
        if self.already_seen_in(d.event, &login) {
            tracing::debug!(event_id = %d.event.id, channel = d.channel, "its viewers saw it already (shared chat)");
            return Ok(Posted::default());
        }
        if self.cfg.send == SendVia::Api {
            return self.send_api(parts, &login, reply_to).await;
        }
        if self.cfg.is_anonymous() {
            return Err(DeliverError::reject("the twitch login is anonymous (read-only)").into());
        }
        let writer = self.writer.get_or_init(|| {
            let account = writer::Account {
                nick: self.cfg.login.to_lowercase(),
                token: self.bare_token(),
            };
            writer::Writer::start(&self.name, self.endpoint.clone(), account)
        });
        // Each line is written once there is room in the channel's window;
        // the next delivery goes out without waiting for Twitch's answer,
        // and the router records the copy once its ids came.
        let mut answers = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let line = markup::guard_command(&render::single_line(part));
            if line.is_empty() {
                continue;
            }
            match writer.send(&login, line).await {
                Ok(answer) => answers.push(answer),
                Err(error) => {
                    return Err(DeliverFailure {
                        error,
                        accepted: i,
                        partial: self.answered_later(answers),
                    });
                }
            }
        }
        Ok(self.answered_later(answers))
    }
}

impl TwitchBridge {
    /// Whether viewers of channel `login` already saw `ev` (Twitch Shared Chat).
    fn already_seen_in(&self, ev: &crate::event::ChatEvent, login: &str) -> bool {
        if let Some(shared) = &ev.shared_chat
            && self.sessions.room_id_of(login).as_deref() == Some(shared.room_id.as_str())
        {
            return true;
        }
        ev.source.bridge == self.name
            && self
                .sessions
                .sees(ev.source.channel.trim_start_matches('#'), login)
    }

    /// A copy whose ids come with Twitch's answers to its lines.
    fn answered_later(&self, answers: Vec<outbox::Answer>) -> Posted {
        Posted {
            later: (!answers.is_empty()).then(|| writer::ids_of(&self.name, answers)),
            ..Posted::default()
        }
    }
}
