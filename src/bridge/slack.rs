//! The Slack bridge, on slack-morphism (unmodified): Socket Mode in (no public
//! endpoint), the Web API out. Message events become message/edit/delete events
//! with mrkdwn converted to the common markup; posts carry the remote author's
//! name and avatar (`chat:write.customize`), fall back to the `format` template
//! when Slack refuses that, thread under the parent's copy, and are edited and
//! deleted through the id map.
//!
//! Envelopes are acknowledged by slack-morphism once our callback returns, and the
//! callback only queues the event (Slack wants the ack within 3 s).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::sync::{Mutex, RwLock};

use super::{
    Action, Bridge, BridgeContext, BridgeError, DeliverError, Delivery, Inbound, OutboundSpec,
    StatusReporter,
};
use crate::bus::Posted;
use crate::config::{BridgeConfig, CommonBridgeConfig, Secret};
use crate::event::{self, Attachment, Author, ChatEvent};
use crate::ratelimit::Rate;
use crate::render::{self, Span};

/// `[slack]` / `[bridges.<name>]` with `platform = "slack"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// App-level token (`xapp-…`) for Socket Mode.
    pub app_token: Secret,
    /// Bot token (`xoxb-…`) for the Web API.
    pub bot_token: Secret,
    /// Web API base.
    pub api_url: String,
    /// Do not relay messages of other bots.
    pub ignore_bots: bool,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            app_token: Secret::default(),
            bot_token: Secret::default(),
            api_url: "https://slack.com/api".into(),
            ignore_bots: false,
        }
    }
}

impl SlackConfig {
    pub fn parse(settings: &Value) -> Result<Self, String> {
        let cfg = SlackConfig::deserialize(settings.clone()).map_err(|e| e.to_string())?;
        if !(cfg.api_url.starts_with("https://") || cfg.api_url.starts_with("http://")) {
            return Err(format!("api_url {:?} is not an http(s) URL", cfg.api_url));
        }
        Ok(cfg)
    }
}

/// Slack channel ids: upper-case letters and digits (`C0123456`).
pub fn normalize_channel(channel: &str) -> Result<String, String> {
    let ok = channel.len() >= 2
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(channel.to_string())
    } else {
        Err(format!(
            "{channel:?} is not a Slack channel id (e.g. \"C0123456\"; use the id, not the name)"
        ))
    }
}

/// Users resolved through `users.info`, at most this many kept.
const USER_CACHE: usize = 2000;

pub struct SlackBridge {
    name: String,
    common: CommonBridgeConfig,
    cfg: SlackConfig,
    client: Arc<SlackHyperClient>,
    bot_token: SlackApiToken,
    /// Our bot user and bot id, from `auth.test`.
    me: RwLock<Option<(String, Option<String>)>>,
    /// Whether Slack lets us post with a custom name and icon.
    customize: AtomicBool,
    users: Mutex<HashMap<String, (String, Option<String>)>>,
    channels: Mutex<HashMap<String, String>>,
}

impl SlackBridge {
    pub fn new(cfg: &BridgeConfig) -> Result<Self, String> {
        let scfg = SlackConfig::parse(&cfg.settings)?;
        // slack-morphism's default connector is https only; `http://` serves
        // proxies and tests.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            // The connector joins "{base}/{method}" itself.
            .with_slack_api_url(scfg.api_url.trim_end_matches('/'));
        let client = Arc::new(SlackClient::new(connector));
        let bot_token = SlackApiToken::new(scfg.bot_token.expose().into());
        Ok(SlackBridge {
            name: cfg.name.clone(),
            common: cfg.common.clone(),
            cfg: scfg,
            client,
            bot_token,
            me: RwLock::new(None),
            customize: AtomicBool::new(true),
            users: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
        })
    }

    async fn user(&self, id: &str) -> (String, Option<String>) {
        if let Some(u) = self.users.lock().await.get(id) {
            return u.clone();
        }
        let session = self.client.open_session(&self.bot_token);
        let found = session
            .users_info(&SlackApiUsersInfoRequest::new(SlackUserId::new(id.into())))
            .await
            .ok()
            .map(|r| {
                let u = r.user;
                let profile = u.profile.as_ref();
                let name = profile
                    .and_then(|p| p.display_name.clone())
                    .filter(|n| !n.is_empty())
                    .or_else(|| {
                        profile
                            .and_then(|p| p.real_name.clone())
                            .filter(|n| !n.is_empty())
                    })
                    .or_else(|| u.name.clone())
                    .unwrap_or_else(|| id.to_string());
                let avatar = profile
                    .and_then(|p| p.icon.as_ref())
                    .and_then(|i| i.images.as_ref())
                    .and_then(|imgs| {
                        imgs.resolutions
                            .iter()
                            .filter(|(size, _)| *size >= 48)
                            .min_by_key(|(size, _)| *size)
                            .or_else(|| imgs.resolutions.last())
                            .map(|(_, url)| url.clone())
                    });
                (name, avatar)
            });
        let value = found.unwrap_or_else(|| (id.to_string(), None));
        let mut users = self.users.lock().await;
        if users.len() >= USER_CACHE {
            users.clear();
        }
        users.insert(id.to_string(), value.clone());
        value
    }

    async fn channel_name(&self, id: &str) -> String {
        if let Some(n) = self.channels.lock().await.get(id) {
            return n.clone();
        }
        let session = self.client.open_session(&self.bot_token);
        let name = session
            .conversations_info(&SlackApiConversationsInfoRequest::new(SlackChannelId::new(
                id.into(),
            )))
            .await
            .ok()
            .and_then(|r| r.channel.name)
            .unwrap_or_else(|| "channel".into());
        self.channels
            .lock()
            .await
            .insert(id.to_string(), name.clone());
        name
    }

    /// Slack mrkdwn → common markup.
    async fn to_common(&self, mrkdwn: &str) -> String {
        let mut out = String::with_capacity(mrkdwn.len());
        let mut rest = mrkdwn;
        while let Some(start) = rest.find('<') {
            out.push_str(&plain_to_common(&rest[..start]));
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else {
                out.push_str(&plain_to_common(&rest[start..]));
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (target, label) = match inner.split_once('|') {
                Some((t, l)) => (t, Some(l)),
                None => (inner, None),
            };
            let piece = if let Some(user) = target.strip_prefix('@') {
                let name = match label {
                    Some(l) => l.to_string(),
                    None => self.user(user).await.0,
                };
                format!("@{}", render::escape_markup(&name))
            } else if let Some(ch) = target.strip_prefix('#') {
                let name = match label {
                    Some(l) => l.to_string(),
                    None => self.channel_name(ch).await,
                };
                format!("#{}", render::escape_markup(&name))
            } else if let Some(special) = target.strip_prefix('!') {
                // <!here>, <!channel>, <!subteam^ID|@team>, <!date…|fallback>
                match label {
                    Some(l) => render::escape_markup(&unescape(l)),
                    None => format!("@{}", special.split('^').next().unwrap_or(special)),
                }
            } else {
                let url = unescape(target);
                match label {
                    Some(l) if unescape(l) != url => {
                        format!("[{}]({url})", render::escape_markup(&unescape(l)))
                    }
                    _ => url,
                }
            };
            out.push_str(&piece);
            rest = &after[end + 1..];
        }
        out.push_str(&plain_to_common(rest));
        out
    }

    async fn author(&self, sender: &SlackMessageSender) -> Author {
        match &sender.user {
            Some(u) => {
                let (name, avatar_url) = self.user(u.as_ref()).await;
                Author {
                    id: u.to_string(),
                    name,
                    avatar_url,
                    color: None,
                    bot: sender.bot_id.is_some(),
                }
            }
            None => Author {
                id: sender
                    .bot_id
                    .as_ref()
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                name: sender.username.clone().unwrap_or_else(|| "bot".into()),
                avatar_url: None,
                color: None,
                bot: true,
            },
        }
    }

    async fn is_own(&self, sender: &SlackMessageSender) -> bool {
        let me = self.me.read().await;
        let Some((user, bot)) = me.as_ref() else {
            return false;
        };
        sender.user.as_ref().is_some_and(|u| u.as_ref() == user)
            || (sender.bot_id.is_some() && sender.bot_id.as_ref().map(|b| b.to_string()) == *bot)
    }

    async fn on_message(&self, ev: SlackMessageEvent, inbound: &Inbound) {
        let Some(channel) = ev.origin.channel.as_ref().map(|c| c.to_string()) else {
            return;
        };
        match ev.subtype {
            Some(SlackMessageEventType::MessageChanged) => {
                let Some(edited) = ev.message else { return };
                if self.is_own(&edited.sender).await {
                    return;
                }
                let Some(marker) = edited.edited.as_ref().map(|e| e.ts.to_string()) else {
                    // An unfurl or other change of attachments, not an edit.
                    return;
                };
                let text = self
                    .to_common(
                        edited
                            .content
                            .as_ref()
                            .and_then(|c| c.text.as_deref())
                            .unwrap_or(""),
                    )
                    .await;
                let author = self.author(&edited.sender).await;
                let e = ChatEvent::edit(
                    &self.name,
                    &channel,
                    edited.ts.as_ref(),
                    &marker,
                    Some(author),
                    text,
                );
                inbound.publish(e).await;
            }
            Some(SlackMessageEventType::MessageDeleted) => {
                let Some(ts) = ev
                    .deleted_ts
                    .or_else(|| ev.previous_message.as_ref().map(|p| p.ts.clone()))
                else {
                    return;
                };
                let author = match &ev.previous_message {
                    Some(p) if self.is_own(&p.sender).await => return,
                    Some(p) => Some(self.author(&p.sender).await),
                    None => None,
                };
                inbound
                    .publish(ChatEvent::delete(&self.name, &channel, ts.as_ref(), author))
                    .await;
            }
            None
            | Some(SlackMessageEventType::MeMessage)
            | Some(SlackMessageEventType::FileShare)
            | Some(SlackMessageEventType::ThreadBroadcast)
            | Some(SlackMessageEventType::BotMessage) => {
                if self.is_own(&ev.sender).await {
                    return;
                }
                let is_bot = ev.sender.bot_id.is_some()
                    || ev.subtype == Some(SlackMessageEventType::BotMessage);
                if is_bot && self.cfg.ignore_bots {
                    return;
                }
                let content = ev.content.as_ref();
                let mut text = self
                    .to_common(content.and_then(|c| c.text.as_deref()).unwrap_or(""))
                    .await;
                if ev.subtype == Some(SlackMessageEventType::MeMessage) && !text.is_empty() {
                    text = format!("*{text}*");
                }
                let ts = ev.origin.ts.to_string();
                let mut author = self.author(&ev.sender).await;
                author.bot = is_bot;
                let mut e = ChatEvent::message(&self.name, &channel, &ts, author, text);
                if let Some(t) = slack_ts_to_time(&ts) {
                    e.ts = t;
                }
                if let Some(thread) = ev.origin.thread_ts.as_ref().map(|t| t.to_string())
                    && thread != ts
                {
                    e.reply_to = Some(event::message_id(&self.name, &channel, &thread));
                }
                for f in content.and_then(|c| c.files.as_ref()).into_iter().flatten() {
                    if let Some(url) = f.permalink.as_ref().or(f.url_private.as_ref()) {
                        e.attachments.push(Attachment {
                            url: url.to_string(),
                            name: f
                                .name
                                .clone()
                                .or_else(|| f.title.clone())
                                .unwrap_or_else(|| "file".into()),
                            content_type: f.mimetype.as_ref().map(|m| m.to_string()),
                            size: None,
                        });
                    }
                }
                inbound.publish(e).await;
            }
            // Joins, topic changes and the like are not chat.
            Some(_) => {}
        }
    }

    fn map_err(&self, e: SlackClientError) -> DeliverError {
        match e {
            SlackClientError::RateLimitError(r) => {
                DeliverError::RateLimited(r.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            SlackClientError::ApiError(a) => match a.code.as_str() {
                "ratelimited" => DeliverError::RateLimited(Duration::from_secs(1)),
                "channel_not_found"
                | "not_in_channel"
                | "is_archived"
                | "msg_too_long"
                | "no_text"
                | "cant_update_message"
                | "cant_delete_message"
                | "message_not_found"
                | "restricted_action"
                | "invalid_blocks" => DeliverError::Reject(format!("slack: {}", a.code)),
                // Token problems are the operator's to fix; keep the messages.
                code => DeliverError::Retry(format!("slack: {code}")),
            },
            SlackClientError::HttpError(h)
                if h.status_code.is_client_error() && h.status_code.as_u16() != 408 =>
            {
                DeliverError::Reject(format!("slack: HTTP {}", h.status_code))
            }
            other => DeliverError::Retry(format!("slack: {other}")),
        }
    }

    async fn post(
        &self,
        d: &Delivery<'_>,
        parts: &[String],
        reply_to: Option<&Posted>,
    ) -> Result<Posted, DeliverError> {
        let session = self.client.open_session(&self.bot_token);
        let channel = SlackChannelId::new(d.channel.into());
        let thread = reply_to
            .and_then(|p| p.ids.first())
            .map(|ts| SlackTs::new(ts.clone()));
        let customize = self.customize.load(Ordering::Relaxed) && !d.combined;
        let author = d.event.author.as_ref();
        let mut ids = Vec::new();
        for part in parts {
            let mut req = SlackApiChatPostMessageRequest::new(
                channel.clone(),
                SlackMessageContent::new().with_text(part.clone()),
            )
            .opt_thread_ts(thread.clone())
            .with_unfurl_links(false);
            if customize {
                req = req
                    .with_username(slack_username(
                        d.event.author_name(),
                        &d.event.source.bridge,
                    ))
                    .opt_icon_url(
                        author
                            .and_then(|a| a.avatar_url.clone())
                            .filter(|u| u.starts_with("https://")),
                    );
            }
            match session.chat_post_message(&req).await {
                Ok(r) => ids.push(r.ts.to_string()),
                Err(SlackClientError::ApiError(a)) if customize && a.code == "missing_scope" => {
                    // No chat:write.customize: post with the template from now on.
                    tracing::warn!(
                        "slack refused a custom name and icon (add the chat:write.customize scope); posting with the format template"
                    );
                    self.customize.store(false, Ordering::Relaxed);
                    return Err(DeliverError::Retry("retrying without a custom name".into()));
                }
                Err(e) => return Err(self.map_err(e)),
            }
        }
        Ok(Posted {
            ids,
            extra: None,
            combined: None,
        })
    }

    async fn edit(
        &self,
        channel: &str,
        target: &Posted,
        parts: &[String],
    ) -> Result<Posted, DeliverError> {
        let session = self.client.open_session(&self.bot_token);
        for (i, ts) in target.ids.iter().enumerate() {
            let ch = SlackChannelId::new(channel.into());
            let ts = SlackTs::new(ts.clone());
            let r = match parts.get(i) {
                Some(p) => session
                    .chat_update(&SlackApiChatUpdateRequest::new(
                        ch,
                        SlackMessageContent::new().with_text(p.clone()),
                        ts,
                    ))
                    .await
                    .map(|_| ()),
                None => session
                    .chat_delete(&SlackApiChatDeleteRequest::new(ch, ts))
                    .await
                    .map(|_| ()),
            };
            match r {
                Ok(()) => {}
                Err(SlackClientError::ApiError(a)) if a.code == "message_not_found" => {}
                Err(e) => return Err(self.map_err(e)),
            }
        }
        Ok(target.clone())
    }

    async fn delete(&self, channel: &str, target: &Posted) -> Result<Posted, DeliverError> {
        let session = self.client.open_session(&self.bot_token);
        for ts in &target.ids {
            let req = SlackApiChatDeleteRequest::new(
                SlackChannelId::new(channel.into()),
                SlackTs::new(ts.clone()),
            );
            match session.chat_delete(&req).await {
                Ok(_) => {}
                Err(SlackClientError::ApiError(a)) if a.code == "message_not_found" => {}
                Err(e) => return Err(self.map_err(e)),
            }
        }
        Ok(target.clone())
    }
}

/// Slack error codes that mean the token itself is refused.
fn is_token_error(code: &str) -> bool {
    matches!(
        code,
        "invalid_auth"
            | "not_authed"
            | "account_inactive"
            | "token_revoked"
            | "token_expired"
            | "not_allowed_token_type"
    )
}

/// `&amp;` `&lt;` `&gt;` back to characters.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Plain Slack text (outside `<…>`) → common markup: entities unescaped, Slack's
/// `*bold*` and `_italic_` to their common forms, other markup characters escaped.
fn plain_to_common(s: &str) -> String {
    let s = unescape(s);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let boundary_before = i == 0 || !chars[i - 1].is_alphanumeric();
        if (c == '*' || c == '_')
            && boundary_before
            && let Some(end) = (i + 1..chars.len()).find(|&j| chars[j] == c)
            && end > i + 1
            && chars.get(end + 1).is_none_or(|n| !n.is_alphanumeric())
        {
            let inner: String = chars[i + 1..end].iter().collect();
            let inner = render::escape_markup(&inner);
            if c == '*' {
                out.push_str(&format!("**{inner}**"));
            } else {
                out.push_str(&format!("*{inner}*"));
            }
            i = end + 1;
            continue;
        }
        if c == '`'
            && let Some(end) = (i + 1..chars.len()).find(|&j| chars[j] == '`')
        {
            out.push('`');
            out.extend(&chars[i + 1..end]);
            out.push('`');
            i = end + 1;
            continue;
        }
        if ['\\', '*', '_', '`', '[', ']', '~'].contains(&c) {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Escape text for Slack: `&`, `<`, `>` become entities, so nothing from another
/// platform can form `<!channel>`, `<!here>`, `<@U…>` or a link.
pub fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Common markup → Slack mrkdwn, every piece of text escaped.
pub fn to_mrkdwn(markup: &str) -> String {
    fn spans(out: &mut String, list: &[Span]) {
        for s in list {
            match s {
                Span::Text(t) => out.push_str(&escape_slack(t)),
                Span::Bold(inner) => {
                    out.push('*');
                    spans(out, inner);
                    out.push('*');
                }
                Span::Italic(inner) => {
                    out.push('_');
                    spans(out, inner);
                    out.push('_');
                }
                Span::Code(c) => {
                    out.push('`');
                    out.push_str(&escape_slack(c));
                    out.push('`');
                }
                Span::Link { label, url } => {
                    let safe_url = url.starts_with("https://") || url.starts_with("http://");
                    let mut l = String::new();
                    spans(&mut l, label);
                    if safe_url && !url.contains(['|', '<', '>']) {
                        out.push_str(&format!("<{}|{}>", escape_slack(url), l.replace('|', "¦")));
                    } else {
                        out.push_str(&l);
                        out.push_str(" (");
                        out.push_str(&escape_slack(url));
                        out.push(')');
                    }
                }
            }
        }
    }
    let mut out = String::with_capacity(markup.len());
    spans(&mut out, &render::parse_markup(markup));
    out
}

/// `Name (twitch)`: Slack shows it as the poster's name (up to 80 characters).
fn slack_username(name: &str, bridge: &str) -> String {
    let name: String = render::single_line(name).chars().take(60).collect();
    let name = if name.trim().is_empty() {
        "someone".to_string()
    } else {
        name
    };
    format!("{name} ({bridge})")
}

/// A Slack `ts` ("1700000000.123456") as a time.
fn slack_ts_to_time(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let micros: u32 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    chrono::DateTime::from_timestamp(secs, micros * 1000)
}

/// What the Socket Mode callbacks reach through slack-morphism's user state.
struct ListenerState {
    bridge: Arc<SlackBridge>,
    inbound: Inbound,
    status: StatusReporter,
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let (bridge, inbound) = {
        let guard = states.read().await;
        let Some(st) = guard.get_user_state::<ListenerState>() else {
            return Ok(());
        };
        (st.bridge.clone(), st.inbound.clone())
    };
    if let SlackEventCallbackBody::Message(msg) = event.event {
        bridge.on_message(msg, &inbound).await;
    }
    Ok(())
}

// Generic over the event: slack-morphism does not export the hello event's type
// by name, and the callback's function-pointer type fixes it.
async fn on_hello<E>(
    _event: E,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) {
    let guard = states.read().await;
    if let Some(st) = guard.get_user_state::<ListenerState>() {
        st.status.connected();
    }
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    _states: SlackClientEventsUserState,
) -> http::StatusCode {
    tracing::warn!(error = %err, "slack socket mode error");
    // Acknowledge: the event is not lost to us (it is stored or dropped by
    // design), and a redelivery would only repeat the same failure.
    http::StatusCode::OK
}

/// Wraps the bridge so the callbacks can hold it.
pub struct SlackHandle(Arc<SlackBridge>);

impl SlackHandle {
    pub fn new(cfg: &BridgeConfig) -> Result<Self, String> {
        Ok(SlackHandle(Arc::new(SlackBridge::new(cfg)?)))
    }
}

#[async_trait]
impl Bridge for SlackHandle {
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
            return super::render_text_only(self, ev);
        }
        super::default_render(self, ev, channel)
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let b = &self.0;
        for (key, token) in [
            ("bot_token", &b.cfg.bot_token),
            ("app_token", &b.cfg.app_token),
        ] {
            if token.is_empty() {
                return Err(BridgeError::Auth(format!(
                    "{}.{key} is empty (set JETBRIDGE_{}__{})",
                    b.name,
                    b.name.to_uppercase(),
                    key.to_uppercase()
                )));
            }
        }
        let session = b.client.open_session(&b.bot_token);
        let me = match session.auth_test().await {
            Ok(r) => r,
            Err(SlackClientError::ApiError(a)) if is_token_error(&a.code) => {
                return Err(BridgeError::Auth(format!(
                    "Slack refused the bot token: {} (check {}.bot_token / JETBRIDGE_{}__BOT_TOKEN)",
                    a.code,
                    b.name,
                    b.name.to_uppercase()
                )));
            }
            Err(e) => {
                return Err(BridgeError::Connection(format!(
                    "cannot reach the Slack API at {}: {e}",
                    b.cfg.api_url
                )));
            }
        };
        *b.me.write().await = Some((me.user_id.to_string(), me.bot_id.map(|x| x.to_string())));

        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_hello_events(on_hello)
            .with_push_events(on_push);
        let env = Arc::new(
            SlackClientEventsListenerEnvironment::new(b.client.clone())
                .with_error_handler(on_error)
                .with_user_state(ListenerState {
                    bridge: b.clone(),
                    inbound: ctx.inbound.clone(),
                    status: ctx.status.clone(),
                }),
        );
        let listener =
            SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), env, callbacks);
        let app_token = SlackApiToken::new(b.cfg.app_token.expose().into());
        if let Err(e) = listener.listen_for(&app_token).await {
            return Err(match e {
                SlackClientError::ApiError(a) if is_token_error(&a.code) => {
                    BridgeError::Auth(format!(
                        "Slack refused the app token: {} (check {}.app_token / JETBRIDGE_{}__APP_TOKEN, an xapp- token with connections:write)",
                        a.code,
                        b.name,
                        b.name.to_uppercase()
                    ))
                }
                other => BridgeError::Connection(format!("slack socket mode: {other}")),
            });
        }
        listener.start().await;
        ctx.shutdown.cancelled().await;
        listener.shutdown().await;
        Ok(())
    }

    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverError> {
        match &d.action {
            // Rendered for a custom name, but Slack refused that since: the
            // template has to carry the name now.
            Action::Post { reply_to, .. }
                if !d.combined && !self.0.customize.load(Ordering::Relaxed) =>
            {
                let parts = super::default_render(self, d.event, d.channel);
                self.0.post(&d, &parts, *reply_to).await
            }
            Action::Post { parts, reply_to } => self.0.post(&d, parts, *reply_to).await,
            Action::Edit { target, parts } => self.0.edit(d.channel, target, parts).await,
            Action::Delete { target } => self.0.delete(d.channel, target).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_from_elsewhere_can_ping_on_slack() {
        assert_eq!(
            to_mrkdwn("<!channel> <!here> <@U123> & co"),
            "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &amp; co"
        );
        assert_eq!(
            to_mrkdwn("**bold** *it* `c<d>`"),
            "*bold* _it_ `c&lt;d&gt;`"
        );
        assert_eq!(to_mrkdwn("[docs](https://x.y/a)"), "<https://x.y/a|docs>");
        assert_eq!(
            to_mrkdwn("[x](javascript:alert(1))"),
            "x (javascript:alert(1))"
        );
    }

    #[test]
    fn mrkdwn_plain_parts_become_common_markup() {
        assert_eq!(plain_to_common("a &amp; b &lt;3"), "a & b <3");
        assert_eq!(plain_to_common("*bold* and _it_"), "**bold** and *it*");
        assert_eq!(plain_to_common("snake_case 2*3"), "snake\\_case 2\\*3");
    }

    #[test]
    fn slack_ts_parses() {
        let t = slack_ts_to_time("1700000000.123456").unwrap();
        assert_eq!(t.timestamp_millis(), 1_700_000_000_123);
    }
}
