//! `GET /rooms/{room}/events`: Server-Sent Events. `id:` is the stream sequence,
//! `event:` the kind, `data:` the event JSON on one line. `Last-Event-ID` (or
//! `?since=SEQ`) resumes after SEQ; otherwise the last `?last=N` (default 50)
//! events come first. An `event: gap` says when the resume point aged out.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::{AppState, error};
use crate::feed::{FeedItem, RING, Start};

#[derive(Deserialize, Default)]
pub struct Params {
    since: Option<u64>,
    last: Option<usize>,
}

pub async fn events(
    State(state): State<AppState>,
    Path(room): Path<String>,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if state.config.room(&room).is_none() {
        return error(StatusCode::NOT_FOUND, format!("unknown room {room:?}"));
    }
    let params = match params {
        Ok(Query(p)) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{} (since and last are whole numbers)", e.body_text()),
            );
        }
    };
    let last_event_id = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if v.trim().parse::<u64>().is_ok() => v.trim().parse::<u64>().ok(),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Last-Event-ID must be a stream sequence (a whole number)",
            );
        }
    };
    let start = match (last_event_id, params.since) {
        (Some(seq), _) | (None, Some(seq)) => Start::After(seq),
        (None, None) => Start::Last(params.last.unwrap_or(50).min(RING)),
    };
    let feed = match state.feeds.subscribe(&room, start).await {
        Ok(f) => f,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    metrics::gauge!("jetbridge_sse_viewers").increment(1.0);
    let guard = ViewerGuard;
    let stream = feed.map(move |item| {
        let _keep = &guard;
        Ok::<_, Infallible>(match item {
            FeedItem::Event(ev) => Event::default()
                .id(ev.seq.to_string())
                .event(ev.kind.as_str())
                .data(String::from_utf8_lossy(&ev.json)),
            FeedItem::Gap { after, oldest } => Event::default()
                .event("gap")
                .data(serde_json::json!({ "after": after, "oldest": oldest }).to_string()),
        })
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Counts a viewer down when its stream is dropped.
struct ViewerGuard;

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        metrics::gauge!("jetbridge_sse_viewers").decrement(1.0);
    }
}
