//! The Web API side: the client (a connector that also speaks plain http for
//! proxies and tests), what Slack's errors mean for a delivery, and the user
//! and channel lookups inbound text needs, cached.

use std::sync::Arc;
use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::Shared;
use crate::bridge::{BuildError, DeliverError};

/// Users resolved through `users.info`, at most this many kept.
pub const USER_CACHE: usize = 2000;
/// Channel names resolved through `conversations.info`, at most this many kept.
pub const CHANNEL_CACHE: usize = 1000;

/// A client for the Web API at `api_url`.
pub fn client(api_url: &str) -> Result<Arc<SlackHyperClient>, BuildError> {
    // slack-morphism's default connector is https only; `http://` serves
    // proxies and tests.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(BuildError::RootCertificates)?
        .https_or_http()
        .enable_http1()
        .build();
    let connector = SlackClientHyperConnector::with_connector(https)
        // The connector joins "{base}/{method}" itself.
        .with_slack_api_url(api_url.trim_end_matches('/'));
    Ok(Arc::new(SlackClient::new(connector)))
}

/// What a Web API failure means for a delivery.
pub fn classify(e: SlackClientError) -> DeliverError {
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
            | "invalid_blocks" => DeliverError::reject(SlackClientError::ApiError(a)),
            // Token problems are the operator's to fix; keep the messages.
            _ => DeliverError::retry(SlackClientError::ApiError(a)),
        },
        SlackClientError::HttpError(h)
            if h.status_code.is_client_error() && h.status_code.as_u16() != 408 =>
        {
            DeliverError::reject(SlackClientError::HttpError(h))
        }
        other => DeliverError::retry(other),
    }
}

/// Slack's answer that something is already gone (a delete that raced).
pub fn is_gone(e: &SlackClientError) -> bool {
    matches!(e, SlackClientError::ApiError(a) if a.code == "message_not_found")
}

/// Slack error codes that mean the token itself is refused.
pub fn is_token_error(code: &str) -> bool {
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

/// What `users.info` tells about an author.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub avatar: Option<String>,
    /// Workspace owners and admins can remove anyone's messages: `moderator`;
    /// bot users: `bot`.
    pub badges: Vec<String>,
}

/// The badges a Slack user's flags earn.
fn badges(flags: &SlackUserFlags) -> Vec<String> {
    let mut out = Vec::new();
    if [flags.is_admin, flags.is_owner, flags.is_primary_owner].contains(&Some(true)) {
        out.push("moderator".to_string());
    }
    if flags.is_bot == Some(true) {
        out.push("bot".to_string());
    }
    out
}

impl Shared {
    pub(super) async fn user(&self, id: &str) -> Person {
        if let Some(u) = self.users.lock().await.get(id) {
            return u.clone();
        }
        let session = self.client.open_session(&self.bot_token);
        let found = match session
            .users_info(&SlackApiUsersInfoRequest::new(SlackUserId::new(id.into())))
            .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                // Said, and not remembered: the next message asks again.
                lookup_failed(&self.name, "user", id, &e);
                None
            }
        };
        let found = found.map(|r| {
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
            Person {
                name,
                avatar,
                badges: badges(&u.flags),
            }
        });
        let Some(value) = found else {
            return Person {
                name: id.to_string(),
                avatar: None,
                badges: Vec::new(),
            };
        };
        self.users
            .lock()
            .await
            .insert(id.to_string(), value.clone());
        value
    }

    pub(super) async fn channel_name(&self, id: &str) -> String {
        if let Some(n) = self.channels.lock().await.get(id) {
            return n.clone();
        }
        let session = self.client.open_session(&self.bot_token);
        let name = match session
            .conversations_info(&SlackApiConversationsInfoRequest::new(SlackChannelId::new(
                id.into(),
            )))
            .await
        {
            Ok(r) => r.channel.name.unwrap_or_else(|| "channel".into()),
            Err(e) => {
                lookup_failed(&self.name, "channel", id, &e);
                return "channel".into();
            }
        };
        self.channels
            .lock()
            .await
            .insert(id.to_string(), name.clone());
        name
    }
}

/// A lookup of a name failed: the message goes on with a stand-in (the id,
/// "channel"), said in the log and counted, never remembered.
fn lookup_failed(bridge: &str, what: &'static str, id: &str, error: &dyn std::fmt::Display) {
    tracing::warn!(what, id, error = %error, "slack lookup failed; a stand-in name is used this time");
    metrics::counter!("jetbridge_lookup_failures_total", "bridge" => bridge.to_string(), "what" => what)
        .increment(1);
}
