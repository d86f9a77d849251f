//! `GET /` (the rooms) and `GET /rooms/{room}` (the chat page, also an OBS
//! overlay). The page is one self-contained file embedded in the binary; it
//! renders every piece of chat text as text.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;

const CHAT_PAGE: &str = include_str!("chat.html");

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

pub async fn room(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    if state.config.room(&room).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Html(format!(
                "<!doctype html><meta charset=\"utf-8\"><title>not found</title><p>Unknown room {}. <a href=\"/\">Rooms</a></p>",
                esc(&room)
            )),
        )
            .into_response();
    }
    // The room name goes into the page as JSON inside an attribute, escaped twice
    // over: it is validated to [A-Za-z0-9_-] anyway.
    let page = CHAT_PAGE.replace("{{ROOM}}", &esc(&room));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Only our own script and inline style; images from anywhere (avatars,
            // emotes); no frames, no plugins.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src * data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors *",
            ),
        ],
        page,
    )
        .into_response()
}
