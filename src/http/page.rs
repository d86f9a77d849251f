//! `GET /` (the rooms), `GET /rooms/{room}` (the chat page, also an OBS
//! overlay) and `GET /assets/{name}` (its script and style). All three files
//! are embedded in the binary; the page renders every piece of chat as text,
//! under a CSP that allows no inline script or style.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;

const CHAT_PAGE: &str = include_str!("chat.html");
const CHAT_JS: &str = include_str!("chat.js");
const CHAT_CSS: &str = include_str!("chat.css");

/// Only the page's own script and style; images from anywhere (avatars,
/// emotes); requests to this server only; no frames, plugins or forms elsewhere.
pub(super) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src * data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors *";

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub async fn index(State(state): State<AppState>) -> Html<String> {
    let mut rooms = String::new();
    for r in &state.config.rooms {
        let channels: Vec<String> = r
            .channels
            .iter()
            .map(|c| esc(&format!("{}:{}", c.bridge, c.channel)))
            .collect();
        rooms.push_str(&format!(
            "<li><a href=\"/rooms/{n}\">{n}</a> <a class=\"o\" href=\"/rooms/{n}?overlay=1\">overlay</a><br><small>{}</small></li>",
            channels.join(", "),
            n = esc(&r.name)
        ));
    }
    if rooms.is_empty() {
        rooms.push_str("<li>No rooms are configured.</li>");
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>jetbridge</title><style>body{{font:16px system-ui,sans-serif;margin:2rem auto;max-width:40rem;background:#0e0e10;color:#efeff1}}\
a{{color:#a970ff}}li{{margin:.6rem 0}}small{{color:#adadb8}}.o{{font-size:.8em;margin-left:.5em}}</style></head>\
<body><h1>jetbridge rooms</h1><ul>{rooms}</ul></body></html>"
    ))
}

fn not_found_page(room: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!doctype html><meta charset=\"utf-8\"><title>not found</title><p>Unknown room {}. <a href=\"/\">Rooms</a></p>",
            esc(room)
        )),
    )
        .into_response()
}

pub async fn room(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    let Some(cfg) = state.config.room(&room) else {
        return not_found_page(&room);
    };
    // The room name is validated to [A-Za-z0-9_-]; escaped all the same.
    let page = CHAT_PAGE
        .replace("{{ROOM}}", &esc(&room))
        .replace(
            "{{HOLD}}",
            &cfg.hold.map_or(0, |h| h.as_millis()).to_string(),
        )
        .replace(
            "{{SEND}}",
            if state.config.http.api_token.is_empty() {
                "0"
            } else {
                "1"
            },
        );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// The page's script and style.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "chat.js" => (CHAT_JS, "text/javascript; charset=utf-8"),
        "chat.css" => (CHAT_CSS, "text/css; charset=utf-8"),
        "moderate.js" => (
            super::moderate::CONSOLE_JS,
            "text/javascript; charset=utf-8",
        ),
        "moderate.css" => (super::moderate::CONSOLE_CSS, "text/css; charset=utf-8"),
        _ => return super::error(StatusCode::NOT_FOUND, "no such asset"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Embedded in the binary: a new version comes with a restart.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
