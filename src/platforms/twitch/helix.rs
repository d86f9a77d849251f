//! Twitch's API (Helix) for one account: a user access token kept fresh from
//! the configured refresh token (refreshed before it expires and once after a
//! 401), the user it belongs to, and the calls jetbridge makes: Send Chat
//! Message (whose answer says whether Twitch accepted each message) and user
//! lookups. Tokens are [`Secret`]s: never in a log, an error or a URL.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::TwitchConfig;
use crate::config::Secret;

/// A token is refreshed this long before Twitch says it expires.
const REFRESH_EARLY: Duration = Duration::from_secs(120);

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Scopes `send = "api"` needs (Twitch's Send Chat Message reference).
pub const SEND_SCOPES: [&str; 1] = ["user:write:chat"];

/// Why a call to Twitch's API did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum HelixError {
    /// The client id, secret or refresh token was refused: nothing works
    /// until the configuration is fixed.
    #[error("twitch refused the API credentials ({status}): {message}")]
    Credentials { status: u16, message: String },
    /// Too many calls: Twitch's `Ratelimit-Reset` says when to try again.
    #[error("twitch's API rate limit, reset in {0:?}")]
    RateLimited(Duration),
    /// Twitch answered with an error.
    #[error("twitch's API answered {status} to {call}: {message}")]
    Status {
        call: &'static str,
        status: u16,
        message: String,
    },
    /// No answer (network, timeout) or one that does not read.
    #[error("cannot call twitch's API ({call}): {source}")]
    Http {
        call: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

impl HelixError {
    /// Whether a delivery should wait and try again rather than give the
    /// message up. Refused credentials count: the messages wait (unacked, so
    /// a restart with fixed credentials sends them) instead of being dropped.
    pub fn is_transient(&self) -> bool {
        match self {
            HelixError::Credentials { .. } => true,
            HelixError::RateLimited(_) | HelixError::Http { .. } => true,
            HelixError::Status { status, .. } => *status >= 500 || *status == 401,
        }
    }
}

/// Twitch's verdict on one message sent through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Sent { message_id: String },
    Dropped { code: String, message: String },
}

/// The user access token in use.
struct Access {
    token: Secret,
    /// When to refresh it.
    refresh_at: Instant,
    user_id: String,
}

struct Tokens {
    refresh: Secret,
    access: Option<Access>,
}

/// One account's Helix client.
pub struct Helix {
    http: reqwest::Client,
    api: String,
    auth: String,
    client_id: String,
    client_secret: Secret,
    tokens: Mutex<Tokens>,
    /// Scopes the account's use of the API needs.
    needs: Vec<&'static str>,
    /// Channel login → its user id. A room's channels are few and fixed.
    users: std::sync::Mutex<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Validated {
    user_id: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Helix {
    /// The client of an account with API credentials (`None` without them).
    pub fn new(cfg: &TwitchConfig, http: reqwest::Client) -> Option<Helix> {
        let mut needs = Vec::new();
        if cfg.send == super::config::SendVia::Api {
            needs.extend(SEND_SCOPES);
        }
        cfg.has_api().then(|| Helix {
            needs,
            http,
            api: cfg.api_url.trim_end_matches('/').to_string(),
            auth: cfg.auth_url.trim_end_matches('/').to_string(),
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            tokens: Mutex::new(Tokens {
                refresh: cfg.refresh_token.clone(),
                access: None,
            }),
            users: Default::default(),
        })
    }

    /// A fresh access token and its user; refreshed when it is about to
    /// expire, or when `stale` is the token Twitch just refused.
    async fn access(&self, stale: Option<&Secret>) -> Result<(Secret, String), HelixError> {
        let mut tokens = self.tokens.lock().await;
        let fresh = tokens.access.as_ref().filter(|a| {
            Instant::now() < a.refresh_at && stale.is_none_or(|s| s.expose() != a.token.expose())
        });
        if let Some(a) = fresh {
            return Ok((a.token.clone(), a.user_id.clone()));
        }
        let answer: TokenAnswer = self
            .token_call(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens.refresh.expose()),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
            ])
            .await?;
        if let Some(r) = answer.refresh_token.filter(|r| !r.is_empty()) {
            // Twitch may hand out a new refresh token; the old one may stop working.
            tokens.refresh = r;
        }
        let me = self.validate(&answer.access_token).await?;
        let missing: Vec<&str> = self
            .needs
            .iter()
            .copied()
            .filter(|n| !me.scopes.iter().any(|s| s == n))
            .collect();
        if !missing.is_empty() {
            tracing::error!(
                ?missing,
                "the twitch API token lacks scopes this account needs; authorize them and set a new refresh_token"
            );
        }
        let lifetime = Duration::from_secs(answer.expires_in.or(me.expires_in).unwrap_or(3600));
        tracing::info!(
            user_id = %me.user_id,
            expires_in = ?lifetime,
            scopes = ?me.scopes,
            "twitch API token refreshed"
        );
        let access = Access {
            token: answer.access_token,
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_EARLY),
            user_id: me.user_id,
        };
        let out = (access.token.clone(), access.user_id.clone());
        tokens.access = Some(access);
        Ok(out)
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenAnswer, HelixError> {
        let req = self.http.post(format!("{}/token", self.auth)).form(form);
        oauth(
            "oauth2/token",
            req,
            &[StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED],
        )
        .await
    }

    async fn validate(&self, token: &Secret) -> Result<Validated, HelixError> {
        let req = self
            .http
            .get(format!("{}/validate", self.auth))
            .header("Authorization", format!("OAuth {}", token.expose()));
        oauth("oauth2/validate", req, &[StatusCode::UNAUTHORIZED]).await
    }

    /// One API call as the account's user; a 401 refreshes the token once and
    /// tries again.
    async fn call(
        &self,
        call: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response, HelixError> {
        let mut refused: Option<Secret> = None;
        loop {
            let (token, _) = self.access(refused.as_ref()).await?;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.api))
                .query(query)
                .bearer_auth(token.expose())
                .header("Client-Id", &self.client_id)
                .timeout(CALL_TIMEOUT);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|source| HelixError::Http { call, source })?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if refused.is_none() => {
                    tracing::info!(call, "twitch's API refused the access token; refreshing it");
                    refused = Some(token);
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    return Err(HelixError::RateLimited(reset_in(&resp)));
                }
                _ => return check(call, resp).await,
            }
        }
    }

    /// The user id of channel `login`.
    pub async fn user_id(&self, login: &str) -> Result<String, HelixError> {
        if let Some(id) = self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(login)
        {
            return Ok(id.clone());
        }
        let call = "users";
        let resp = self
            .call(call, Method::GET, "/users", &[("login", login)], None)
            .await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|source| HelixError::Http { call, source })?;
        let id = v["data"][0]["id"]
            .as_str()
            .ok_or_else(|| HelixError::Status {
                call,
                status: 404,
                message: format!("no twitch user {login:?}"),
            })?
            .to_string();
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(login.to_string(), id.clone());
        Ok(id)
    }

    /// Send `text` to the chat of `broadcaster_id` as the token's user;
    /// `reply_to` is the Twitch id of the message it answers.
    pub async fn send_chat(
        &self,
        broadcaster_id: &str,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<Verdict, HelixError> {
        let (_, sender) = self.access(None).await?;
        let mut body = json!({
            "broadcaster_id": broadcaster_id,
            "sender_id": sender,
            "message": text,
        });
        if let Some(r) = reply_to {
            body["reply_parent_message_id"] = json!(r);
        }
        let call = "chat/messages";
        let resp = self
            .call(call, Method::POST, "/chat/messages", &[], Some(&body))
            .await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|source| HelixError::Http { call, source })?;
        let d = &v["data"][0];
        if d["is_sent"].as_bool() == Some(true) {
            return Ok(Verdict::Sent {
                message_id: d["message_id"].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok(Verdict::Dropped {
            code: d["drop_reason"]["code"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            message: d["drop_reason"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Delete message `message_id` from the chat of `broadcaster_id`, as a
    /// moderator there (`DELETE /moderation/chat`).
    pub async fn delete_chat(
        &self,
        broadcaster_id: &str,
        message_id: &str,
    ) -> Result<(), HelixError> {
        let (_, me) = self.access(None).await?;
        self.call(
            "moderation/chat",
            Method::DELETE,
            "/moderation/chat",
            &[
                ("broadcaster_id", broadcaster_id),
                ("moderator_id", &me),
                ("message_id", message_id),
            ],
            None,
        )
        .await?;
        Ok(())
    }

    /// Ban user `user_id` from the chat of `broadcaster_id`, for `duration_s`
    /// seconds (a timeout) or for good (`POST /moderation/bans`).
    pub async fn ban(
        &self,
        broadcaster_id: &str,
        user_id: &str,
        duration_s: Option<u64>,
        reason: Option<&str>,
    ) -> Result<(), HelixError> {
        let (_, me) = self.access(None).await?;
        let mut data = serde_json::json!({ "user_id": user_id });
        if let Some(d) = duration_s {
            data["duration"] = d.into();
        }
        if let Some(r) = reason {
            data["reason"] = r.into();
        }
        self.call(
            "moderation/bans",
            Method::POST,
            "/moderation/bans",
            &[("broadcaster_id", broadcaster_id), ("moderator_id", &me)],
            Some(&serde_json::json!({ "data": data })),
        )
        .await?;
        Ok(())
    }

    /// Lift a ban or timeout of `user_id` (`DELETE /moderation/bans`).
    pub async fn unban(&self, broadcaster_id: &str, user_id: &str) -> Result<(), HelixError> {
        let (_, me) = self.access(None).await?;
        self.call(
            "moderation/bans",
            Method::DELETE,
            "/moderation/bans",
            &[
                ("broadcaster_id", broadcaster_id),
                ("moderator_id", &me),
                ("user_id", user_id),
            ],
            None,
        )
        .await?;
        Ok(())
    }
}

/// One call to Twitch's OAuth, read as `T`; an answer in `refused` means
/// the credentials themselves were refused.
async fn oauth<T: serde::de::DeserializeOwned>(
    call: &'static str,
    req: reqwest::RequestBuilder,
    refused: &[StatusCode],
) -> Result<T, HelixError> {
    let resp = req
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|source| HelixError::Http { call, source })?;
    let status = resp.status();
    if refused.contains(&status) {
        return Err(HelixError::Credentials {
            status: status.as_u16(),
            message: error_message(resp).await,
        });
    }
    check(call, resp)
        .await?
        .json()
        .await
        .map_err(|source| HelixError::Http { call, source })
}

/// Whether a dropped message may go through when sent again later: Twitch's
/// own pace and a channel's slow mode pass; a ban, a filter or a duplicate
/// does not.
pub fn drop_is_transient(code: &str) -> bool {
    matches!(code, "msg_ratelimit" | "msg_slowmode")
}

/// How long until Twitch's rate limit bucket refills (`Ratelimit-Reset`, a
/// Unix time in seconds); a second when it does not say.
fn reset_in(resp: &reqwest::Response) -> Duration {
    let reset = resp
        .headers()
        .get("Ratelimit-Reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    match reset {
        Some(at) => {
            let wait = at - chrono::Utc::now().timestamp();
            Duration::from_secs(wait.clamp(1, 60) as u64)
        }
        None => Duration::from_secs(1),
    }
}

/// `resp` when it is a success, else its status and message as an error.
async fn check(
    call: &'static str,
    resp: reqwest::Response,
) -> Result<reqwest::Response, HelixError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    Err(HelixError::Status {
        call,
        status: status.as_u16(),
        message: error_message(resp).await,
    })
}

/// Twitch's `message` of an error answer, or the body's start.
async fn error_message(resp: reqwest::Response) -> String {
    let body = resp.text().await.unwrap_or_default();
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}
