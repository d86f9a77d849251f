//! A fake Slack: the Web API methods the bridge calls (auth.test, users.info,
//! conversations.info, chat.postMessage/update/delete, apps.connections.open)
//! and a Socket Mode websocket (hello, events_api envelopes, ack tracking,
//! `disconnect`). Every Web API call is recorded with its time; 429s (with
//! Retry-After), 5xx and a refused `chat:write.customize` can be scripted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::platform::{Change, FakePlatform, Post};

pub const BOT_TOKEN: &str = "xoxb-fake-bot-token";
pub const APP_TOKEN: &str = "xapp-fake-app-token";
/// A workspace admin's user token: it may delete anyone's message.
pub const USER_TOKEN: &str = "xoxp-fake-admin-token";
pub const BOT_USER: &str = "UBOT0001";
pub const BOT_ID: &str = "BBOT0001";

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Query and body parameters together.
    pub params: Value,
    pub status: u16,
    pub at: Instant,
}

#[derive(Default)]
struct St {
    calls: Mutex<Vec<Call>>,
    failures: Mutex<VecDeque<(u16, Value)>>,
    /// Answers for the next calls of a Web API method, by method.
    method_failures: Mutex<std::collections::HashMap<String, VecDeque<(u16, Value)>>>,
    refuse_customize: AtomicBool,
    /// Posts fail with this status until then (an outage).
    down_until: std::sync::Mutex<Option<(Instant, u16)>>,
    /// Sockets cannot be opened until then (an outage of Socket Mode).
    sockets_down_until: std::sync::Mutex<Option<Instant>>,
    /// Files by id.
    files: std::sync::Mutex<std::collections::HashMap<String, StoredFile>>,
    /// Every message of each channel, in the order it came (what history serves).
    history: std::sync::Mutex<std::collections::HashMap<String, Vec<Value>>>,
    /// Open Socket Mode connections, by connection number.
    sockets: Mutex<Vec<(u64, mpsc::UnboundedSender<String>)>>,
    acks: Mutex<Vec<String>>,
    /// Envelopes handed out and not acknowledged: the frame and the
    /// connection it went to. As Slack does, those of a connection that
    /// closes are handed to another one.
    unacked: Mutex<std::collections::HashMap<String, (Value, u64)>>,
    /// Envelopes handed out so far (they go round the connections).
    handed: AtomicU64,
    redelivered: AtomicU64,
    /// How long `users.info` takes to answer.
    users_info_delay: std::sync::Mutex<Duration>,
    connections: AtomicU64,
    next_ts: AtomicU64,
    changed: Notify,
}

pub struct FakeSlack {
    pub addr: SocketAddr,
    st: Arc<St>,
    next_envelope: AtomicU64,
}

#[derive(Clone)]
struct App {
    st: Arc<St>,
    ws: SocketAddr,
    /// This server's `host:port` (files are served here too).
    api_host: String,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = api.local_addr().unwrap();
        let ws_addr = ws.local_addr().unwrap();
        let st = Arc::new(St {
            next_ts: AtomicU64::new(0),
            ..Default::default()
        });
        let app = Router::new().fallback(api_handler).with_state(App {
            st: st.clone(),
            ws: ws_addr,
            api_host: addr.to_string(),
        });
        tokio::spawn(async move {
            let _ = axum::serve(api, app).await;
        });
        let wst = st.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = ws.accept().await {
                tokio::spawn(socket_conn(sock, wst.clone()));
            }
        });
        FakeSlack {
            addr,
            st,
            next_envelope: AtomicU64::new(1),
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub async fn fail_next(&self, n: usize, status: u16, body: Value) {
        let mut f = self.st.failures.lock().await;
        for _ in 0..n {
            f.push_back((status, body.clone()));
        }
    }

    /// Answer the next `n` calls of `method` with `status` and `body`.
    pub async fn fail_method(&self, method: &str, n: usize, status: u16, body: Value) {
        let mut f = self.st.method_failures.lock().await;
        let q = f.entry(method.to_string()).or_default();
        for _ in 0..n {
            q.push_back((status, body.clone()));
        }
    }

    /// Fail every post with `status` for `d`.
    pub fn down_for(&self, d: Duration, status: u16) {
        *self.st.down_until.lock().unwrap() = Some((Instant::now() + d, status));
    }

    /// Answer posts with a custom name with `missing_scope`.
    pub fn refuse_customize(&self) {
        self.st.refuse_customize.store(true, Ordering::SeqCst);
    }

    pub fn connections(&self) -> u64 {
        self.st.connections.load(Ordering::SeqCst)
    }

    pub async fn calls(&self) -> Vec<Call> {
        self.st.calls.lock().await.clone()
    }

    pub async fn acks(&self) -> Vec<String> {
        self.st.acks.lock().await.clone()
    }

    /// Envelopes handed out and not yet acknowledged.
    pub async fn unacked(&self) -> usize {
        self.st.unacked.lock().await.len()
    }

    /// Envelopes handed out again because a connection closed without
    /// acknowledging them.
    pub fn redelivered(&self) -> u64 {
        self.st.redelivered.load(Ordering::SeqCst)
    }

    /// Open Socket Mode connections now.
    pub async fn open_sockets(&self) -> usize {
        self.st.sockets.lock().await.len()
    }

    /// Wait until `n` Socket Mode connections are open.
    pub async fn wait_open_sockets(&self, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.st.changed.notified();
            if self.open_sockets().await == n {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => panic!("not {n} socket mode connections"),
            }
        }
    }

    /// Make `users.info` answer after `d` (as a slow API does).
    pub fn slow_users_info(&self, d: Duration) {
        *self.st.users_info_delay.lock().unwrap() = d;
    }

    /// Wait until `cond` holds over the calls.
    pub async fn wait_for<F: FnMut(&[Call]) -> bool>(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: F,
    ) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.st.changed.notified();
            {
                let c = self.st.calls.lock().await;
                if cond(&c) {
                    return c.clone();
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let c = self.calls().await;
                    panic!("timed out waiting for {what}; calls: {:#?}", c.iter().map(|x| format!("{} {} {}", x.status, x.method, x.params)).collect::<Vec<_>>());
                }
            }
        }
    }

    /// Successful chat.postMessage calls into `channel`, after waiting for `n`.
    pub async fn wait_posts(&self, channel: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let ok = |c: &Call| {
            c.method == "chat.postMessage"
                && c.status == 200
                && c.params["channel"] == channel
                && c.params.get("_refused").is_none()
        };
        self.wait_for(&format!("{n} posts into {channel}"), timeout, |cs| {
            cs.iter().filter(|c| ok(c)).count() >= n
        })
        .await
        .into_iter()
        .filter(|c| ok(c))
        .map(|c| c.params)
        .collect()
    }

    /// Wait for a Socket Mode connection (one more than `after`).
    pub async fn wait_connected(&self, after: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.st.changed.notified();
            if self.connections() > after && !self.st.sockets.lock().await.is_empty() {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => panic!("no socket mode connection"),
            }
        }
    }

    /// Send an events_api envelope with `event`; returns the envelope id.
    pub async fn send_event(&self, event: Value) -> String {
        let n = self.next_envelope.fetch_add(1, Ordering::SeqCst);
        let envelope_id = format!("env-{n}");
        self.send_envelope(&envelope_id, &format!("Ev{n:06}"), event)
            .await;
        envelope_id
    }

    /// Send (or resend, as Slack does when an ack is missing) one envelope.
    pub async fn send_envelope(&self, envelope_id: &str, event_id: &str, event: Value) {
        let kept = event["type"] == "message"
            && !matches!(
                event["subtype"].as_str(),
                Some("message_changed" | "message_deleted")
            );
        if kept {
            remember(&self.st, &event);
        }
        // History shows what the channel shows now.
        let channel = event["channel"].as_str().unwrap_or_default();
        match event["subtype"].as_str() {
            Some("message_changed") => self.edit_while_away(
                channel,
                event["message"]["ts"].as_str().unwrap_or_default(),
                event["message"]["text"].as_str().unwrap_or_default(),
                event["message"]["edited"]["ts"]
                    .as_str()
                    .unwrap_or_default(),
            ),
            Some("message_deleted") => {
                self.delete_while_away(channel, event["deleted_ts"].as_str().unwrap_or_default())
            }
            _ => {}
        }
        let frame = json!({
            "envelope_id": envelope_id, "type": "events_api", "accepts_response_payload": false,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {
                "token": "verification", "team_id": "T0001", "api_app_id": "A0001",
                "event": event, "type": "event_callback", "event_id": event_id,
                "event_time": 1_700_000_000u64
            }
        });
        hand_out(&self.st, envelope_id, frame).await;
    }

    /// A message from `user` that arrives while no socket is open (jetbridge is
    /// away): it is only in the channel's history. Returns its ts.
    pub fn message_while_away(&self, channel: &str, user: &str, text: &str) -> String {
        let ts = self.next_ts();
        remember(&self.st, &message(channel, user, text, &ts));
        ts
    }

    /// A reply from `user` in the thread of `root` while no socket is open:
    /// only in the thread (`conversations.replies`). Returns its ts.
    pub fn reply_while_away(&self, channel: &str, root: &str, user: &str, text: &str) -> String {
        let ts = self.next_ts();
        let mut m = message(channel, user, text, &ts);
        m["thread_ts"] = json!(root);
        remember(&self.st, &m);
        ts
    }

    /// Message `ts` edited (at `edited_ts`) where no socket sees it: history
    /// has the new text and `edited`.
    pub fn edit_while_away(&self, channel: &str, ts: &str, text: &str, edited_ts: &str) {
        let mut history = self.st.history.lock().unwrap();
        if let Some(m) = history
            .get_mut(channel)
            .and_then(|all| all.iter_mut().find(|m| m["ts"] == ts))
        {
            m["text"] = json!(text);
            m["edited"] = json!({"user": m["user"].clone(), "ts": edited_ts});
        }
    }

    /// Message `ts` deleted where no socket sees it: gone from history.
    pub fn delete_while_away(&self, channel: &str, ts: &str) {
        if let Some(all) = self.st.history.lock().unwrap().get_mut(channel) {
            all.retain(|m| m["ts"] != ts);
        }
    }

    /// A file shared in Slack, as a `file_share` event lists it (its URLs
    /// need the bot token).
    pub fn add_file(&self, id: &str, name: &str, mimetype: &str, bytes: &[u8]) -> Value {
        self.st.files.lock().unwrap().insert(
            id.to_string(),
            (name.to_string(), mimetype.to_string(), bytes.to_vec()),
        );
        file_json(&self.addr.to_string(), id, name, mimetype, bytes.len())
    }

    /// Where a file is downloaded from (with the bot token).
    pub fn file_url(&self, id: &str, name: &str) -> String {
        format!("http://{}/files-pri/T0001-{id}/download/{name}", self.addr)
    }

    /// Close every socket and refuse to open new ones for `d`.
    pub async fn sockets_down_for(&self, d: Duration) {
        *self.st.sockets_down_until.lock().unwrap() = Some(Instant::now() + d);
        for (_, s) in self.st.sockets.lock().await.iter() {
            let _ = s.send("__close".into());
        }
    }

    /// End an outage begun with [`sockets_down_for`](Self::sockets_down_for).
    pub fn sockets_up(&self) {
        *self.st.sockets_down_until.lock().unwrap() = None;
    }

    /// How many Socket Mode connections were opened so far.
    pub fn opened(&self) -> u64 {
        self.connections()
    }

    /// Ask the client to reconnect, as Slack does before rotating a connection.
    pub async fn send_disconnect(&self) {
        let frame = json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake"}});
        for (_, s) in self.st.sockets.lock().await.iter() {
            let _ = s.send(frame.to_string());
        }
    }

    /// A user's message event; returns its ts.
    pub fn next_ts(&self) -> String {
        next_ts(&self.st)
    }
}

/// A new `ts`: the current time in microseconds, as Slack's are (history and
/// catch-up compare them with times), never the same twice.
fn next_ts(st: &St) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default();
    let mut last = st.next_ts.load(Ordering::SeqCst);
    let us = loop {
        let next = now.max(last + 1);
        match st
            .next_ts
            .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// A file's name, mimetype and bytes.
type StoredFile = (String, String, Vec<u8>);

/// A file object as Slack's API gives it.
fn file_json(host: &str, id: &str, name: &str, mimetype: &str, size: usize) -> Value {
    json!({"id": id, "created": 1_700_000_000u64, "timestamp": 1_700_000_000u64, "name": name, "title": name,
           "mimetype": mimetype, "filetype": "png", "size": size, "mode": "hosted", "is_public": true,
           "public_url_shared": false,
           "url_private": format!("http://{host}/files-pri/T0001-{id}/{name}"),
           "url_private_download": format!("http://{host}/files-pri/T0001-{id}/download/{name}"),
           "permalink": format!("https://fake.slack.com/files/U0001/{id}/{name}")})
}

/// Whether the message `p` names (`channel`, `ts`) was posted by the bot (or
/// is not known: then Slack's own answer would be about something else).
fn is_bots(st: &St, p: &Value) -> bool {
    let (Some(ch), Some(ts)) = (p["channel"].as_str(), p["ts"].as_str()) else {
        return true;
    };
    let history = st.history.lock().unwrap();
    history
        .get(ch)
        .and_then(|all| all.iter().find(|m| m["ts"] == ts))
        .is_none_or(|m| m.get("bot_id").is_some())
}

/// Keep a message in its channel's history.
fn remember(st: &St, message: &Value) {
    if let Some(ch) = message["channel"].as_str() {
        st.history
            .lock()
            .unwrap()
            .entry(ch.to_string())
            .or_default()
            .push(message.clone());
    }
}

pub fn message(channel: &str, user: &str, text: &str, ts: &str) -> Value {
    json!({"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "channel_type": "channel", "event_ts": ts})
}

fn params(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Value {
    let mut map = serde_json::Map::new();
    let mut add_pairs = |s: &str| {
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |x: &str| {
                let bytes = x.replace('+', " ");
                percent_decode(&bytes)
            };
            map.insert(dec(k), Value::String(dec(v)));
        }
    };
    if let Some(q) = uri.query() {
        add_pairs(q);
    }
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.contains("json") {
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in o {
                map.insert(k, v);
            }
        }
    } else {
        add_pairs(&String::from_utf8_lossy(body));
    }
    Value::Object(map)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn api_handler(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Private files: only with the bot token; without it, Slack's sign-in page.
    if let Some(rest) = uri.path().strip_prefix("/files-pri/") {
        let id = rest
            .split('/')
            .next()
            .unwrap_or("")
            .trim_start_matches("T0001-");
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {BOT_TOKEN}"));
        let file = app.st.files.lock().unwrap().get(id).cloned();
        return match (authorized, file) {
            (true, Some((_, mime, bytes))) => (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, mime)],
                bytes,
            )
                .into_response(),
            (false, _) => (
                StatusCode::FOUND,
                [(
                    axum::http::header::LOCATION,
                    "https://fake.slack.com/?redir=%2Ffiles-pri".to_string(),
                )],
            )
                .into_response(),
            (true, None) => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let method = uri.path().trim_start_matches("/api/").to_string();
    let mut p = params(&uri, &headers, &body);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let st = &app.st;
    let sockets_down = st
        .sockets_down_until
        .lock()
        .unwrap()
        .is_some_and(|t| Instant::now() < t);
    let (status, answer): (u16, Value) = if method == "apps.connections.open" {
        if sockets_down {
            (503, json!({"ok": false, "error": "service_unavailable"}))
        } else if token == APP_TOKEN {
            (
                200,
                json!({"ok": true, "url": format!("ws://{}/link/?ticket=t{}", app.ws, st.connections.load(Ordering::SeqCst))}),
            )
        } else {
            (200, json!({"ok": false, "error": "invalid_auth"}))
        }
    } else if token == USER_TOKEN && method == "chat.delete" {
        p["_token"] = json!("user");
        (
            200,
            json!({"ok": true, "channel": p["channel"], "ts": p["ts"]}),
        )
    } else if token != BOT_TOKEN {
        (200, json!({"ok": false, "error": "invalid_auth"}))
    } else if method == "chat.delete" && !is_bots(st, &p) {
        // As Slack: a bot token deletes only what the bot posted.
        (200, json!({"ok": false, "error": "cant_delete_message"}))
    } else {
        let outage = match *st.down_until.lock().unwrap() {
            Some((until, status)) if Instant::now() < until => {
                Some((status, json!({"ok": false, "error": "service_unavailable"})))
            }
            _ => None,
        };
        let scripted = if method == "chat.postMessage" {
            match outage {
                Some(o) => Some(o),
                None => st.failures.lock().await.pop_front(),
            }
        } else {
            st.method_failures
                .lock()
                .await
                .get_mut(&method)
                .and_then(VecDeque::pop_front)
        };
        if let Some((status, body)) = scripted {
            (status, body)
        } else {
            match method.as_str() {
                "auth.test" => (
                    200,
                    json!({"ok": true, "url": "https://fake.slack.com/", "team": "Fake", "user": "jetbridge",
                                            "team_id": "T0001", "user_id": BOT_USER, "bot_id": BOT_ID}),
                ),
                "users.info" => {
                    let delay = *st.users_info_delay.lock().unwrap();
                    if !delay.is_zero() {
                        // A slow API, as a fresh instance meets it: latency, not synchronization.
                        tokio::time::sleep(delay).await;
                    }
                    let id = p["user"].as_str().unwrap_or("U0").to_string();
                    let name = match id.as_str() {
                        "U0001" => "Ann",
                        "U0002" => "Zoe",
                        _ => "Someone",
                    };
                    (
                        200,
                        // Zoe administers the workspace (users.info's flags sit beside the profile).
                        json!({"ok": true, "user": {"id": id, "team_id": "T0001", "name": name.to_lowercase(),
                        "is_admin": id == "U0002", "is_owner": false, "is_bot": false,
                        "profile": {"display_name": name, "real_name": format!("{name} Real"),
                                    "image_48": format!("https://avatars.example/{id}-48.png"),
                                    "image_72": format!("https://avatars.example/{id}-72.png")}}}),
                    )
                }
                "conversations.info" => {
                    let id = p["channel"].as_str().unwrap_or("C0").to_string();
                    (
                        200,
                        json!({"ok": true, "channel": {"id": id, "name": format!("chan-{}", id.to_lowercase()), "created": 1, "is_channel": true}}),
                    )
                }
                "chat.postMessage"
                    if st.refuse_customize.load(Ordering::SeqCst)
                        && (p.get("username").is_some() || p.get("icon_url").is_some()) =>
                {
                    p["_refused"] = json!(true);
                    (
                        200,
                        json!({"ok": false, "error": "missing_scope", "needed": "chat:write.customize", "provided": "chat:write"}),
                    )
                }
                "files.info" => {
                    let id = p["file"].as_str().unwrap_or("").to_string();
                    let file = st.files.lock().unwrap().get(&id).cloned();
                    match file {
                        Some((name, mime, bytes)) => (
                            200,
                            json!({"ok": true, "file": file_json(&app.api_host, &id, &name, &mime, bytes.len())}),
                        ),
                        None => (200, json!({"ok": false, "error": "file_not_found"})),
                    }
                }
                "conversations.history" => {
                    let ch = p["channel"].as_str().unwrap_or("").to_string();
                    let oldest = p["oldest"].as_str().unwrap_or("0").to_string();
                    let inclusive = p["inclusive"] == "true";
                    let limit: usize = p["limit"]
                        .as_str()
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(100);
                    let from: usize = p["cursor"]
                        .as_str()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    let ts_of = |m: &Value| {
                        m["ts"]
                            .as_str()
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(0.0)
                    };
                    let floor: f64 = oldest.parse().unwrap_or(0.0);
                    let everything = st
                        .history
                        .lock()
                        .unwrap()
                        .get(&ch)
                        .cloned()
                        .unwrap_or_default();
                    // As Slack: thread replies are not in the channel's history;
                    // a thread's first message says how many and the latest.
                    let is_reply = |m: &Value| {
                        m["thread_ts"]
                            .as_str()
                            .is_some_and(|t| Some(t) != m["ts"].as_str())
                    };
                    // Each thread's reply count and latest reply, in one pass
                    // (a soak's channel holds thousands of messages).
                    let mut threads: HashMap<&str, (usize, &Value)> = HashMap::new();
                    for r in everything.iter().filter(|r| is_reply(r)) {
                        let t = threads
                            .entry(r["thread_ts"].as_str().unwrap_or_default())
                            .or_insert((0, r));
                        *t = (t.0 + 1, r);
                    }
                    let mut all: Vec<Value> = everything
                        .iter()
                        .filter(|m| !is_reply(m))
                        .filter(|m| {
                            if inclusive {
                                ts_of(m) >= floor
                            } else {
                                ts_of(m) > floor
                            }
                        })
                        .cloned()
                        .map(|mut m| {
                            let ts = m["ts"].as_str().unwrap_or_default();
                            if let Some((count, last)) = threads.get(ts) {
                                let latest = last["ts"].clone();
                                m["thread_ts"] = m["ts"].clone();
                                m["reply_count"] = json!(count);
                                m["latest_reply"] = latest;
                            }
                            m
                        })
                        .collect();
                    // Newest first, a page at a time.
                    all.sort_by(|a, b| ts_of(b).total_cmp(&ts_of(a)));
                    let page: Vec<Value> = all.iter().skip(from).take(limit).cloned().collect();
                    let next = if from + limit < all.len() {
                        (from + limit).to_string()
                    } else {
                        String::new()
                    };
                    (
                        200,
                        json!({"ok": true, "messages": page, "has_more": !next.is_empty(),
                               "response_metadata": {"next_cursor": next}}),
                    )
                }
                "conversations.replies" => {
                    let ch = p["channel"].as_str().unwrap_or("").to_string();
                    let root = p["ts"].as_str().unwrap_or("").to_string();
                    let floor: f64 = p["oldest"]
                        .as_str()
                        .and_then(|o| o.parse().ok())
                        .unwrap_or(0.0);
                    let ts_of = |m: &Value| {
                        m["ts"]
                            .as_str()
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(0.0)
                    };
                    let mut thread: Vec<Value> = st
                        .history
                        .lock()
                        .unwrap()
                        .get(&ch)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|m| m["ts"] == root.as_str() || m["thread_ts"] == root.as_str())
                        .filter(|m| m["ts"] == root.as_str() || ts_of(m) > floor)
                        .collect();
                    // The first message, then the replies oldest first.
                    thread.sort_by(|a, b| ts_of(a).total_cmp(&ts_of(b)));
                    (
                        200,
                        json!({"ok": true, "messages": thread, "has_more": false,
                               "response_metadata": {"next_cursor": ""}}),
                    )
                }
                "chat.postMessage" => {
                    let ts = next_ts(st);
                    let ch = p["channel"].clone();
                    remember(
                        st,
                        &json!({"type": "message", "channel": ch, "text": p["text"], "ts": ts,
                                "bot_id": BOT_ID, "user": BOT_USER, "username": p["username"],
                                "thread_ts": p["thread_ts"]}),
                    );
                    (
                        200,
                        json!({"ok": true, "channel": ch, "ts": ts, "message": {"type": "message", "text": p["text"], "ts": ts, "bot_id": BOT_ID}}),
                    )
                }
                "chat.update" => (
                    200,
                    json!({"ok": true, "channel": p["channel"], "ts": p["ts"], "text": p["text"],
                           "message": {"type": "message", "text": p["text"], "bot_id": BOT_ID}}),
                ),
                "chat.delete" => (
                    200,
                    json!({"ok": true, "channel": p["channel"], "ts": p["ts"]}),
                ),
                "reactions.add" | "reactions.remove" => (200, json!({"ok": true})),
                _ => (200, json!({"ok": false, "error": "unknown_method"})),
            }
        }
    };
    if method == "chat.postMessage" && answer["ok"] == true {
        // The ts the post got, for tests that follow its edits and deletes.
        p["_ts"] = answer["ts"].clone();
    }
    st.calls.lock().await.push(Call {
        method,
        params: p,
        status,
        at: Instant::now(),
    });
    st.changed.notify_waiters();
    let mut resp = (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(answer.clone()),
    )
        .into_response();
    if let Some(ra) = answer.get("retry_after").and_then(Value::as_u64) {
        resp.headers_mut()
            .insert("retry-after", ra.to_string().parse().unwrap());
    }
    resp
}

async fn socket_conn(sock: tokio::net::TcpStream, st: Arc<St>) {
    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
        return;
    };
    let conn = st.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake", "approximate_connection_time": 3600}, "connection_info": {"app_id": "A0001"}});
    let _ = tx.send(WsMessage::text(hello.to_string())).await;
    st.sockets.lock().await.push((conn, out_tx.clone()));
    // Envelopes nobody could take while no connection was open.
    redeliver(&st, 0).await;
    st.changed.notify_waiters();
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if f == "__close" {
                let _ = tx.send(WsMessage::Close(None)).await;
                break;
            }
            if tx.send(WsMessage::text(f)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = rx.next().await {
        if let WsMessage::Text(t) = msg
            && let Ok(v) = serde_json::from_str::<Value>(&t)
            && let Some(id) = v["envelope_id"].as_str()
        {
            st.acks.lock().await.push(id.to_string());
            st.unacked.lock().await.remove(id);
            st.changed.notify_waiters();
        }
    }
    st.sockets.lock().await.retain(|(c, _)| *c != conn);
    drop(out_tx);
    writer.abort();
    // What this connection never acknowledged goes to another one.
    redeliver(&st, conn).await;
    st.changed.notify_waiters();
}

/// Hand an envelope to the next open connection (round the connections, as
/// Slack spreads them), remembering it until it is acknowledged; with none
/// open, it waits for the next connection.
async fn hand_out(st: &St, envelope_id: &str, frame: Value) {
    let sockets = st.sockets.lock().await;
    let n = st.handed.fetch_add(1, Ordering::SeqCst) as usize;
    let conn = match sockets.get(n % sockets.len().max(1)) {
        Some((conn, sock)) => {
            let _ = sock.send(frame.to_string());
            *conn
        }
        None => 0,
    };
    st.unacked
        .lock()
        .await
        .insert(envelope_id.to_string(), (frame, conn));
}

/// Hand the unacknowledged envelopes of connection `conn` out again, as
/// retries (0: those that found no connection).
async fn redeliver(st: &St, conn: u64) {
    let again: Vec<(String, Value)> = {
        let mut unacked = st.unacked.lock().await;
        let ids: Vec<String> = unacked
            .iter()
            .filter(|(_, (_, c))| *c == conn)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| unacked.remove(&id).map(|(f, _)| (id, f)))
            .collect()
    };
    for (id, mut frame) in again {
        st.redelivered.fetch_add(1, Ordering::SeqCst);
        frame["retry_attempt"] = json!(frame["retry_attempt"].as_u64().unwrap_or(0) + 1);
        frame["retry_reason"] = json!("timeout");
        hand_out(st, &id, frame).await;
    }
}

/// The user id the fake's `users.info` knows by `name` (others are "Someone").
pub fn user_id(name: &str) -> &'static str {
    match name {
        "Ann" => "U0001",
        "Zoe" => "U0002",
        _ => "U0099",
    }
}

#[async_trait::async_trait]
impl FakePlatform for FakeSlack {
    const NAME: &'static str = "slack";

    async fn start() -> Self {
        FakeSlack::start().await
    }

    fn section(&self) -> String {
        format!(
            "app_token = \"{APP_TOKEN}\"\nbot_token = \"{BOT_TOKEN}\"\napi_url = \"{}\"\nrate_limit = false",
            self.api_url()
        )
    }

    fn channels(&self) -> [String; 2] {
        ["C0001".into(), "C0002".into()]
    }

    async fn wait_connected(&self, timeout: Duration) {
        self.wait_connected(0, timeout).await;
    }

    async fn say(&self, channel: &str, user: &str, text: &str) -> String {
        let ts = self.next_ts();
        self.send_event(message(channel, user_id(user), text, &ts))
            .await;
        ts
    }

    async fn echo(&self, channel: &str, text: &str) {
        let ts = self.next_ts();
        self.send_event(
            json!({"type": "message", "subtype": "bot_message", "channel": channel,
            "bot_id": BOT_ID, "user": BOT_USER, "username": "Ann (web)", "text": text, "ts": ts,
            "channel_type": "channel", "event_ts": ts}),
        )
        .await;
    }

    async fn edit(&self, channel: &str, user: &str, id: &str, text: &str) {
        let ts = self.next_ts();
        self.send_event(
            json!({"type": "message", "subtype": "message_changed", "channel": channel,
            "ts": ts, "hidden": true, "channel_type": "channel",
            "message": {"type": "message", "user": user_id(user), "text": text, "ts": id,
                        "edited": {"user": user_id(user), "ts": ts}}}),
        )
        .await;
    }

    async fn delete(&self, channel: &str, user: &str, id: &str) {
        let ts = self.next_ts();
        self.send_event(
            json!({"type": "message", "subtype": "message_deleted", "channel": channel,
            "ts": ts, "hidden": true, "deleted_ts": id, "channel_type": "channel",
            "previous_message": {"type": "message", "user": user_id(user), "text": "", "ts": id}}),
        )
        .await;
    }

    async fn posts(&self, channel: &str) -> Vec<Post> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| {
                c.method == "chat.postMessage"
                    && c.params["channel"] == channel
                    && c.params.get("_ts").is_some()
            })
            .map(|c| Post {
                id: c.params["_ts"].as_str().map(str::to_string),
                name: c.params["username"].as_str().map(str::to_string),
                text: c.params["text"].as_str().unwrap_or("").to_string(),
                raw: c.params,
            })
            .collect()
    }

    async fn wait_posts(&self, channel: &str, n: usize, timeout: Duration) -> Vec<Post> {
        self.wait_posts(channel, n, timeout).await;
        FakePlatform::posts(self, channel).await
    }

    async fn attempts(&self, channel: &str) -> Vec<(Instant, bool)> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| c.method == "chat.postMessage" && c.params["channel"] == channel)
            .map(|c| (c.at, c.params.get("_ts").is_some()))
            .collect()
    }

    async fn changes(&self, channel: &str) -> Vec<Change> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| c.params["channel"] == channel && c.status == 200)
            .filter_map(|c| {
                let id = c.params["ts"].as_str()?.to_string();
                match c.method.as_str() {
                    "chat.update" => Some(Change::Edit {
                        id,
                        text: c.params["text"].as_str().unwrap_or("").to_string(),
                    }),
                    "chat.delete" => Some(Change::Delete { id }),
                    _ => None,
                }
            })
            .collect()
    }

    async fn rate_limit(&self, n: usize, after: Duration) {
        self.fail_next(
            n,
            429,
            json!({"ok": false, "error": "ratelimited", "retry_after": after.as_secs()}),
        )
        .await;
    }

    async fn outage(&self, d: Duration) {
        self.down_for(d, 503);
    }

    fn live(post: &Post) -> Option<String> {
        ["<!", "<@", "<#"]
            .iter()
            .find(|m| post.text.contains(**m))
            .map(|m| format!("contains {m}"))
    }
}
