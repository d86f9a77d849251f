//! The Discord bridge: serenity's gateway for inbound (MESSAGE_CREATE, UPDATE,
//! DELETE, DELETE_BULK), our own REST calls for outbound (webhooks with the
//! remote author's name and avatar, or bot messages), edits and deletes.
//!
//! Outbound REST is ours, not serenity's: serenity applies `HttpBuilder::proxy`
//! (our `api_url`) only with its rate limiter disabled, and then a 429 reaches
//! the caller without its `retry_after`. Our calls read `retry_after` and let the
//! router wait exactly that long. Every post sets `allowed_mentions` to nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use serenity::all::{
    ChannelId, Context, EventHandler, GatewayIntents, GuildId, Message, MessageId,
    MessageUpdateEvent, Ready,
};
use tokio::sync::{Mutex, RwLock};

use super::{
    Action, Bridge, BridgeContext, BridgeError, DeliverError, Delivery, Inbound, OutboundSpec,
    StatusReporter,
};
use crate::bus::Posted;
use crate::config::{BridgeConfig, CommonBridgeConfig, Config, Secret};
use crate::event::{self, Attachment, Author, ChatEvent, Emote};
use crate::ratelimit::Rate;
use crate::render;

/// `[discord]` / `[bridges.<name>]` with `platform = "discord"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Bot token.
    pub token: Secret,
    /// REST base; the gateway URL comes from `GET {api_url}/api/v10/gateway/bot`.
    pub api_url: String,
    /// Post through a per-channel webhook so remote names and avatars show.
    pub webhooks: bool,
    /// Do not relay messages of other bots.
    pub ignore_bots: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            token: Secret::default(),
            api_url: "https://discord.com".into(),
            webhooks: true,
            ignore_bots: false,
        }
    }
}

impl DiscordConfig {
    pub fn parse(settings: &Value) -> Result<Self, String> {
        let cfg = DiscordConfig::deserialize(settings.clone()).map_err(|e| e.to_string())?;
        if !(cfg.api_url.starts_with("https://") || cfg.api_url.starts_with("http://")) {
            return Err(format!("api_url {:?} is not an http(s) URL", cfg.api_url));
        }
        Ok(cfg)
    }
}

/// Discord channels are snowflakes: digits only.
pub fn normalize_channel(channel: &str) -> Result<String, String> {
    let ok =
        !channel.is_empty() && channel.len() <= 20 && channel.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(channel.to_string())
    } else {
        Err(format!(
            "{channel:?} is not a Discord channel id (digits, e.g. \"123456789012345678\")"
        ))
    }
}

/// Options a Discord channel accepts in the table form of a room's channels.
pub fn check_channel_option(key: &str, value: &Value) -> Result<(), String> {
    match key {
        "webhook_url" => match value.as_str() {
            Some(u) if parse_webhook_url(u).is_some() => Ok(()),
            _ => Err("webhook_url must be a Discord webhook URL (…/api/webhooks/ID/TOKEN)".into()),
        },
        _ => Err(format!("unknown key {key:?} (known: webhook_url)")),
    }
}

fn parse_webhook_url(url: &str) -> Option<Webhook> {
    let rest = url.split("/webhooks/").nth(1)?;
    let mut parts = rest.split('/');
    let id = parts.next()?.to_string();
    let token = parts.next()?.split('?').next()?.to_string();
    (id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() && !token.is_empty())
        .then_some(Webhook { id, token })
}

#[derive(Debug, Clone)]
struct Webhook {
    id: String,
    token: String,
}

/// What we learn at READY: who we are, to ignore our own echoes.
#[derive(Debug, Clone, Copy, Default)]
struct Me {
    user_id: u64,
    application_id: u64,
}

pub struct DiscordBridge {
    name: String,
    common: CommonBridgeConfig,
    cfg: DiscordConfig,
    api: String,
    http: reqwest::Client,
    me: RwLock<Option<Me>>,
    /// Webhooks by channel: configured ones, and ones we created or found.
    webhooks: Mutex<HashMap<String, Webhook>>,
    /// Webhook ids we post through (their echoes are ours).
    own_webhooks: RwLock<std::collections::HashSet<String>>,
    names: Mutex<HashMap<String, String>>,
}

impl DiscordBridge {
    pub fn new(cfg: &BridgeConfig, config: &Config) -> Result<Self, String> {
        let dcfg = DiscordConfig::parse(&cfg.settings)?;
        let mut webhooks = HashMap::new();
        let mut own = std::collections::HashSet::new();
        for ch in config.rooms.iter().flat_map(|r| r.channels.iter()) {
            if ch.bridge == cfg.name
                && let Some(url) = ch.options.get("webhook_url").and_then(Value::as_str)
                && let Some(w) = parse_webhook_url(url)
            {
                own.insert(w.id.clone());
                webhooks.insert(ch.channel.clone(), w);
            }
        }
        let http = reqwest::Client::builder()
            .user_agent("DiscordBot (https://github.com/jetbridge, 0.1) jetbridge")
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(DiscordBridge {
            name: cfg.name.clone(),
            common: cfg.common.clone(),
            api: format!("{}/api/v10", dcfg.api_url.trim_end_matches('/')),
            cfg: dcfg,
            http,
            me: RwLock::new(None),
            webhooks: Mutex::new(webhooks),
            own_webhooks: RwLock::new(own),
            names: Mutex::new(HashMap::new()),
        })
    }

    fn auth(&self) -> String {
        format!("Bot {}", self.cfg.token.expose())
    }

    /// A REST call; maps Discord's answers to what the router should do.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        bot_auth: bool,
    ) -> Result<Value, DeliverError> {
        let url = format!("{}{path}", self.api);
        let mut req = self.http.request(method.clone(), &url);
        if bot_auth {
            req = req.header("Authorization", self.auth());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| DeliverError::Retry(format!("{method} {path}: {}", without_url(&e))))?;
        let status = resp.status();
        let retry_after_header = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::Null)
            });
        }
        let detail = format!(
            "{method} {}: {status} {}",
            redact_path(path),
            text.chars().take(200).collect::<String>()
        );
        match status.as_u16() {
            429 => {
                let body_after = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["retry_after"].as_f64());
                let secs = body_after.or(retry_after_header).unwrap_or(1.0).max(0.0);
                Err(DeliverError::RateLimited(Duration::from_secs_f64(secs)))
            }
            // A bad token is an operator problem; keep the messages until it is fixed.
            401 => Err(DeliverError::Retry(format!(
                "{detail} (check {}.token)",
                self.name
            ))),
            400 | 403 | 404 => Err(DeliverError::Reject(detail)),
            _ => Err(DeliverError::Retry(detail)),
        }
    }

    /// The webhook to post through in `channel`, created when missing.
    async fn webhook(&self, channel: &str) -> Result<Webhook, DeliverError> {
        if let Some(w) = self.webhooks.lock().await.get(channel) {
            return Ok(w.clone());
        }
        let me = *self.me.read().await;
        let list = self
            .call(
                reqwest::Method::GET,
                &format!("/channels/{channel}/webhooks"),
                None,
                true,
            )
            .await?;
        let found = list.as_array().into_iter().flatten().find(|w| {
            w["name"] == "jetbridge"
                && w["token"].is_string()
                && me.is_some_and(|m| {
                    w["application_id"].as_str() == Some(&m.application_id.to_string())
                        || w["user"]["id"].as_str() == Some(&m.user_id.to_string())
                })
        });
        let w = match found {
            Some(w) => w.clone(),
            None => {
                self.call(
                    reqwest::Method::POST,
                    &format!("/channels/{channel}/webhooks"),
                    Some(json!({ "name": "jetbridge" })),
                    true,
                )
                .await?
            }
        };
        let (Some(id), Some(token)) = (w["id"].as_str(), w["token"].as_str()) else {
            return Err(DeliverError::Retry(
                "webhook answer without id or token".into(),
            ));
        };
        let hook = Webhook {
            id: id.to_string(),
            token: token.to_string(),
        };
        self.own_webhooks.write().await.insert(hook.id.clone());
        self.webhooks
            .lock()
            .await
            .insert(channel.to_string(), hook.clone());
        Ok(hook)
    }

    async fn post(
        &self,
        d: &Delivery<'_>,
        parts: &[String],
        reply_to: Option<&Posted>,
    ) -> Result<Posted, DeliverError> {
        let ev = d.event;
        // Webhooks cannot reply with a message reference: replies whose parent
        // copy is known go as bot messages, which can.
        let reply_ref = reply_to.and_then(|p| p.ids.first().cloned());
        let use_webhook = self.cfg.webhooks && reply_ref.is_none() && !d.combined;
        let mut ids = Vec::new();
        let mut hook_id = None;
        for (i, part) in parts.iter().enumerate() {
            let v = if use_webhook {
                let hook = self.webhook(d.channel).await?;
                let body = json!({
                    "content": part,
                    "username": webhook_username(ev.author_name(), &ev.source.bridge),
                    "avatar_url": ev.author.as_ref().and_then(|a| a.avatar_url.as_deref()).filter(|u| u.starts_with("https://")),
                    "allowed_mentions": { "parse": [] },
                });
                let path = format!("/webhooks/{}/{}?wait=true", hook.id, hook.token);
                match self
                    .call(reqwest::Method::POST, &path, Some(body), false)
                    .await
                {
                    // The webhook was deleted: find or make another next time.
                    Err(DeliverError::Reject(e)) if e.contains("404") => {
                        self.webhooks.lock().await.remove(d.channel);
                        return Err(DeliverError::Retry(e));
                    }
                    other => {
                        hook_id = Some(hook.id.clone());
                        other?
                    }
                }
            } else {
                let mut body = json!({ "content": part, "allowed_mentions": { "parse": [] } });
                if i == 0
                    && let Some(r) = &reply_ref
                {
                    body["message_reference"] =
                        json!({ "message_id": r, "fail_if_not_exists": false });
                }
                self.call(
                    reqwest::Method::POST,
                    &format!("/channels/{}/messages", d.channel),
                    Some(body),
                    true,
                )
                .await?
            };
            if let Some(id) = v["id"].as_str() {
                ids.push(id.to_string());
            }
        }
        Ok(Posted {
            ids,
            extra: hook_id,
            combined: None,
        })
    }

    fn message_path(
        &self,
        channel: &str,
        target: &Posted,
        id: &str,
        hooks: &HashMap<String, Webhook>,
    ) -> (String, bool) {
        match target
            .extra
            .as_ref()
            .and_then(|hid| hooks.values().find(|w| &w.id == hid))
        {
            Some(w) => (
                format!("/webhooks/{}/{}/messages/{id}", w.id, w.token),
                false,
            ),
            None => (format!("/channels/{channel}/messages/{id}"), true),
        }
    }

    async fn edit(
        &self,
        channel: &str,
        target: &Posted,
        parts: &[String],
    ) -> Result<Posted, DeliverError> {
        let hooks = self.webhooks.lock().await.clone();
        for (i, id) in target.ids.iter().enumerate() {
            let (path, bot) = self.message_path(channel, target, id, &hooks);
            match parts.get(i) {
                Some(p) => {
                    let body = json!({ "content": p, "allowed_mentions": { "parse": [] } });
                    self.call(reqwest::Method::PATCH, &path, Some(body), bot)
                        .await?;
                }
                // The new text needs fewer posts: remove the rest.
                None => {
                    self.ignore_missing(
                        self.call(reqwest::Method::DELETE, &path, None, bot).await,
                    )?;
                }
            }
        }
        Ok(target.clone())
    }

    async fn delete(&self, channel: &str, target: &Posted) -> Result<Posted, DeliverError> {
        let hooks = self.webhooks.lock().await.clone();
        for id in &target.ids {
            let (path, bot) = self.message_path(channel, target, id, &hooks);
            self.ignore_missing(self.call(reqwest::Method::DELETE, &path, None, bot).await)?;
        }
        Ok(target.clone())
    }

    /// Deleting something already gone is success.
    fn ignore_missing(&self, r: Result<Value, DeliverError>) -> Result<(), DeliverError> {
        match r {
            Err(DeliverError::Reject(e)) if e.contains("404") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// A channel's or role's name, looked up once.
    async fn lookup_name(&self, key: String, path: String) -> Option<String> {
        if let Some(n) = self.names.lock().await.get(&key) {
            return Some(n.clone());
        }
        let v = self
            .call(reqwest::Method::GET, &path, None, true)
            .await
            .ok()?;
        let name = if let Some(list) = v.as_array() {
            // Roles come as a list for the guild.
            let mut names = self.names.lock().await;
            for r in list {
                if let (Some(id), Some(n)) = (r["id"].as_str(), r["name"].as_str()) {
                    names.insert(format!("role:{id}"), n.to_string());
                }
            }
            names.get(&key).cloned()
        } else {
            v["name"].as_str().map(str::to_string)
        };
        if let Some(n) = &name {
            self.names.lock().await.insert(key, n.clone());
        }
        name
    }

    /// Discord content → common markup: mentions and custom emoji resolved.
    async fn to_common(
        &self,
        content: &str,
        mentions: &[serenity::all::User],
        guild: Option<GuildId>,
    ) -> (String, Vec<Emote>) {
        let mut out = String::with_capacity(content.len());
        let mut emotes = Vec::new();
        let mut rest = content;
        while let Some(start) = rest.find('<') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find('>') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let token = &after[1..end];
            let replaced = if let Some(id) = token.strip_prefix("@&") {
                let name = match guild {
                    Some(g) => {
                        self.lookup_name(format!("role:{id}"), format!("/guilds/{g}/roles"))
                            .await
                    }
                    None => None,
                };
                Some(format!("@{}", name.unwrap_or_else(|| "role".into())))
            } else if let Some(id) = token.strip_prefix("@!").or_else(|| token.strip_prefix('@')) {
                let name = mentions
                    .iter()
                    .find(|u| u.id.to_string() == id)
                    .map(|u| u.global_name.clone().unwrap_or_else(|| u.name.clone()));
                Some(format!("@{}", name.unwrap_or_else(|| "someone".into())))
            } else if let Some(id) = token.strip_prefix('#') {
                let name = self
                    .lookup_name(format!("channel:{id}"), format!("/channels/{id}"))
                    .await;
                Some(format!("#{}", name.unwrap_or_else(|| "channel".into())))
            } else if let Some(e) = token.strip_prefix(':').or_else(|| token.strip_prefix("a:")) {
                e.split_once(':').map(|(name, id)| {
                    let code = format!(":{name}:");
                    let ext = if token.starts_with("a:") {
                        "gif"
                    } else {
                        "png"
                    };
                    if !emotes.iter().any(|x: &Emote| x.name == code) {
                        emotes.push(Emote {
                            name: code.clone(),
                            url: format!("https://cdn.discordapp.com/emojis/{id}.{ext}"),
                        });
                    }
                    code
                })
            } else {
                None
            };
            match replaced {
                Some(r) => out.push_str(&r),
                None => out.push_str(&after[..=end]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        (out, emotes)
    }

    async fn is_own(&self, msg: &Message) -> bool {
        let Some(me) = *self.me.read().await else {
            return false;
        };
        if msg.author.id.get() == me.user_id {
            return true;
        }
        match msg.webhook_id {
            Some(w) => {
                msg.application_id
                    .is_some_and(|a| a.get() == me.application_id)
                    || self.own_webhooks.read().await.contains(&w.to_string())
            }
            None => false,
        }
    }

    async fn message_event(&self, msg: &Message) -> Option<ChatEvent> {
        if self.is_own(msg).await {
            return None;
        }
        if self.cfg.ignore_bots && (msg.author.bot || msg.webhook_id.is_some()) {
            return None;
        }
        let channel = msg.channel_id.to_string();
        let (text, emotes) = self
            .to_common(&msg.content, &msg.mentions, msg.guild_id)
            .await;
        let author = Author {
            id: msg.author.id.to_string(),
            name: msg
                .member
                .as_ref()
                .and_then(|m| m.nick.clone())
                .or_else(|| msg.author.global_name.clone())
                .unwrap_or_else(|| msg.author.name.clone()),
            avatar_url: Some(msg.author.face()),
            color: None,
            bot: msg.author.bot || msg.webhook_id.is_some(),
        };
        let mut ev = ChatEvent::message(&self.name, &channel, &msg.id.to_string(), author, text);
        ev.ts = chrono::DateTime::parse_from_rfc3339(&msg.timestamp.to_string())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(ev.ts);
        ev.emotes = emotes;
        ev.reply_to = msg
            .message_reference
            .as_ref()
            .and_then(|r| r.message_id)
            .map(|id| event::message_id(&self.name, &channel, &id.to_string()));
        for a in &msg.attachments {
            ev.attachments.push(Attachment {
                url: a.url.clone(),
                name: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: Some(u64::from(a.size)),
            });
        }
        for s in &msg.sticker_items {
            ev.attachments.push(Attachment {
                url: format!("https://media.discordapp.net/stickers/{}.png", s.id),
                name: s.name.clone(),
                content_type: Some("image/png".into()),
                size: None,
            });
        }
        Some(ev)
    }
}

/// Strip a URL (with a webhook token in it) from a reqwest error.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

/// A webhook path without its token, for logs.
fn redact_path(path: &str) -> String {
    match path.strip_prefix("/webhooks/") {
        Some(rest) => {
            let mut parts = rest.splitn(3, '/');
            let id = parts.next().unwrap_or("");
            let _token = parts.next();
            match parts.next() {
                Some(tail) => format!("/webhooks/{id}/<token>/{tail}"),
                None => format!("/webhooks/{id}/<token>"),
            }
        }
        None => path.to_string(),
    }
}

/// `Name (twitch)`, within Discord's rules for webhook names: 1–80 characters,
/// no "discord" or "clyde", no `@ # : ```, not "everyone" or "here".
pub fn webhook_username(name: &str, bridge: &str) -> String {
    let clean = |s: &str| -> String {
        render::single_line(s)
            .chars()
            .filter(|c| !matches!(c, '@' | '#' | ':' | '`'))
            .collect::<String>()
    };
    let mut base = clean(name);
    if base.trim().is_empty() {
        base = "someone".into();
    }
    let base: String = base
        .chars()
        .take(80 - 3 - bridge.chars().count().min(20))
        .collect();
    let full = format!(
        "{} ({})",
        base.trim(),
        clean(bridge).chars().take(20).collect::<String>()
    );
    defuse_reserved(&full)
}

/// Replace reserved words with look-alikes (Greek omicron, Cyrillic у) so that
/// Discord accepts the name and it still reads the same.
fn defuse_reserved(s: &str) -> String {
    let mut out = s.to_string();
    for (word, replacement) in [("discord", "disc\u{03bf}rd"), ("clyde", "cl\u{0443}de")] {
        let lower = out.to_lowercase();
        if let Some(pos) = lower.find(word) {
            // Both are ASCII words: the byte range is the same in `out`.
            let original = &out[pos..pos + word.len()];
            let mapped: String = original
                .chars()
                .zip(replacement.chars())
                .map(|(o, r)| {
                    if o.is_ascii_uppercase() {
                        r.to_uppercase().next().unwrap_or(r)
                    } else {
                        r
                    }
                })
                .collect();
            out.replace_range(pos..pos + word.len(), &mapped);
            return defuse_reserved(&out);
        }
    }
    if matches!(out.to_lowercase().as_str(), "everyone" | "here") {
        out.push('_');
    }
    out
}

/// Common markup → Discord markdown that means the same and cannot ping or
/// format beyond it: `@everyone`/`@here` broken with a zero-width space, raw
/// `<…>` mention syntax escaped, Discord-only syntax (`||`, line-leading `>`,
/// `#`, `-#`) escaped.
pub fn to_discord(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len() + 8);
    for (i, line) in markup.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        out.push_str(indent);
        if trimmed.starts_with('>') || trimmed.starts_with('#') || trimmed.starts_with("-#") {
            out.push('\\');
        }
        let mut chars = trimmed.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '<' => out.push_str("\\<"),
                '|' if chars.peek() == Some(&'|') => {
                    chars.next();
                    out.push_str("\\|\\|");
                }
                '@' => {
                    out.push('@');
                    let ahead: String = chars.clone().take(8).collect::<String>().to_lowercase();
                    if ahead.starts_with("everyone") || ahead.starts_with("here") {
                        out.push('\u{200B}');
                    }
                }
                _ => out.push(c),
            }
        }
    }
    out
}

/// serenity's event handler: turns gateway events into chat events.
struct Handler {
    bridge: Arc<DiscordBridge>,
    inbound: Inbound,
    status: StatusReporter,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        *self.bridge.me.write().await = Some(Me {
            user_id: ready.user.id.get(),
            application_id: ready.application.id.get(),
        });
        tracing::info!(user = %ready.user.name, "discord ready");
        self.status.connected();
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        if let Some(ev) = self.bridge.message_event(&msg).await {
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
            && let Some(me) = *self.bridge.me.read().await
            && author.id.get() == me.user_id
        {
            return;
        }
        if matches!(ev.webhook_id, Some(Some(w)) if self.bridge.own_webhooks.read().await.contains(&w.to_string()))
        {
            return;
        }
        // Resolve mentions as for a new message.
        let mentions = ev.mentions.clone().unwrap_or_default();
        let (text, _) = self
            .bridge
            .to_common(&content, &mentions, ev.guild_id)
            .await;
        let author = ev.author.as_ref().map(|a| Author {
            id: a.id.to_string(),
            name: a.global_name.clone().unwrap_or_else(|| a.name.clone()),
            avatar_url: Some(a.face()),
            color: None,
            bot: a.bot,
        });
        let channel = ev.channel_id.to_string();
        let edit = ChatEvent::edit(
            &self.bridge.name,
            &channel,
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
            &self.bridge.name,
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
                &self.bridge.name,
                &channel.to_string(),
                &id.to_string(),
                None,
            );
            self.inbound.publish(ev).await;
        }
    }
}

/// Wraps the bridge so the event handler can hold it.
pub struct DiscordHandle(Arc<DiscordBridge>);

impl DiscordHandle {
    pub fn new(cfg: &BridgeConfig, config: &Config) -> Result<Self, String> {
        Ok(DiscordHandle(Arc::new(DiscordBridge::new(cfg, config)?)))
    }
}

#[async_trait]
impl Bridge for DiscordHandle {
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
        // Through a webhook the name shows as the poster: the text alone.
        if self.0.cfg.webhooks && ev.reply_to.is_none() {
            return super::render_text_only(self, ev);
        }
        super::default_render(self, ev, channel)
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let token = self.0.cfg.token.expose().to_string();
        if token.is_empty() {
            return Err(BridgeError::Auth(format!(
                "{}.token is empty (set JETBRIDGE_{}__TOKEN)",
                self.0.name,
                self.0.name.to_uppercase()
            )));
        }
        // Ask who we are first: a refused token is then one clear error, not a
        // gateway retry loop.
        match self
            .0
            .call(reqwest::Method::GET, "/users/@me", None, true)
            .await
        {
            Ok(_) => {}
            Err(DeliverError::Retry(e)) if e.contains("401") => {
                return Err(BridgeError::Auth(format!(
                    "Discord refused the bot token (check {}.token / JETBRIDGE_{}__TOKEN)",
                    self.0.name,
                    self.0.name.to_uppercase()
                )));
            }
            Err(e) => {
                return Err(BridgeError::Connection(format!(
                    "cannot reach the Discord API at {}: {e}",
                    self.0.cfg.api_url
                )));
            }
        }
        let http = serenity::http::HttpBuilder::new(&token)
            .proxy(self.0.cfg.api_url.trim_end_matches('/'))
            .ratelimiter_disabled(true)
            .build();
        let intents = GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
        let handler = Handler {
            bridge: self.0.clone(),
            inbound: ctx.inbound.clone(),
            status: ctx.status.clone(),
        };
        let mut client = serenity::all::ClientBuilder::new_with_http(http, intents)
            .event_handler(handler)
            .await
            .map_err(|e| BridgeError::Connection(format!("discord client: {e}")))?;
        let shards = client.shard_manager.clone();
        let shutdown = ctx.shutdown.clone();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            shards.shutdown_all().await;
        });
        let result = client.start().await;
        stopper.abort();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(classify(&self.0.name, e)),
        }
    }

    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverError> {
        match &d.action {
            Action::Post { parts, reply_to } => self.0.post(&d, parts, *reply_to).await,
            Action::Edit { target, parts } => self.0.edit(d.channel, target, parts).await,
            Action::Delete { target } => self.0.delete(d.channel, target).await,
        }
    }
}

fn classify(name: &str, e: serenity::Error) -> BridgeError {
    use serenity::gateway::GatewayError;
    match &e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => BridgeError::Auth(format!(
            "Discord refused the bot token (check {name}.token / JETBRIDGE_{}__TOKEN)",
            name.to_uppercase()
        )),
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => BridgeError::Auth(
            "Discord refused the MESSAGE_CONTENT intent: enable it for the bot in the developer portal".into(),
        ),
        serenity::Error::Http(h) if h.status_code().is_some_and(|s| s.as_u16() == 401) => BridgeError::Auth(format!(
            "Discord refused the bot token (check {name}.token / JETBRIDGE_{}__TOKEN)",
            name.to_uppercase()
        )),
        _ => BridgeError::Connection(format!("discord: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_cannot_ping() {
        assert_eq!(
            to_discord("@everyone hi @here"),
            "@\u{200B}everyone hi @\u{200B}here"
        );
        assert_eq!(to_discord("<@123> <@&5> <#9>"), "\\<@123> \\<@&5> \\<#9>");
        assert_eq!(
            to_discord("> quote\n# big\n||spoiler||"),
            "\\> quote\n\\# big\n\\|\\|spoiler\\|\\|"
        );
        assert_eq!(to_discord("**bold** and *it*"), "**bold** and *it*");
    }

    #[test]
    fn webhook_names_follow_discord_rules() {
        assert_eq!(webhook_username("Ann", "twitch"), "Ann (twitch)");
        let n = webhook_username("Clyde from Discord", "discord");
        assert!(
            !n.to_lowercase().contains("discord") && !n.to_lowercase().contains("clyde"),
            "{n}"
        );
        assert_eq!(webhook_username("@every#one:`", "web"), "everyone (web)");
        assert!(webhook_username(&"x".repeat(200), "twitch").chars().count() <= 80);
        assert_eq!(webhook_username("", "web"), "someone (web)");
    }

    #[test]
    fn webhook_urls_parse_and_paths_redact() {
        let w = parse_webhook_url("https://discord.com/api/webhooks/123/abc-DEF").unwrap();
        assert_eq!((w.id.as_str(), w.token.as_str()), ("123", "abc-DEF"));
        assert!(parse_webhook_url("https://example.org/").is_none());
        assert_eq!(
            redact_path("/webhooks/1/secret?wait=true"),
            "/webhooks/1/<token>"
        );
        assert_eq!(
            redact_path("/webhooks/1/secret/messages/5"),
            "/webhooks/1/<token>/messages/5"
        );
    }
}
