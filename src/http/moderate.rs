//! The moderator's console: `GET /rooms/{room}/moderate` (the page; it asks
//! for the token once and keeps it in the tab, as the chat page's message
//! box does) and `POST /rooms/{room}/moderation` (what the page and scripts
//! call), both off while `[http] mod_token` is empty.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::send::refusal;
use super::{AppState, error};
use crate::bridge::UserActionKind;
use crate::config::duration;
use crate::event::Author;
use crate::render;
use crate::router::{ConsoleError, OnUser};

const CONSOLE_PAGE: &str = include_str!("moderate.html");
pub const CONSOLE_JS: &str = include_str!("moderate.js");
pub const CONSOLE_CSS: &str = include_str!("moderate.css");

/// Longest reason or moderator name kept.
const MAX_REASON: usize = 500;
const MAX_NAME: usize = 64;

/// The body of a moderation: a JSON object with these keys and no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    action: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    user: Option<UserRef>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// Who acts, as the audit trail shows it (default "console").
    #[serde(default)]
    moderator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRef {
    bridge: String,
    id: String,
    #[serde(default)]
    name: Option<String>,
}

const OFF: &str = "moderation is off: set http.mod_token (JETBRIDGE_HTTP__MOD_TOKEN)";

pub async fn page(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    if state.config.http.mod_token.is_empty() {
        return error(StatusCode::FORBIDDEN, OFF);
    }
    if state.config.room(&room).is_none() {
        return error(StatusCode::NOT_FOUND, format!("unknown room {room:?}"));
    }
    // The room name is validated to [A-Za-z0-9_-]: nothing to escape.
    let page = CONSOLE_PAGE.replace("{{ROOM}}", &room);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, super::page::PAGE_CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

/// One line of at most `max` characters, or none when empty.
fn line(s: Option<String>, max: usize) -> Option<String> {
    let s: String = render::single_line(s.as_deref().unwrap_or(""))
        .chars()
        .take(max)
        .collect();
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

pub async fn post(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(refused) = refusal(&state.config.http.mod_token, &headers, OFF) {
        return refused;
    }
    if state.config.room(&room).is_none() {
        return error(StatusCode::NOT_FOUND, format!("unknown room {room:?}"));
    }
    let console = &state.console;
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!("cannot read the body: {}", e.body_text()),
            );
        }
    };
    let body: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let actor = Author {
        id: "console".into(),
        name: line(body.moderator, MAX_NAME).unwrap_or_else(|| "console".into()),
        ..Default::default()
    };
    let reason = line(body.reason, MAX_REASON);
    let done = match body.action.as_str() {
        "delete" => {
            let Some(target) = body.target.filter(|t| !t.trim().is_empty()) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a delete needs \"target\": an event id",
                );
            };
            console.delete(&room, target.trim(), actor, reason).await
        }
        "timeout" | "ban" | "unban" => {
            let Some(user) = body
                .user
                .filter(|u| !u.id.is_empty() && !u.bridge.is_empty())
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "needs \"user\": {\"bridge\": \"twitch\", \"id\": \"…\"}",
                );
            };
            let kind = match body.action.as_str() {
                "ban" => UserActionKind::Ban,
                "unban" => UserActionKind::Unban,
                _ => match body.duration.as_deref().map(duration::parse) {
                    Some(Ok(d)) if !d.is_zero() => UserActionKind::Timeout(d),
                    Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
                    _ => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "a timeout needs \"duration\", such as \"10m\"",
                        );
                    }
                },
            };
            let on = OnUser {
                bridge: user.bridge,
                user: Author {
                    name: line(user.name, MAX_NAME).unwrap_or_else(|| user.id.clone()),
                    id: user.id,
                    ..Default::default()
                },
                kind,
            };
            console.act(&room, on, actor, reason).await
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?} (delete, timeout, ban, unban)"),
            );
        }
    };
    match done {
        Ok(id) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "id": id })),
        )
            .into_response(),
        Err(ConsoleError::NotFound(why)) => error(StatusCode::NOT_FOUND, why),
        Err(ConsoleError::Conflict(why)) => error(StatusCode::CONFLICT, why),
        Err(e @ ConsoleError::Bus(_)) => {
            tracing::warn!(error = %e, "a moderation could not be stored");
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}
