//! Our REST client for Discord, used for everything outbound and for lookups.
//!
//! Not serenity's: serenity applies `HttpBuilder::proxy` (our `api_url`) only
//! with its rate limiter disabled, and then a 429 reaches the caller without
//! its `retry_after`. Here every failure keeps its status, Discord's error code
//! and `retry_after`, and [`RestError`] says what the router should do. No URL
//! (webhook paths carry a token) ever reaches an error or a log.

use std::time::Duration;

use serde_json::Value;

use crate::bridge::DeliverError;
use crate::config::Secret;

/// A Discord REST call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: {}", self.describe())]
pub struct RestError {
    pub method: reqwest::Method,
    /// The path with any webhook token replaced by `<token>`.
    pub path: String,
    /// The HTTP status; `None` when no answer came (network, timeout).
    pub status: Option<u16>,
    /// Discord's JSON error code (10015 Unknown Webhook, 50035 Invalid Form Body).
    pub code: Option<u64>,
    /// How long Discord asked us to wait (429).
    pub retry_after: Option<Duration>,
    /// Discord's message, or what went wrong on the way.
    pub message: String,
    /// Which setting to look at when the token is refused.
    pub hint: Option<String>,
}

impl RestError {
    fn describe(&self) -> String {
        let mut s = match self.status {
            Some(st) => format!("{st} {}", self.message),
            None => self.message.clone(),
        };
        if let Some(h) = &self.hint {
            s.push_str(&format!(" ({h})"));
        }
        s
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == Some(401)
    }
}

impl From<RestError> for DeliverError {
    fn from(e: RestError) -> Self {
        match e.status {
            Some(429) => DeliverError::RateLimited(e.retry_after.unwrap_or(Duration::from_secs(1))),
            // A bad token is an operator problem; keep the messages until it is fixed.
            Some(401) => DeliverError::retry(e),
            Some(400 | 403 | 404) => DeliverError::reject(e),
            _ => DeliverError::retry(e),
        }
    }
}

/// Discord's REST API at one base URL, with one bot token.
pub struct Rest {
    http: reqwest::Client,
    /// `{api_url}/api/v10`.
    api: String,
    token: Secret,
    /// `<bridge>.token / JETBRIDGE_<BRIDGE>__TOKEN`, for a refused token.
    token_hint: String,
}

/// Whether a call carries the bot token (webhook calls carry their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bot,
    None,
}

impl Rest {
    pub fn new(bridge: &str, api_url: &str, token: Secret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent("DiscordBot (https://github.com/jetbridge, 0.1) jetbridge")
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Rest {
            http,
            api: format!("{}/api/v10", api_url.trim_end_matches('/')),
            token,
            token_hint: format!(
                "check {bridge}.token / JETBRIDGE_{}__TOKEN",
                bridge.to_uppercase()
            ),
        })
    }

    /// The hint for a refused token.
    pub fn token_hint(&self) -> &str {
        &self.token_hint
    }

    /// One JSON call; `Value::Null` for an empty success.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        auth: Auth,
    ) -> Result<Value, RestError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.api));
        if auth == Auth::Bot {
            req = req.header("Authorization", format!("Bot {}", self.token.expose()));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(method, path, req).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, RestError> {
        let fail = |status: Option<u16>, message: String| RestError {
            method: method.clone(),
            path: redact_path(path),
            status,
            code: None,
            retry_after: None,
            message,
            hint: None,
        };
        let resp = req.send().await.map_err(|e| fail(None, without_url(&e)))?;
        let status = resp.status();
        let retry_after_header = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let text = resp
            .text()
            .await
            .map_err(|e| fail(Some(status.as_u16()), without_url(&e)))?;
        if status.is_success() {
            return Ok(if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::Null)
            });
        }
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let mut err = fail(
            Some(status.as_u16()),
            body["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| text.chars().take(200).collect()),
        );
        err.code = body["code"].as_u64();
        let after = body["retry_after"].as_f64().or(retry_after_header);
        err.retry_after = after.map(|s| Duration::from_secs_f64(s.max(0.0)));
        if status.as_u16() == 401 {
            err.hint = Some(self.token_hint.clone());
        }
        Err(err)
    }
}

/// A reqwest error without its URL (a webhook URL carries a token).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

/// A webhook path without its token, for errors and logs.
pub fn redact_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_paths_are_redacted() {
        assert_eq!(
            redact_path("/webhooks/1/secret?wait=true"),
            "/webhooks/1/<token>"
        );
        assert_eq!(
            redact_path("/webhooks/1/secret/messages/5"),
            "/webhooks/1/<token>/messages/5"
        );
        assert_eq!(redact_path("/channels/5/messages"), "/channels/5/messages");
    }

    #[test]
    fn statuses_classify() {
        let e = |status: u16, after: Option<u64>| RestError {
            method: reqwest::Method::POST,
            path: "/x".into(),
            status: Some(status),
            code: None,
            retry_after: after.map(Duration::from_secs),
            message: String::new(),
            hint: None,
        };
        assert!(matches!(
            DeliverError::from(e(429, Some(3))),
            DeliverError::RateLimited(d) if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            DeliverError::from(e(404, None)),
            DeliverError::Reject(_)
        ));
        assert!(matches!(
            DeliverError::from(e(401, None)),
            DeliverError::Retry(_)
        ));
        assert!(matches!(
            DeliverError::from(e(502, None)),
            DeliverError::Retry(_)
        ));
    }
}
