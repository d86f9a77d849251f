//! A fake Discord: the REST routes the bridge and serenity call (gateway/bot,
//! channels, roles, messages, webhooks) and a Gateway v10 websocket (HELLO,
//! IDENTIFY with token check, READY, heartbeat ACK, RESUME, dispatches). Every
//! REST request is recorded with its time; failures (429 with `retry_after`,
//! 5xx) can be scripted; webhook names are checked against Discord's rules.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::platform::{Change, FakePlatform, Post};

pub const BOT_ID: &str = "900000000000000001";
pub const APP_ID: &str = "900000000000000002";
pub const GUILD_ID: &str = "900000000000000003";

/// One REST request as received.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// The channel a message post or edit goes into (resolved for webhooks).
    pub channel: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct State_ {
    requests: Mutex<Vec<Req>>,
    /// Scripted answers for the next message posts (status, body).
    failures: Mutex<VecDeque<(u16, Value)>>,
    /// Answers for the next reads of a channel's history (an outage, 429s).
    history_failures: Mutex<VecDeque<(u16, Value)>>,
    /// Every message post fails with this status until then.
    down_until: Mutex<Option<(Instant, u16)>>,
    /// Posts whose content holds this text fail with this status until then.
    fail_containing: std::sync::Mutex<Option<(String, Instant, u16)>>,
    /// Thread channels by id (a thread's id is its starter message's).
    threads: std::sync::Mutex<HashMap<String, Value>>,
    /// Forum channels.
    forums: std::sync::Mutex<std::collections::HashSet<String>>,
    /// When each channel last took a reaction (Discord's bucket: one per
    /// 250 ms per channel; faster ones get a 429).
    reaction_at: std::sync::Mutex<HashMap<String, Instant>>,
    /// Webhooks by id: (channel, token).
    webhooks: Mutex<HashMap<String, (String, String)>>,
    gateway: Mutex<Vec<mpsc::UnboundedSender<String>>>,
    /// New gateway connections are dropped until then (an outage).
    gateway_down_until: std::sync::Mutex<Option<Instant>>,
    /// Events with no gateway client connected are only in history (as on
    /// Discord) instead of failing the test (see `keep_events_while_away`).
    keep_while_away: std::sync::atomic::AtomicBool,
    /// Sessions ended by an outage: a RESUME is answered with INVALID_SESSION.
    sessions_invalid: std::sync::atomic::AtomicBool,
    /// Every message of each channel, oldest first (what history serves).
    history: std::sync::Mutex<HashMap<String, Vec<Value>>>,
    /// Attachment bytes by CDN path (`/attachments/<channel>/<id>/<name>`).
    files: std::sync::Mutex<HashMap<String, Vec<u8>>>,
    identified: Mutex<Vec<Value>>,
    changed: Notify,
    next_id: AtomicU64,
    seq: AtomicU64,
}

pub struct FakeDiscord {
    pub rest: SocketAddr,
    pub token: String,
    st: Arc<State_>,
}

impl FakeDiscord {
    pub async fn start(token: &str) -> FakeDiscord {
        let rest_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest = rest_l.local_addr().unwrap();
        let gateway = gw_l.local_addr().unwrap();
        let st = Arc::new(State_ {
            next_id: AtomicU64::new(0),
            ..Default::default()
        });
        let app_state = AppState {
            st: st.clone(),
            token: token.to_string(),
            gateway,
            rest,
        };
        let app = Router::new().fallback(rest_handler).with_state(app_state);
        tokio::spawn(async move {
            let _ = axum::serve(rest_l, app).await;
        });
        let gst = st.clone();
        let tok = token.to_string();
        tokio::spawn(async move {
            while let Ok((sock, _)) = gw_l.accept().await {
                let down = gst
                    .gateway_down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| Instant::now() < t);
                if down {
                    drop(sock);
                    continue;
                }
                tokio::spawn(gateway_conn(sock, gst.clone(), tok.clone(), gateway));
            }
        });
        FakeDiscord {
            rest,
            token: token.to_string(),
            st,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    pub fn snowflake(&self) -> String {
        snowflake(&self.st).to_string()
    }

    /// Answer the next `n` message posts with `status` and `body`.
    pub async fn fail_next(&self, n: usize, status: u16, body: Value) {
        let mut f = self.st.failures.lock().await;
        for _ in 0..n {
            f.push_back((status, body.clone()));
        }
    }

    /// Answer every message post with `status` for `d` (an outage).
    pub async fn down_for(&self, d: Duration, status: u16) {
        *self.st.down_until.lock().await = Some((Instant::now() + d, status));
    }

    /// End an outage begun with [`down_for`](Self::down_for).
    pub async fn up(&self) {
        *self.st.down_until.lock().await = None;
    }

    /// Answer posts whose content contains `needle` with `status` for `d`.
    pub async fn fail_containing(&self, needle: &str, status: u16, d: Duration) {
        *self.st.fail_containing.lock().unwrap() =
            Some((needle.to_string(), Instant::now() + d, status));
    }

    pub async fn requests(&self) -> Vec<Req> {
        self.st.requests.lock().await.clone()
    }

    /// Successful and failed posts of messages into `channel` (bot or webhook).
    pub async fn posts(&self, channel: &str) -> Vec<Req> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| is_post(r, channel))
            .collect()
    }

    /// Wait until `cond` holds over the recorded requests.
    pub async fn wait_for<F: FnMut(&[Req]) -> bool>(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: F,
    ) -> Vec<Req> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.st.changed.notified();
            {
                let r = self.st.requests.lock().await;
                if cond(&r) {
                    return r.clone();
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let r = self.requests().await;
                    panic!("timed out waiting for {what}; requests: {:#?}", r.iter().map(|q| format!("{} {} {}", q.method, q.path, q.body)).collect::<Vec<_>>());
                }
            }
        }
    }

    /// Wait for `n` successful message posts into `channel`; returns their bodies.
    pub async fn wait_posts(&self, channel: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let ok = |r: &Req| is_post(r, channel) && r.body.get("_status").is_none();
        self.wait_for(&format!("{n} posts into {channel}"), timeout, |rs| {
            rs.iter().filter(|r| ok(r)).count() >= n
        })
        .await
        .into_iter()
        .filter(|r| ok(r))
        .map(|r| r.body)
        .collect()
    }

    /// Wait until a gateway client identified; returns its IDENTIFY payload.
    pub async fn wait_identified(&self, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.st.changed.notified();
            let last = self.st.identified.lock().await.last().cloned();
            if let Some(v) = last
                && !self.st.gateway.lock().await.is_empty()
            {
                return v;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => panic!("no gateway client identified"),
            }
        }
    }

    /// From now on, what happens while no gateway client is connected is
    /// only in the channel's history, as on Discord (a soak's outages); by
    /// default it fails the test that did it.
    #[allow(dead_code)] // the soak's (bench/faults.rs); tests fail on it instead
    pub fn keep_events_while_away(&self) {
        self.st.keep_while_away.store(true, Ordering::SeqCst);
    }

    /// Send a dispatch to every connected gateway client.
    pub async fn dispatch(&self, t: &str, d: Value) {
        if t == "MESSAGE_CREATE" {
            self.remember(&d);
        }
        let s = self.st.seq.fetch_add(1, Ordering::SeqCst) + 2;
        let frame = json!({ "op": 0, "t": t, "s": s, "d": d }).to_string();
        let conns = self.st.gateway.lock().await;
        if conns.is_empty() && self.st.keep_while_away.load(Ordering::SeqCst) {
            return;
        }
        assert!(!conns.is_empty(), "no gateway client connected");
        for c in conns.iter() {
            let _ = c.send(frame.clone());
        }
    }

    /// A MESSAGE_CREATE from a user; returns the message id.
    pub async fn user_message(
        &self,
        channel: &str,
        user_id: &str,
        name: &str,
        content: &str,
        extra: Value,
    ) -> String {
        let id = self.snowflake();
        let mut d = message_json(
            &id,
            channel,
            json!({
                "id": user_id, "username": name.to_lowercase(), "global_name": name,
                "discriminator": "0", "avatar": "a_0123456789abcdef0123456789abcdef", "bot": false
            }),
            content,
        );
        merge(&mut d, extra);
        self.dispatch("MESSAGE_CREATE", d).await;
        id
    }

    fn remember(&self, message: &Value) {
        remember(&self.st, message);
    }

    /// Make `channel` a forum channel.
    pub fn forum(&self, channel: &str) {
        self.st.forums.lock().unwrap().insert(channel.to_string());
    }

    /// `user` opens a forum post titled `title` in forum `forum`: a thread
    /// whose first message (with the thread's id) says `text`.
    pub async fn forum_post(&self, forum: &str, user: &str, title: &str, text: &str) -> String {
        let id = self.snowflake();
        let thread = thread_json(&id, forum, title);
        self.st
            .threads
            .lock()
            .unwrap()
            .insert(id.clone(), thread.clone());
        self.dispatch("THREAD_CREATE", thread).await;
        let mut d = message_json(
            &id,
            &id,
            json!({"id": user_id(user), "username": user, "global_name": user,
                   "discriminator": "0", "avatar": null, "bot": false}),
            text,
        );
        d["position"] = json!(0);
        self.dispatch("MESSAGE_CREATE", d).await;
        id
    }

    /// `user` starts a thread of `kind` (10 announcement, 11 public, 12
    /// private) named `name` in channel `channel` without a message to start
    /// it on; returns its id.
    pub async fn thread_without_message(
        &self,
        channel: &str,
        kind: u64,
        user: &str,
        name: &str,
    ) -> String {
        let id = self.snowflake();
        let mut thread = thread_json(&id, channel, name);
        thread["type"] = json!(kind);
        thread["owner_id"] = json!(user_id(user));
        self.st
            .threads
            .lock()
            .unwrap()
            .insert(id.clone(), thread.clone());
        self.dispatch("THREAD_CREATE", thread).await;
        id
    }

    /// `user` says `text` in thread `thread`; returns the message id.
    pub async fn say_in_thread(&self, thread: &str, user: &str, text: &str) -> String {
        self.user_message(thread, &user_id(user), user, text, json!({}))
            .await
    }

    /// The thread started on message `id`, if one was.
    pub fn thread_of(&self, id: &str) -> Option<Value> {
        self.st.threads.lock().unwrap().get(id).cloned()
    }

    /// A message from `name` that arrives while no gateway client is there
    /// (jetbridge is away): it is only in the channel's history.
    pub fn message_while_away(&self, channel: &str, name: &str, content: &str) -> String {
        let id = self.snowflake();
        let m = message_json(&id, channel, user_json(name), content);
        self.remember(&m);
        id
    }

    /// A post of jetbridge's own (through its webhook, as it posts copies)
    /// made while no gateway client is there: only in history.
    pub fn copy_while_away(&self, channel: &str, name: &str, content: &str) -> String {
        let id = self.snowflake();
        let mut m = message_json(
            &id,
            channel,
            json!({"id": "800000000000000001", "username": name, "discriminator": "0000", "avatar": null, "bot": true}),
            content,
        );
        m["webhook_id"] = json!("800000000000000001");
        m["application_id"] = json!(APP_ID);
        self.remember(&m);
        id
    }

    /// Message `id` edited where no gateway client sees it: history has the
    /// new content and `edited_timestamp` (now).
    pub fn edit_while_away(&self, channel: &str, id: &str, content: &str) {
        let edited = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        let mut history = self.st.history.lock().unwrap();
        if let Some(m) = history
            .get_mut(channel)
            .and_then(|all| all.iter_mut().find(|m| m["id"] == id))
        {
            m["content"] = json!(content);
            m["edited_timestamp"] = json!(edited);
        }
    }

    /// Message `id` deleted where no gateway client sees it: gone from history.
    pub fn delete_while_away(&self, channel: &str, id: &str) {
        if let Some(all) = self.st.history.lock().unwrap().get_mut(channel) {
            all.retain(|m| m["id"] != id);
        }
    }

    /// Answer the next `n` reads of a channel's history with `status` and `body`.
    pub async fn fail_history(&self, n: usize, status: u16, body: Value) {
        let mut f = self.st.history_failures.lock().await;
        for _ in 0..n {
            f.push_back((status, body.clone()));
        }
    }

    /// Close every gateway connection, drop new ones for `d`, and end the
    /// sessions (a RESUME after it is refused, as after a long outage).
    pub async fn gateway_down_for(&self, d: Duration) {
        *self.st.gateway_down_until.lock().unwrap() = Some(Instant::now() + d);
        self.st
            .sessions_invalid
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.st.gateway.lock().await.drain(..) {
            let _ = c.send("__close_1001".into());
        }
        self.st.changed.notify_waiters();
    }

    /// End a gateway outage begun with [`gateway_down_for`](Self::gateway_down_for).
    pub fn gateway_up(&self) {
        *self.st.gateway_down_until.lock().unwrap() = None;
    }

    /// How many IDENTIFYs (new sessions) the gateway saw.
    pub async fn identifies(&self) -> usize {
        self.st.identified.lock().await.len()
    }

    /// An attachment of a message in `channel`, as Discord gives it: a signed
    /// CDN URL of this server, already expired when `expired`.
    pub fn attachment(&self, channel: &str, name: &str, bytes: &[u8], expired: bool) -> Value {
        let id = self.snowflake();
        let path = format!("/attachments/{channel}/{id}/{name}");
        self.st
            .files
            .lock()
            .unwrap()
            .insert(path.clone(), bytes.to_vec());
        let now = unix_now();
        let ex = if expired { now - 3600 } else { now + 24 * 3600 };
        let url = signed_url(&self.rest.to_string(), &path, ex);
        json!({"id": id, "filename": name, "size": bytes.len(), "url": url, "proxy_url": url,
               "content_type": content_type_of(name)})
    }

    /// A webhook id we created for `channel`, if any.
    pub async fn webhook_for(&self, channel: &str) -> Option<(String, String)> {
        self.st
            .webhooks
            .lock()
            .await
            .iter()
            .find(|(_, (c, _))| c == channel)
            .map(|(id, (_, tok))| (id.clone(), tok.clone()))
    }
}

/// A public thread channel (type 11) in `parent`.
fn thread_json(id: &str, parent: &str, name: &str) -> Value {
    json!({"id": id, "type": 11, "guild_id": GUILD_ID, "parent_id": parent, "name": name,
           "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "locked": false,
                               "archive_timestamp": "2026-11-23T10:00:00.000000+00:00"},
           "message_count": 0, "member_count": 1})
}

/// Keep a message in its channel's history.
fn remember(st: &State_, message: &Value) {
    if let Some(ch) = message["channel_id"].as_str() {
        st.history
            .lock()
            .unwrap()
            .entry(ch.to_string())
            .or_default()
            .push(message.clone());
    }
}

fn is_post(r: &Req, channel: &str) -> bool {
    let message_post = r.path.ends_with("/messages")
        || (r.path.starts_with("/api/v10/webhooks/") && r.path.matches('/').count() == 5);
    r.method == "POST" && message_post && r.channel.as_deref() == Some(channel)
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// Discord's epoch (2015-01-01), in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A new snowflake: the current time in its upper bits, as Discord's ids are
/// (history and catch-up compare them with times), never the same twice.
fn snowflake(st: &State_) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let now = (now_ms - DISCORD_EPOCH_MS) << 22;
    let mut last = st.next_id.load(Ordering::SeqCst);
    loop {
        let next = now.max(last + 1);
        match st
            .next_id
            .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The time a snowflake was made, as Discord writes timestamps.
fn snowflake_time(id: &str) -> String {
    let ms = id
        .parse::<u64>()
        .map(|i| (i >> 22) + DISCORD_EPOCH_MS)
        .unwrap_or_default();
    let t = chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

pub fn message_json(id: &str, channel: &str, author: Value, content: &str) -> Value {
    json!({
        "id": id, "channel_id": channel, "guild_id": GUILD_ID, "author": author,
        "content": content, "timestamp": snowflake_time(id),
        "edited_timestamp": null, "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "pinned": false, "type": 0
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The fake's signature of a CDN path and expiry (Discord's `hm`).
fn signature(path: &str, ex: u64) -> String {
    let h = path
        .bytes()
        .chain(ex.to_be_bytes())
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
    format!("{h:016x}")
}

fn signed_url(host: &str, path: &str, ex: u64) -> String {
    let is = ex.saturating_sub(24 * 3600);
    format!(
        "http://{host}{path}?ex={ex:x}&is={is:x}&hm={}&",
        signature(path, ex)
    )
}

fn content_type_of(name: &str) -> &'static str {
    if name.ends_with(".png") {
        "image/png"
    } else {
        "application/octet-stream"
    }
}

#[derive(Clone)]
struct AppState {
    st: Arc<State_>,
    token: String,
    gateway: SocketAddr,
    rest: SocketAddr,
}

impl AppState {
    /// This REST server's address (its CDN too).
    fn gateway_rest(&self) -> String {
        self.rest.to_string()
    }
}

async fn rest_handler(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    // The CDN: signed URLs work until they expire, and only as signed.
    if method == Method::GET && path.starts_with("/attachments/") {
        let query: HashMap<String, String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ex = query
            .get("ex")
            .and_then(|e| u64::from_str_radix(e, 16).ok())
            .unwrap_or(0);
        let valid = query.get("hm").is_some_and(|h| *h == signature(&path, ex)) && ex > unix_now();
        let bytes = app.st.files.lock().unwrap().get(&path).cloned();
        return match bytes {
            Some(b) if valid => (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, content_type_of(&path))],
                b,
            )
                .into_response(),
            _ => (
                StatusCode::NOT_FOUND,
                "This content is no longer available.",
            )
                .into_response(),
        };
    }
    let body_v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let st = &app.st;
    let segs_owned: Vec<String> = path
        .trim_start_matches("/api/v10/")
        .split('/')
        .map(str::to_string)
        .collect();
    let channel = match segs_owned.first().map(String::as_str) {
        Some("channels") => segs_owned.get(1).cloned(),
        Some("webhooks") => {
            let hooks = st.webhooks.lock().await;
            segs_owned
                .get(1)
                .and_then(|id| hooks.get(id))
                .map(|(c, _)| c.clone())
        }
        _ => None,
    };
    let record = |status: Option<u16>| {
        let mut b = body_v.clone();
        if let Some(s) = status {
            if !b.is_object() {
                b = json!({});
            }
            b["_status"] = json!(s);
        }
        Req {
            method: method.to_string(),
            path: path.clone(),
            channel: channel.clone(),
            body: b,
            at: Instant::now(),
        }
    };
    // Real Discord serves GET /gateway without a token; webhooks carry their own.
    let is_webhook_exec = path.starts_with("/api/v10/webhooks/") || path == "/api/v10/gateway";
    let bot_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {}", app.token));
    if !is_webhook_exec && !bot_ok {
        st.requests.lock().await.push(record(Some(401)));
        st.changed.notify_waiters();
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "401: Unauthorized", "code": 0})),
        )
            .into_response();
    }
    let segs: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let is_post_message = method == Method::POST
        && (matches!(segs.as_slice(), ["channels", _, "messages"])
            || (segs.first() == Some(&"webhooks") && segs.len() == 3));
    let outage = match *st.down_until.lock().await {
        Some((until, status)) if Instant::now() < until => {
            Some((status, json!({"message": "outage"})))
        }
        _ => None,
    };
    let outage = outage.or_else(|| match &*st.fail_containing.lock().unwrap() {
        Some((needle, until, status))
            if Instant::now() < *until
                && body_v["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(needle.as_str())) =>
        {
            Some((*status, json!({"message": "Internal Server Error"})))
        }
        _ => None,
    });
    if let ["channels", ch, "messages", _, "reactions", _, "@me"] = segs.as_slice() {
        let limited = {
            let now = Instant::now();
            let mut last = st.reaction_at.lock().unwrap();
            let limited = last
                .get(*ch)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(250));
            if !limited {
                last.insert(ch.to_string(), now);
            }
            limited
        };
        if limited {
            let body = json!({"message": "You are being rate limited.", "retry_after": 0.25, "global": false});
            st.requests.lock().await.push(record(Some(429)));
            st.changed.notify_waiters();
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            resp.headers_mut()
                .insert("retry-after", "1".parse().unwrap());
            resp.headers_mut()
                .insert("x-ratelimit-reset-after", "0.25".parse().unwrap());
            return resp;
        }
    }
    let reads_history = method == "GET" && matches!(segs.as_slice(), ["channels", _, "messages"]);
    let scripted = if is_post_message {
        match outage {
            Some(o) => Some(o),
            None => st.failures.lock().await.pop_front(),
        }
    } else if reads_history {
        st.history_failures.lock().await.pop_front()
    } else {
        None
    };
    if let Some((status, fbody)) = scripted {
        st.requests.lock().await.push(record(Some(status)));
        st.changed.notify_waiters();
        let mut resp = (StatusCode::from_u16(status).unwrap(), Json(fbody.clone())).into_response();
        if let Some(ra) = fbody.get("retry_after").and_then(Value::as_f64) {
            resp.headers_mut()
                .insert("retry-after", ra.ceil().to_string().parse().unwrap());
        }
        return resp;
    }
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let answer: (StatusCode, Value) = match (method.as_str(), segs.as_slice()) {
        ("POST", ["attachments", "refresh-urls"]) => {
            let files = st.files.lock().unwrap();
            let refreshed: Vec<Value> = body_v["attachment_urls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str())
                .filter_map(|u| {
                    let base = u.split('?').next()?;
                    let path = &base[base.find("/attachments/")?..];
                    files.contains_key(path).then(|| {
                        json!({"original": u,
                               "refreshed": signed_url(&app.gateway_rest(), path, unix_now() + 24 * 3600)})
                    })
                })
                .collect();
            (StatusCode::OK, json!({"refreshed_urls": refreshed}))
        }
        ("GET", ["channels", ch, "messages"]) => {
            let limit: usize = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50);
            let id_of = |m: &Value| {
                m["id"]
                    .as_str()
                    .and_then(|i| i.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let before = query.get("before").and_then(|b| b.parse::<u64>().ok());
            let after = query.get("after").and_then(|b| b.parse::<u64>().ok());
            let history = st.history.lock().unwrap();
            let all = history.get(*ch).cloned().unwrap_or_default();
            // Discord: the `limit` messages nearest the cursor, newest first.
            let mut page: Vec<Value> = match (before, after) {
                (_, Some(a)) => all
                    .into_iter()
                    .filter(|m| id_of(m) > a)
                    .take(limit)
                    .collect(),
                (Some(b), None) => {
                    let older: Vec<Value> = all.into_iter().filter(|m| id_of(m) < b).collect();
                    older[older.len().saturating_sub(limit)..].to_vec()
                }
                (None, None) => all[all.len().saturating_sub(limit)..].to_vec(),
            };
            page.reverse();
            (StatusCode::OK, Value::Array(page))
        }
        ("GET", ["channels", ch, "messages", id]) => {
            let history = st.history.lock().unwrap();
            match history
                .get(*ch)
                .and_then(|all| all.iter().find(|m| m["id"] == *id))
            {
                Some(m) => (StatusCode::OK, m.clone()),
                None => (
                    StatusCode::NOT_FOUND,
                    json!({"message": "Unknown Message", "code": 10008}),
                ),
            }
        }
        ("GET", ["gateway"]) | ("GET", ["gateway", "bot"]) => (
            StatusCode::OK,
            json!({"url": format!("ws://{}", app.gateway), "shards": 1,
                   "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}),
        ),
        ("GET", ["users", "@me"]) => (StatusCode::OK, bot_user()),
        ("GET", ["channels", id]) => {
            let thread = st.threads.lock().unwrap().get(*id).cloned();
            let is_message = st
                .history
                .lock()
                .unwrap()
                .values()
                .flatten()
                .any(|m| m["id"] == *id);
            match thread {
                Some(t) => (StatusCode::OK, t),
                // A message without a thread is no channel.
                None if is_message => (
                    StatusCode::NOT_FOUND,
                    json!({"message": "Unknown Channel", "code": 10003}),
                ),
                None => {
                    let kind = if st.forums.lock().unwrap().contains(*id) {
                        15
                    } else {
                        0
                    };
                    (
                        StatusCode::OK,
                        json!({"id": id, "type": kind, "guild_id": GUILD_ID, "name": format!("chan-{}", &id[id.len().saturating_sub(3)..])}),
                    )
                }
            }
        }
        ("GET", ["guilds", _, "threads", "active"]) => {
            let threads: Vec<Value> = st.threads.lock().unwrap().values().cloned().collect();
            (StatusCode::OK, json!({"threads": threads, "members": []}))
        }
        ("POST", ["channels", ch, "messages", m, "threads"]) => {
            let mut threads = st.threads.lock().unwrap();
            if threads.contains_key(*m) {
                (
                    StatusCode::BAD_REQUEST,
                    json!({"message": "A thread has already been created for this message", "code": 160004}),
                )
            } else {
                let t = thread_json(m, ch, body_v["name"].as_str().unwrap_or(""));
                threads.insert(m.to_string(), t.clone());
                (StatusCode::CREATED, t)
            }
        }
        ("PUT" | "DELETE", ["channels", _, "messages", _, "reactions", _, "@me"]) => {
            (StatusCode::NO_CONTENT, Value::Null)
        }
        // A moderator's actions (the bot has Moderate and Ban Members here).
        ("PATCH", ["guilds", _, "members", _]) => (StatusCode::OK, json!({"roles": []})),
        ("PUT", ["guilds", _, "bans", _]) | ("DELETE", ["guilds", _, "bans", _]) => {
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("GET", ["guilds", _, "roles"]) => {
            (StatusCode::OK, json!([{"id": "777", "name": "Moderators"}]))
        }
        ("POST", ["channels", ch, "messages"]) => (
            StatusCode::OK,
            message_json(
                &snowflake(st).to_string(),
                ch,
                bot_user(),
                body_v["content"].as_str().unwrap_or(""),
            ),
        ),
        ("PATCH", ["channels", _, "messages", _])
        | ("PATCH", ["webhooks", _, _, "messages", _]) => (StatusCode::OK, json!({"id": "1"})),
        ("DELETE", ["channels", _, "messages", _])
        | ("DELETE", ["webhooks", _, _, "messages", _]) => (StatusCode::NO_CONTENT, Value::Null),
        ("GET", ["channels", ch, "webhooks"]) => {
            let hooks = st.webhooks.lock().await;
            let list: Vec<Value> = hooks
                .iter()
                .filter(|(_, (c, _))| c == ch)
                .map(|(id, (c, t))| webhook_json(id, c, t))
                .collect();
            (StatusCode::OK, Value::Array(list))
        }
        ("POST", ["channels", ch, "webhooks"]) => {
            let id = snowflake(st).to_string();
            let token = format!("hooktoken{id}");
            st.webhooks
                .lock()
                .await
                .insert(id.clone(), (ch.to_string(), token.clone()));
            (StatusCode::OK, webhook_json(&id, ch, &token))
        }
        ("POST", ["webhooks", id, token]) => {
            let hooks = st.webhooks.lock().await;
            match hooks.get(*id) {
                Some((ch, t)) if t == token => {
                    let name = body_v["username"].as_str().unwrap_or("");
                    let lower = name.to_lowercase();
                    let unknown_thread = query
                        .get("thread_id")
                        .is_some_and(|t| !st.threads.lock().unwrap().contains_key(t));
                    if unknown_thread {
                        (
                            StatusCode::BAD_REQUEST,
                            json!({"message": "Unknown Channel", "code": 10003}),
                        )
                    } else if lower.contains("discord")
                        || lower.contains("clyde")
                        || name.chars().count() > 80
                        || name.is_empty()
                    {
                        (
                            StatusCode::BAD_REQUEST,
                            json!({"message": "Invalid Form Body", "code": 50035}),
                        )
                    } else {
                        let mid = snowflake(st).to_string();
                        // Into a thread of the webhook's channel, with thread_id.
                        let into = query
                            .get("thread_id")
                            .cloned()
                            .unwrap_or_else(|| ch.clone());
                        let mut m = message_json(
                            &mid,
                            &into,
                            json!({"id": id, "username": name, "discriminator": "0000", "avatar": null, "bot": true}),
                            body_v["content"].as_str().unwrap_or(""),
                        );
                        m["webhook_id"] = json!(id);
                        m["application_id"] = json!(APP_ID);
                        (StatusCode::OK, m)
                    }
                }
                _ => (
                    StatusCode::NOT_FOUND,
                    json!({"message": "Unknown Webhook", "code": 10015}),
                ),
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"message": "404: Not Found", "code": 0}),
        ),
    };
    let failed = !answer.0.is_success();
    let mut req = record(failed.then_some(answer.0.as_u16()));
    if is_post_message && !failed {
        // The id the post got, for tests that follow its edits and deletes.
        req.body["_id"] = answer.1["id"].clone();
        if let Some(t) = query.get("thread_id") {
            req.body["_thread"] = json!(t);
        }
        remember(st, &answer.1);
    }
    st.requests.lock().await.push(req);
    st.changed.notify_waiters();
    if answer.1.is_null() {
        return answer.0.into_response();
    }
    (answer.0, Json(answer.1)).into_response()
}

fn webhook_json(id: &str, channel: &str, token: &str) -> Value {
    json!({"id": id, "type": 1, "channel_id": channel, "guild_id": GUILD_ID, "name": "jetbridge",
           "token": token, "application_id": APP_ID, "avatar": null,
           "user": {"id": BOT_ID, "username": "jetbridge-bot", "discriminator": "0", "avatar": null, "bot": true}})
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "username": "jetbridge-bot", "discriminator": "0", "global_name": null, "avatar": null, "bot": true})
}

async fn gateway_conn(
    sock: tokio::net::TcpStream,
    st: Arc<State_>,
    token: String,
    addr: SocketAddr,
) {
    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let _ = tx
        .send(WsMessage::text(
            json!({"op": 10, "d": {"heartbeat_interval": 41250}}).to_string(),
        ))
        .await;
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if frame == "__close_1001" {
                let _ = tx
                    .send(WsMessage::Close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "going away".into(),
                    })))
                    .await;
                break;
            }
            if frame == "__close_4004" {
                let _ = tx
                    .send(WsMessage::Close(Some(CloseFrame {
                        code: CloseCode::from(4004),
                        reason: "Authentication failed.".into(),
                    })))
                    .await;
                break;
            }
            if tx.send(WsMessage::text(frame)).await.is_err() {
                break;
            }
        }
    });
    let mut registered = false;
    while let Some(Ok(msg)) = rx.next().await {
        let WsMessage::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match v["op"].as_u64() {
            Some(2) => {
                st.identified.lock().await.push(v["d"].clone());
                st.sessions_invalid
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                if v["d"]["token"].as_str() != Some(token.as_str())
                    && v["d"]["token"].as_str() != Some(&format!("Bot {token}"))
                {
                    let _ = out_tx.send("__close_4004".into());
                    st.changed.notify_waiters();
                    break;
                }
                let ready = json!({"op": 0, "t": "READY", "s": 1, "d": {
                    "v": 10, "user": bot_user(), "guilds": [{"id": GUILD_ID, "unavailable": true}],
                    "session_id": "fake-session", "resume_gateway_url": format!("ws://{addr}"),
                    "shard": [0, 1], "application": {"id": APP_ID, "flags": 0}}});
                let _ = out_tx.send(ready.to_string());
                st.gateway.lock().await.push(out_tx.clone());
                registered = true;
                st.changed.notify_waiters();
            }
            Some(1) => {
                let _ = out_tx.send(json!({"op": 11}).to_string());
            }
            Some(6)
                if st
                    .sessions_invalid
                    .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                // The session did not outlive the outage: start a new one.
                let _ = out_tx.send(json!({"op": 9, "d": false}).to_string());
            }
            Some(6) => {
                let _ = out_tx.send(json!({"op": 0, "t": "RESUMED", "s": 1, "d": {}}).to_string());
                st.gateway.lock().await.push(out_tx.clone());
                registered = true;
                st.changed.notify_waiters();
            }
            _ => {}
        }
    }
    if registered {
        st.gateway.lock().await.retain(|c| !c.same_channel(&out_tx));
    }
    drop(out_tx);
    let _ = writer.await;
}

/// A user id for a display name (stable, so the same name is the same user).
pub fn user_id(name: &str) -> String {
    let n: u64 = name
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    format!("5{:017}", n % 100_000_000_000_000_000)
}

fn user_json(name: &str) -> Value {
    json!({"id": user_id(name), "username": name.to_lowercase(), "global_name": name,
           "discriminator": "0", "avatar": null, "bot": false})
}

pub const CONFORMANCE_TOKEN: &str = "discord-bot-token-sekrit";

#[async_trait::async_trait]
impl FakePlatform for FakeDiscord {
    const NAME: &'static str = "discord";

    async fn start() -> Self {
        FakeDiscord::start(CONFORMANCE_TOKEN).await
    }

    fn section(&self) -> String {
        format!(
            "token = \"{}\"\napi_url = \"{}\"\nrate_limit = false",
            self.token,
            self.api_url()
        )
    }

    fn channels(&self) -> [String; 2] {
        ["111111111111111111".into(), "222222222222222222".into()]
    }

    async fn wait_connected(&self, timeout: Duration) {
        self.wait_identified(timeout).await;
    }

    async fn say(&self, channel: &str, user: &str, text: &str) -> String {
        self.user_message(channel, &user_id(user), user, text, json!({}))
            .await
    }

    async fn echo(&self, channel: &str, text: &str) {
        let d = message_json(&self.snowflake(), channel, bot_user(), text);
        self.dispatch("MESSAGE_CREATE", d).await;
    }

    async fn edit(&self, channel: &str, user: &str, id: &str, text: &str) {
        // History has what the channel shows now.
        if let Some(m) = self
            .st
            .history
            .lock()
            .unwrap()
            .get_mut(channel)
            .and_then(|all| all.iter_mut().find(|m| m["id"] == id))
        {
            m["content"] = json!(text);
            m["edited_timestamp"] = json!("2026-11-23T10:05:00.000000+00:00");
        }
        self.dispatch(
            "MESSAGE_UPDATE",
            json!({"id": id, "channel_id": channel, "guild_id": GUILD_ID, "content": text,
                   "edited_timestamp": "2026-11-23T10:05:00.000000+00:00", "author": user_json(user)}),
        )
        .await;
    }

    async fn delete(&self, channel: &str, _user: &str, id: &str) {
        if let Some(all) = self.st.history.lock().unwrap().get_mut(channel) {
            all.retain(|m| m["id"] != id);
        }
        self.dispatch(
            "MESSAGE_DELETE",
            json!({"id": id, "channel_id": channel, "guild_id": GUILD_ID}),
        )
        .await;
    }

    async fn posts(&self, channel: &str) -> Vec<Post> {
        self.posts(channel)
            .await
            .into_iter()
            .filter(|r| r.body.get("_status").is_none())
            .map(|r| Post {
                id: r.body["_id"].as_str().map(str::to_string),
                name: r.body["username"].as_str().map(str::to_string),
                text: r.body["content"].as_str().unwrap_or("").to_string(),
                raw: r.body,
            })
            .collect()
    }

    async fn wait_posts(&self, channel: &str, n: usize, timeout: Duration) -> Vec<Post> {
        self.wait_posts(channel, n, timeout).await;
        FakePlatform::posts(self, channel).await
    }

    async fn attempts(&self, channel: &str) -> Vec<(Instant, bool)> {
        self.posts(channel)
            .await
            .into_iter()
            .map(|r| (r.at, r.body.get("_status").is_none()))
            .collect()
    }

    async fn changes(&self, channel: &str) -> Vec<Change> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r.channel.as_deref() == Some(channel) && r.body.get("_status").is_none())
            .filter_map(|r| {
                let id = r.path.split("/messages/").nth(1)?.to_string();
                match r.method.as_str() {
                    "PATCH" => Some(Change::Edit {
                        id,
                        text: r.body["content"].as_str().unwrap_or("").to_string(),
                    }),
                    "DELETE" => Some(Change::Delete { id }),
                    _ => None,
                }
            })
            .collect()
    }

    async fn rate_limit(&self, n: usize, after: Duration) {
        self.fail_next(
            n,
            429,
            json!({"message": "You are being rate limited.", "retry_after": after.as_secs_f64(), "global": false}),
        )
        .await;
    }

    async fn outage(&self, d: Duration) {
        self.down_for(d, 503).await;
    }

    fn live(post: &Post) -> Option<String> {
        if post.raw["allowed_mentions"] != json!({"parse": []}) {
            return Some(format!(
                "allowed_mentions is {}",
                post.raw["allowed_mentions"]
            ));
        }
        let t = post.text.to_lowercase();
        if t.contains("@everyone") || t.contains("@here") {
            return Some("pings everyone".into());
        }
        let bytes = post.text.as_bytes();
        for (i, w) in bytes.windows(2).enumerate() {
            if w[0] == b'<' && matches!(w[1], b'@' | b'#') && (i == 0 || bytes[i - 1] != b'\\') {
                return Some("raw mention syntax".into());
            }
        }
        None
    }
}
