//! The Twitch bridge, on twitch-irc (unmodified): IRC over TCP or TLS to the
//! configured `server`, PRIVMSG in as `message` events, CLEARMSG in as `delete`,
//! PRIVMSG out with control characters stripped and commands defused.
//!
//! twitch-irc dials Twitch through `MakeConnection::new_socket()`, an associated
//! function with no arguments, so the configured address cannot be passed in as a
//! value. We give it a family of connector types `Dial<N>` whose slot `N` in a
//! process-wide table holds the address; a bridge claims a slot for as long as it
//! runs. Pacing and order are the router's; this file keeps twitch-irc from
//! reordering (one pooled connection) and ignores our own login inbound.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use futures::task::AtomicWaker;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::either::Either;
use twitch_irc::login::StaticLoginCredentials;
use twitch_irc::message::{ClearChatAction, ServerMessage};
use twitch_irc::transport::tcp::{MakeConnection, TCPTransport, TCPTransportConnectError};
use twitch_irc::{ClientConfig, TwitchIRCClient};

use super::{Action, Bridge, BridgeContext, BridgeError, DeliverError, Delivery, OutboundSpec};
use crate::bus::Posted;
use crate::config::{BridgeConfig, CommonBridgeConfig, Secret};
use crate::event::{self, Author, ChatEvent, Emote};
use crate::ratelimit::Rate;
use crate::render;

/// `[twitch]` / `[bridges.<name>]` with `platform = "twitch"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwitchConfig {
    /// Bot account login; empty = anonymous read-only (justinfan…).
    pub login: String,
    /// OAuth token, `oauth:…` or bare.
    pub token: Secret,
    /// `host:port` of the IRC server.
    pub server: String,
    /// Use TLS to the server.
    pub tls: bool,
}

impl Default for TwitchConfig {
    fn default() -> Self {
        TwitchConfig {
            login: String::new(),
            token: Secret::default(),
            server: "irc.chat.twitch.tv:6697".into(),
            tls: true,
        }
    }
}

impl TwitchConfig {
    pub fn parse(settings: &Value) -> Result<Self, String> {
        let cfg = TwitchConfig::deserialize(settings.clone()).map_err(|e| e.to_string())?;
        if !cfg.login.is_empty() && cfg.token.is_empty() {
            return Err(
                "login is set but token is empty (set token, e.g. via JETBRIDGE_TWITCH__TOKEN)"
                    .into(),
            );
        }
        if split_host_port(&cfg.server).is_none() {
            return Err(format!(
                "server {:?} is not host:port (e.g. \"irc.chat.twitch.tv:6697\")",
                cfg.server
            ));
        }
        Ok(cfg)
    }

    pub fn is_anonymous(&self) -> bool {
        self.login.is_empty()
    }
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// `#Streamer` / `streamer` → `#streamer`; logins are 1–25 of `[a-z0-9_]`.
pub fn normalize_channel(channel: &str) -> Result<String, String> {
    let login = channel.strip_prefix('#').unwrap_or(channel).to_lowercase();
    let ok = !login.is_empty()
        && login.len() <= 25
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("#{login}"))
    } else {
        Err(format!(
            "{channel:?} is not a Twitch channel (expected \"#login\", 1-25 of a-z 0-9 _)"
        ))
    }
}

// ---------------------------------------------------------------------------
// Dialing the configured server.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    tls: bool,
}

const SLOTS: usize = 8;

/// What slot `N` dials, and the read gate of its connection.
struct Slot {
    endpoint: Endpoint,
    gate: Arc<ReadGate>,
}

static SLOT_TABLE: Mutex<[Option<Slot>; SLOTS]> = Mutex::new([const { None }; SLOTS]);

/// A claimed slot; releases it on drop.
struct SlotGuard(usize);

impl SlotGuard {
    /// A slot of its own for one running bridge (its gate is its own too).
    fn claim(endpoint: &Endpoint, gate: Arc<ReadGate>) -> Option<SlotGuard> {
        let mut slots = SLOT_TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let i = slots.iter().position(Option::is_none)?;
        slots[i] = Some(Slot {
            endpoint: endpoint.clone(),
            gate,
        });
        Some(SlotGuard(i))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut slots = SLOT_TABLE.lock().unwrap_or_else(|e| e.into_inner());
        slots[self.0] = None;
    }
}

fn slot(n: usize) -> Result<(Endpoint, Arc<ReadGate>), TCPTransportConnectError> {
    let slots = SLOT_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    slots[n]
        .as_ref()
        .map(|s| (s.endpoint.clone(), s.gate.clone()))
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotConnected, "twitch endpoint released").into()
        })
}

type Socket = Gated<Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>>;

/// twitch-irc connector for the endpoint in slot `N`.
struct Dial<const N: usize>;

#[async_trait]
impl<const N: usize> MakeConnection for Dial<N> {
    type Socket = Socket;

    async fn new_socket() -> Result<Socket, TCPTransportConnectError> {
        let (ep, gate) = slot(N)?;
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port)).await?;
        tcp.set_nodelay(true)?;
        let inner = if ep.tls {
            let connector = tokio_rustls::TlsConnector::from(tls_config());
            let name = rustls_pki_types::ServerName::try_from(ep.host.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            Either::Right(connector.connect(name, tcp).await?)
        } else {
            Either::Left(tcp)
        };
        gate.connected();
        Ok(Gated { inner, gate })
    }
}

// ---------------------------------------------------------------------------
// Read-side backpressure.

/// Lines read but not yet taken by the bridge at which reading stops, and
/// where it starts again.
const GATE_HIGH: u64 = 1024;
const GATE_LOW: u64 = 256;

/// Read-side backpressure for one connection. twitch-irc reads its socket into
/// unbounded channels of parsed messages (a few KiB each). When the bridge falls
/// behind (a burst faster than JetStream takes it), reading stops `GATE_HIGH`
/// lines ahead of it, so the rest of the burst waits in the kernel's socket
/// buffers and then the server's, not in our memory. twitch-irc hands every line
/// on as one message, so lines read minus messages taken is the backlog.
struct ReadGate {
    bridge: String,
    read: AtomicU64,
    taken: AtomicU64,
    /// `taken` when the bridge last looked at an idle moment (see `idle`).
    taken_at_idle: AtomicU64,
    waker: AtomicWaker,
    /// Reading is stopped (for counting pauses, not for deciding).
    paused: AtomicBool,
}

impl ReadGate {
    fn new(bridge: &str) -> ReadGate {
        ReadGate {
            bridge: bridge.to_string(),
            read: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            taken_at_idle: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            paused: AtomicBool::new(false),
        }
    }

    fn backlog(&self) -> u64 {
        let read = self.read.load(Ordering::Acquire);
        read.saturating_sub(self.taken.load(Ordering::Acquire))
    }

    /// A new connection: what the old one left unread is gone with it.
    fn connected(&self) {
        self.read.store(0, Ordering::Release);
        self.taken.store(0, Ordering::Release);
        self.taken_at_idle.store(0, Ordering::Release);
    }

    /// Whether the socket may be read now; if not, `cx` is woken when it may.
    fn poll_open(&self, cx: &mut std::task::Context<'_>) -> bool {
        if self.backlog() < GATE_HIGH {
            self.paused.store(false, Ordering::Relaxed);
            return true;
        }
        self.waker.register(cx.waker());
        // Taken meanwhile? Then do not wait for a wake that already happened.
        if self.backlog() < GATE_HIGH {
            return true;
        }
        if !self.paused.swap(true, Ordering::Relaxed) {
            tracing::debug!(backlog = self.backlog(), "bridge behind: pausing reads");
            metrics::counter!("jetbridge_inbound_read_paused_total", "bridge" => self.bridge.clone())
                .increment(1);
        }
        false
    }

    fn count(&self, bytes: &[u8]) {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        if lines > 0 {
            self.read.fetch_add(lines, Ordering::AcqRel);
        }
    }

    /// The bridge took one message.
    fn took(&self) {
        self.taken.fetch_add(1, Ordering::AcqRel);
        if self.backlog() <= GATE_LOW {
            self.waker.wake();
        }
    }

    /// The bridge has nothing waiting. If reading is stopped and nothing was
    /// taken since the last such look, the count is off (a line that did not
    /// become a message): forgive it rather than stop reading for good.
    fn idle(&self) {
        let taken = self.taken.load(Ordering::Acquire);
        let stuck = self.taken_at_idle.swap(taken, Ordering::AcqRel) == taken;
        if stuck && self.backlog() >= GATE_HIGH {
            tracing::warn!(
                backlog = self.backlog(),
                "read gate count drifted; reopening"
            );
            self.taken
                .store(self.read.load(Ordering::Acquire), Ordering::Release);
            self.waker.wake();
        }
    }
}

/// A socket whose reads wait at the gate.
struct Gated<S> {
    inner: S,
    gate: Arc<ReadGate>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.gate.poll_open(cx) {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.gate.count(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn tls_config() -> Arc<tokio_rustls::rustls::ClientConfig> {
    use std::sync::OnceLock;
    use tokio_rustls::rustls;
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            // The ring provider supports the default protocol versions.
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// The part of a twitch-irc client the bridge uses, without its type parameters.
#[async_trait]
trait Client: Send + Sync {
    async fn privmsg(&self, login: String, text: String) -> Result<(), String>;
    async fn joined(&self, login: String) -> bool;
}

#[async_trait]
impl<const N: usize> Client for TwitchIRCClient<TCPTransport<Dial<N>>, StaticLoginCredentials> {
    async fn privmsg(&self, login: String, text: String) -> Result<(), String> {
        TwitchIRCClient::privmsg(self, login, text)
            .await
            .map_err(|e| e.to_string())
    }
    async fn joined(&self, login: String) -> bool {
        self.get_channel_status(login).await == (true, true)
    }
}

// ---------------------------------------------------------------------------

pub struct TwitchBridge {
    name: String,
    common: CommonBridgeConfig,
    cfg: TwitchConfig,
    endpoint: Endpoint,
    client: tokio::sync::RwLock<Option<Arc<dyn Client>>>,
}

impl TwitchBridge {
    pub fn new(cfg: &BridgeConfig) -> Result<Self, String> {
        let tcfg = TwitchConfig::parse(&cfg.settings)?;
        let (host, port) = split_host_port(&tcfg.server)
            .ok_or_else(|| format!("server {:?} is not host:port", tcfg.server))?;
        Ok(TwitchBridge {
            name: cfg.name.clone(),
            common: cfg.common.clone(),
            endpoint: Endpoint {
                host,
                port,
                tls: tcfg.tls,
            },
            cfg: tcfg,
            client: tokio::sync::RwLock::new(None),
        })
    }

    fn credentials(&self) -> StaticLoginCredentials {
        if self.cfg.is_anonymous() {
            StaticLoginCredentials::anonymous()
        } else {
            // twitch-irc adds `oauth:` itself.
            let token = self.cfg.token.expose();
            let token = token.strip_prefix("oauth:").unwrap_or(token);
            StaticLoginCredentials::new(self.cfg.login.to_lowercase(), Some(token.to_string()))
        }
    }

    fn client_config(&self) -> ClientConfig<StaticLoginCredentials> {
        let mut config = ClientConfig::new_simple(self.credentials());
        // twitch-irc opens another connection when one is "busy" (more than
        // `max_waiting` sends within `time_per_message` each) or holds many
        // channels, and rotates sends across connections, which can reorder one
        // channel's messages. With no time per message a connection is never busy,
        // so one connection carries every channel in order; our router paces.
        // (`max_waiting` is doubled inside twitch-irc: keep it small.)
        config.max_channels_per_connection = usize::MAX;
        config.time_per_message = Duration::ZERO;
        config.max_waiting_messages_per_connection = 64;
        config.connect_timeout = Duration::from_secs(10);
        config.tracing_identifier = Some(self.name.clone().into());
        config
    }

    async fn run_with<const N: usize>(
        &self,
        ctx: BridgeContext,
        gate: &ReadGate,
    ) -> Result<(), BridgeError> {
        let (mut incoming, client) =
            TwitchIRCClient::<TCPTransport<Dial<N>>, _>::new(self.client_config());
        let wanted: HashSet<String> = ctx
            .channels
            .iter()
            .map(|(c, _)| c.trim_start_matches('#').to_string())
            .collect();
        client
            .set_wanted_channels(wanted.clone())
            .map_err(|e| BridgeError::Connection(format!("invalid channel: {e}")))?;
        let shared: Arc<dyn Client> = Arc::new(client.clone());
        *self.client.write().await = Some(shared.clone());
        let _clear = ClearOnDrop(&self.client);

        let own_login = self.cfg.login.to_lowercase();
        let mut recent = Recent::default();
        let mut check = tokio::time::interval(Duration::from_millis(250));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut all_joined = false;
        ctx.status
            .connecting(format!("joining {} channels", wanted.len()));
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                msg = incoming.recv() => {
                    let Some(msg) = msg else {
                        return Err(BridgeError::Connection("twitch client stopped".into()));
                    };
                    self.handle(msg, &own_login, &mut recent, &ctx).await?;
                    gate.took();
                }
                _ = check.tick() => {
                    if incoming.is_empty() {
                        gate.idle();
                    }
                    let mut joined = 0;
                    for login in &wanted {
                        if shared.joined(login.clone()).await {
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

    async fn handle(
        &self,
        msg: ServerMessage,
        own_login: &str,
        recent: &mut Recent,
        ctx: &BridgeContext,
    ) -> Result<(), BridgeError> {
        match msg {
            ServerMessage::Privmsg(m) => {
                // Our own posts come back on other connections and from other
                // instances with the same login; never re-publish them.
                if !own_login.is_empty() && m.sender.login.eq_ignore_ascii_case(own_login) {
                    return Ok(());
                }
                let channel = format!("#{}", m.channel_login);
                let ev = privmsg_to_event(&self.name, &m);
                recent.remember(&channel, &m.sender.login, &m.message_id);
                ctx.inbound.publish(ev).await;
            }
            ServerMessage::ClearChat(m) => {
                // A timeout or ban removes the user's messages from chat: delete
                // the ones we relayed.
                let login = match &m.action {
                    ClearChatAction::UserBanned { user_login, .. }
                    | ClearChatAction::UserTimedOut { user_login, .. } => user_login.clone(),
                    ClearChatAction::ChatCleared => {
                        tracing::info!(channel = %m.channel_login, "chat cleared by a moderator");
                        return Ok(());
                    }
                };
                let channel = format!("#{}", m.channel_login);
                for id in recent.take_user(&channel, &login) {
                    let author = Author {
                        id: login.clone(),
                        name: login.clone(),
                        ..Default::default()
                    };
                    let mut ev = ChatEvent::delete(&self.name, &channel, &id, Some(author));
                    ev.ts = m.server_timestamp;
                    ctx.inbound.publish(ev).await;
                }
            }
            ServerMessage::ClearMsg(m) => {
                let channel = format!("#{}", m.channel_login);
                let author = Author {
                    id: m.sender_login.clone(),
                    name: m.sender_login.clone(),
                    ..Default::default()
                };
                let mut ev = ChatEvent::delete(&self.name, &channel, &m.message_id, Some(author));
                ev.ts = m.server_timestamp;
                ctx.inbound.publish(ev).await;
            }
            ServerMessage::Notice(n) => {
                let text = n.message_text.to_lowercase();
                if n.channel_login.is_none()
                    && (text.contains("login authentication failed")
                        || text.contains("improperly formatted auth")
                        || text.contains("invalid nick"))
                {
                    return Err(BridgeError::Auth(format!(
                        "Twitch refused the login of {:?}: {} (check {}.token: a chat OAuth token for that login)",
                        self.cfg.login, n.message_text, self.name
                    )));
                }
                tracing::info!(channel = ?n.channel_login, notice = %n.message_text, "twitch notice");
            }
            _ => {}
        }
        Ok(())
    }
}

/// A Twitch PRIVMSG as a `message` event of bridge `bridge` (room unset).
pub fn privmsg_to_event(bridge: &str, m: &twitch_irc::message::PrivmsgMessage) -> ChatEvent {
    let channel = format!("#{}", m.channel_login);
    // Twitch text is plain: markup characters are escaped, not interpreted.
    let text = render::escape_markup(&m.message_text);
    let text = if m.is_action && !text.is_empty() {
        format!("*{text}*")
    } else {
        text
    };
    let author = Author {
        id: m.sender.id.clone(),
        name: m.sender.name.clone(),
        avatar_url: None,
        color: m
            .name_color
            .map(|c| format!("#{:02X}{:02X}{:02X}", c.r, c.g, c.b)),
        bot: false,
    };
    let mut ev = ChatEvent::message(bridge, &channel, &m.message_id, author, text);
    ev.ts = m.server_timestamp;
    ev.reply_to = m
        .reply_parent
        .as_ref()
        .map(|p| event::message_id(bridge, &channel, &p.message_id));
    let mut seen = HashSet::new();
    for e in &m.emotes {
        if seen.insert(e.code.clone()) {
            ev.emotes.push(Emote {
                name: e.code.clone(),
                url: format!(
                    "https://static-cdn.jtvnw.net/emoticons/v2/{}/default/dark/1.0",
                    e.id
                ),
            });
        }
    }
    ev
}

/// Recent message ids per channel and author, so that a ban or timeout
/// (CLEARCHAT) can delete what that user said. Bounded per channel.
#[derive(Default)]
struct Recent {
    channels: std::collections::HashMap<String, std::collections::VecDeque<(String, String)>>,
}

const RECENT_PER_CHANNEL: usize = 500;

impl Recent {
    fn remember(&mut self, channel: &str, login: &str, id: &str) {
        let q = self.channels.entry(channel.to_string()).or_default();
        if q.len() == RECENT_PER_CHANNEL {
            q.pop_front();
        }
        q.push_back((login.to_lowercase(), id.to_string()));
    }

    fn take_user(&mut self, channel: &str, login: &str) -> Vec<String> {
        let login = login.to_lowercase();
        let Some(q) = self.channels.get_mut(channel) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        q.retain(|(l, id)| {
            if *l == login {
                ids.push(id.clone());
                false
            } else {
                true
            }
        });
        ids
    }
}

/// Forget the client when `run` ends, so deliveries wait for the next connection.
struct ClearOnDrop<'a>(&'a tokio::sync::RwLock<Option<Arc<dyn Client>>>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.try_write() {
            *c = None;
        }
    }
}

macro_rules! run_in_slot {
    ($self:ident, $ctx:ident, $gate:ident, $slot:expr, $($n:literal),*) => {
        match $slot {
            $($n => $self.run_with::<$n>($ctx, &$gate).await,)*
            _ => unreachable!("slot index is below SLOTS"),
        }
    };
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
            joiner: " | ",
            default_format: "[{bridge}] {name}: {text}",
        }
    }

    fn render_name(&self, name: &str) -> String {
        render::single_line(name)
    }

    fn render_text(&self, markup: &str) -> String {
        render::single_line(&render::markup_to_plain(markup))
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let gate = Arc::new(ReadGate::new(&self.name));
        let guard = SlotGuard::claim(&self.endpoint, gate.clone()).ok_or_else(|| {
            BridgeError::Connection(format!("more than {SLOTS} Twitch bridges in one process"))
        })?;
        let slot = guard.0;
        run_in_slot!(self, ctx, gate, slot, 0, 1, 2, 3, 4, 5, 6, 7)
    }

    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverError> {
        let parts = match d.action {
            Action::Post { parts, .. } => parts,
            // Twitch cannot edit, and we do not learn the ids of our own messages
            // to delete them: both are no-ops.
            Action::Edit { .. } | Action::Delete { .. } => return Ok(Posted::default()),
        };
        if self.cfg.is_anonymous() {
            return Err(DeliverError::Reject(
                "the twitch login is anonymous (read-only)".into(),
            ));
        }
        let client = self
            .client
            .read()
            .await
            .clone()
            .ok_or_else(|| DeliverError::Retry("not connected to twitch".into()))?;
        let login = d.channel.trim_start_matches('#').to_string();
        for part in parts {
            let line = guard_command(&render::single_line(&part));
            if line.is_empty() {
                continue;
            }
            client
                .privmsg(login.clone(), line)
                .await
                .map_err(DeliverError::Retry)?;
        }
        Ok(Posted::default())
    }
}

/// A PRIVMSG starting with `/` or `.` runs as a chat command (`/ban`, `.clear`).
/// The same guard twitch-irc's `say()` uses: a leading `. ` is shown as the text.
fn guard_command(line: &str) -> String {
    if line.starts_with('/') || line.starts_with('.') {
        format!(". {line}")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_normalize() {
        assert_eq!(normalize_channel("#Streamer").unwrap(), "#streamer");
        assert_eq!(normalize_channel("streamer_2").unwrap(), "#streamer_2");
        assert!(normalize_channel("#bad.name").is_err());
        assert!(normalize_channel("#").is_err());
    }

    #[test]
    fn commands_are_defused() {
        assert_eq!(guard_command("/ban x"), ". /ban x");
        assert_eq!(guard_command(".clear"), ". .clear");
        assert_eq!(guard_command("[discord] a: /ban x"), "[discord] a: /ban x");
    }
}
