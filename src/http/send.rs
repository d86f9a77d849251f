//! `POST /rooms/{room}/messages`: publish a `web` message, answered once
//! JetStream stored it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, error};
use crate::event::ChatEvent;
use crate::render;

/// Longest accepted text, in Unicode scalar values.
pub const MAX_TEXT: usize = 4000;
/// Longest author name kept.
const MAX_AUTHOR: usize = 64;
/// Largest body read: the longest text, four bytes a character, and room for
/// JSON escapes and the author.
pub const MAX_BODY: usize = 64 * 1024;

/// The body of a send: a JSON object with these keys and no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: Option<String>,
    #[serde(default)]
    author: Option<String>,
}

/// The bearer token of an `Authorization` header (the scheme is
/// case-insensitive, as everywhere in HTTP).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn post(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let off = "sending is disabled: set http.api_token (JETBRIDGE_HTTP__API_TOKEN)";
    if let Some(refused) = refusal(&state.config.http.api_token, &headers, off) {
        return refused;
    }
    if state.config.room(&room).is_none() {
        return error(StatusCode::NOT_FOUND, format!("unknown room {room:?}"));
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!("cannot read the body: {}", e.body_text()),
            );
        }
    };
    let body: Body = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(map)) => {
            match Body::deserialize(serde_json::Value::Object(map)) {
                Ok(b) => b,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
            }
        }
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object like {\"text\": \"…\", \"author\": \"…\"}",
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let Some(text) = body.text else {
        return error(StatusCode::BAD_REQUEST, "missing \"text\"");
    };
    let text = text.trim();
    if text.is_empty() {
        return error(StatusCode::BAD_REQUEST, "\"text\" is empty");
    }
    let len = render::char_len(text);
    if len > MAX_TEXT {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("\"text\" has {len} characters; the limit is {MAX_TEXT}"),
        );
    }
    let author: String = render::single_line(body.author.as_deref().unwrap_or(""))
        .chars()
        .take(MAX_AUTHOR)
        .collect();
    let author = if author.is_empty() {
        "web".to_string()
    } else {
        author
    };
    let ev = ChatEvent::web(&room, &author, text.to_string());
    match state.inbound.publish_acked(ev.clone()).await {
        Ok(seq) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": ev.id, "seq": seq })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "send API could not store a message");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"))
        }
    }
}

/// Why `headers` do not carry the bearer token `token`, as the answer: 403
/// saying `off` when the token is empty (the route is off), 401 when missing
/// or wrong; `None` when they do.
pub(super) fn refusal(
    token: &crate::config::Secret,
    headers: &HeaderMap,
    off: &str,
) -> Option<Response> {
    let token = token.expose();
    if token.is_empty() {
        return Some(error(StatusCode::FORBIDDEN, off));
    }
    let given = bearer(headers).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ));
    }
    None
}

/// Compare without leaking the position of the first difference through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as usize;
    }
    diff == 0
}
