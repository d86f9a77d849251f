//! Twitch's HTTP side on one local server, with the documented shapes: the
//! recent-messages v2 API of a history service (`/api/v2/recent-messages/<login>`),
//! Twitch's OAuth (`/oauth2/token` refreshing with a refresh token,
//! `/oauth2/validate`) and the Helix calls jetbridge makes (`/helix/users`,
//! `/helix/chat/messages`, `/helix/moderation/chat`), each answering 401 to
//! an access token that is not current. Tests script what Helix answers next
//! (a drop reason, a 429 with `Ratelimit-Reset`) and expire tokens.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::fake_twitch::room_id;

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-s3cr3t";
pub const REFRESH_TOKEN: &str = "fake-refresh-s3cr3t";
/// The user the tokens belong to.
pub const BOT_USER_ID: &str = "9001";

/// What Helix answers to the next Send Chat Message.
#[derive(Debug, Clone)]
pub enum Next {
    /// `is_sent: false` with this `drop_reason.code`.
    Drop(&'static str),
    /// 429, with `Ratelimit-Reset` this many seconds ahead.
    TooMany(u64),
}

/// One Send Chat Message call as Helix received it.
#[derive(Debug, Clone)]
pub struct ChatCall {
    pub broadcaster_id: String,
    pub sender_id: String,
    pub message: String,
    pub reply_parent: Option<String>,
    /// What it answered: `sent`, the drop code, `429` or `401`.
    pub outcome: String,
}

#[derive(Default)]
struct St {
    history: Mutex<HashMap<String, Vec<String>>>,
    history_requests: AtomicUsize,
    tokens_issued: AtomicUsize,
    current: Mutex<HashSet<String>>,
    next: Mutex<VecDeque<Next>>,
    chat: Mutex<Vec<ChatCall>>,
    deleted: Mutex<Vec<String>>,
    /// Ban and unban calls: (method, broadcaster, user, body).
    bans: Mutex<Vec<(String, String, String, serde_json::Value)>>,
}

pub struct FakeTwitchApi {
    pub addr: SocketAddr,
    st: Arc<St>,
}

impl FakeTwitchApi {
    pub async fn start() -> FakeTwitchApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = Arc::new(St::default());
        let app = Router::new().fallback(handle).with_state(st.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTwitchApi { addr, st }
    }

    /// `history_url` for the config.
    pub fn history_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API keys for a `[twitch]` section, sending through the API.
    pub fn api_keys(&self) -> String {
        format!(
            "send = \"api\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{REFRESH_TOKEN}\"\napi_url = \"http://{0}/helix\"\nauth_url = \"http://{0}/oauth2\"",
            self.addr
        )
    }

    /// The history service saw `line` in `channel` (as it stores lines:
    /// with `historical=1` and when it received them).
    pub fn saw(&self, channel: &str, line: &str) {
        let tagged = match line.strip_prefix('@') {
            Some(rest) => format!(
                "@historical=1;rm-received-ts={};{rest}",
                chrono::Utc::now().timestamp_millis()
            ),
            None => line.to_string(),
        };
        self.st
            .history
            .lock()
            .unwrap()
            .entry(channel.trim_start_matches('#').to_string())
            .or_default()
            .push(tagged);
    }

    /// A moderator deleted message `id`: the service marks its line.
    pub fn deleted_in_history(&self, channel: &str, id: &str) {
        let mut h = self.st.history.lock().unwrap();
        for line in h
            .entry(channel.trim_start_matches('#').to_string())
            .or_default()
            .iter_mut()
        {
            if line.contains(&format!(";id={id};")) {
                *line = line.replacen('@', "@rm-deleted=1;", 1);
            }
        }
    }

    pub fn history_requests(&self) -> usize {
        self.st.history_requests.load(Ordering::SeqCst)
    }

    /// Access tokens handed out so far (one per refresh).
    pub fn tokens_issued(&self) -> usize {
        self.st.tokens_issued.load(Ordering::SeqCst)
    }

    /// Every access token handed out stops working (as when one expires).
    pub fn expire_tokens(&self) {
        self.st.current.lock().unwrap().clear();
    }

    pub fn answer_next(&self, next: Next) {
        self.st.next.lock().unwrap().push_back(next);
    }

    pub fn chat_calls(&self) -> Vec<ChatCall> {
        self.st.chat.lock().unwrap().clone()
    }

    /// The messages Helix accepted, in order.
    pub fn sent(&self) -> Vec<String> {
        self.chat_calls()
            .into_iter()
            .filter(|c| c.outcome == "sent")
            .map(|c| c.message)
            .collect()
    }

    pub async fn wait_sent(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "helix got {sent:?}, waiting for {n}; calls {:?}",
                self.chat_calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The id Helix gave the message sent that ends with `text`.
    pub fn id_of(&self, text: &str) -> String {
        let calls = self.st.chat.lock().unwrap();
        let n = calls
            .iter()
            .position(|c| c.outcome == "sent" && c.message.ends_with(text))
            .unwrap_or_else(|| panic!("no message {text:?} sent"));
        format!("abc-123-def-{n}")
    }

    /// Bans, timeouts and unbans asked for: (method, broadcaster, user, body).
    pub fn bans(&self) -> Vec<(String, String, String, serde_json::Value)> {
        self.st.bans.lock().unwrap().clone()
    }

    pub fn deleted(&self) -> Vec<String> {
        self.st.deleted.lock().unwrap().clone()
    }
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn error(status: StatusCode, message: &str) -> Response {
    let body =
        json!({"error": status.canonical_reason(), "status": status.as_u16(), "message": message});
    (status, axum::Json(body)).into_response()
}

async fn handle(
    State(st): State<Arc<St>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = uri.path().to_string();
    if let Some(login) = path.strip_prefix("/api/v2/recent-messages/") {
        st.history_requests.fetch_add(1, Ordering::SeqCst);
        let messages = st
            .history
            .lock()
            .unwrap()
            .get(login)
            .cloned()
            .unwrap_or_default();
        return axum::Json(json!({"messages": messages, "error": null, "error_code": null}))
            .into_response();
    }
    if path == "/oauth2/token" && method == Method::POST {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
            && form.get("refresh_token").map(String::as_str) == Some(REFRESH_TOKEN)
            && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
        if !ok {
            return error(StatusCode::BAD_REQUEST, "Invalid refresh token");
        }
        let n = st.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("fake-access-s3cr3t-{n}");
        st.current.lock().unwrap().insert(token.clone());
        return axum::Json(json!({
            "access_token": token,
            "refresh_token": REFRESH_TOKEN,
            "expires_in": 14400,
            "scope": ["user:write:chat", "moderator:manage:chat_messages"],
            "token_type": "bearer"
        }))
        .into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    let current = st.current.lock().unwrap().contains(&token);
    if path == "/oauth2/validate" {
        if !current {
            return error(StatusCode::UNAUTHORIZED, "invalid access token");
        }
        return axum::Json(json!({
            "client_id": CLIENT_ID,
            "login": "relaybot",
            "scopes": ["user:write:chat", "moderator:manage:chat_messages"],
            "user_id": BOT_USER_ID,
            "expires_in": 14000
        }))
        .into_response();
    }
    let Some(call) = path.strip_prefix("/helix/") else {
        return error(StatusCode::NOT_FOUND, "no such route");
    };
    let client_ok = headers.get("client-id").and_then(|v| v.to_str().ok()) == Some(CLIENT_ID);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    match (method.clone(), call) {
        (Method::POST, "chat/messages") => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let mut call = ChatCall {
                broadcaster_id: v["broadcaster_id"].as_str().unwrap_or("").to_string(),
                sender_id: v["sender_id"].as_str().unwrap_or("").to_string(),
                message: v["message"].as_str().unwrap_or("").to_string(),
                reply_parent: v["reply_parent_message_id"].as_str().map(str::to_string),
                outcome: String::new(),
            };
            if !(current && client_ok && bearer) {
                call.outcome = "401".into();
                st.chat.lock().unwrap().push(call);
                return error(StatusCode::UNAUTHORIZED, "Invalid OAuth token");
            }
            let next = st.next.lock().unwrap().pop_front();
            let n = st.chat.lock().unwrap().len();
            let response = match next {
                Some(Next::TooMany(secs)) => {
                    call.outcome = "429".into();
                    let reset = chrono::Utc::now().timestamp() + secs as i64;
                    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                    r.headers_mut().insert("Ratelimit-Limit", 800.into());
                    r.headers_mut().insert("Ratelimit-Remaining", 0.into());
                    r.headers_mut().insert("Ratelimit-Reset", reset.into());
                    r
                }
                Some(Next::Drop(code)) => {
                    call.outcome = code.to_string();
                    axum::Json(json!({"data": [{
                        "message_id": "",
                        "is_sent": false,
                        "drop_reason": {"code": code, "message": "Your message was not sent because it is identical to the previous one you sent, less than 30 seconds ago."}
                    }]}))
                    .into_response()
                }
                None => {
                    call.outcome = "sent".into();
                    axum::Json(json!({"data": [{
                        "message_id": format!("abc-123-def-{n}"),
                        "is_sent": true,
                        "drop_reason": null
                    }]}))
                    .into_response()
                }
            };
            st.chat.lock().unwrap().push(call);
            response
        }
        _ if !(current && client_ok && bearer) => {
            error(StatusCode::UNAUTHORIZED, "Invalid OAuth token")
        }
        (Method::GET, "users") => {
            let login = query(&uri).get("login").cloned().unwrap_or_default();
            axum::Json(json!({"data": [{
                "id": room_id(&format!("#{login}")),
                "login": login,
                "display_name": login,
                "type": "",
                "broadcaster_type": "",
                "description": "",
                "profile_image_url": "",
                "offline_image_url": "",
                "view_count": 0,
                "created_at": "2016-12-14T20:32:28Z"
            }]}))
            .into_response()
        }
        (Method::POST | Method::DELETE, "moderation/bans") => {
            let q = query(&uri);
            if q.get("moderator_id").map(String::as_str) != Some(BOT_USER_ID) {
                return error(
                    StatusCode::FORBIDDEN,
                    "The user in moderator_id is not one of the broadcaster's moderators.",
                );
            }
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let user = q
                .get("user_id")
                .cloned()
                .or_else(|| v["data"]["user_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            let broadcaster = q.get("broadcaster_id").cloned().unwrap_or_default();
            st.bans.lock().unwrap().push((
                method.to_string(),
                broadcaster.clone(),
                user.clone(),
                v.clone(),
            ));
            if method == Method::DELETE {
                return StatusCode::NO_CONTENT.into_response();
            }
            axum::Json(json!({"data": [{
                "broadcaster_id": broadcaster, "moderator_id": BOT_USER_ID, "user_id": user,
                "created_at": "2026-12-03T10:00:00Z",
                "end_time": v["data"]["duration"].as_u64().map(|_| "2026-12-03T10:10:00Z")
            }]}))
            .into_response()
        }
        (Method::DELETE, "moderation/chat") => {
            let q = query(&uri);
            if q.get("moderator_id").map(String::as_str) != Some(BOT_USER_ID) {
                return error(
                    StatusCode::FORBIDDEN,
                    "The user in moderator_id is not one of the broadcaster's moderators.",
                );
            }
            st.deleted
                .lock()
                .unwrap()
                .push(q.get("message_id").cloned().unwrap_or_default());
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}
