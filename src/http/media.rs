//! `GET /media/{token}`: a file a bridge linked to (see `bridge::media`),
//! opened afresh: a redirect to a freshly signed URL, or the bytes streamed
//! through (at most `MAX_MEDIA`, a few at a time). What is served is never
//! rendered in this origin: no sniffing, a sandbox, and anything but images,
//! audio and video as a download.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::Semaphore;

use super::{AppState, error};
use crate::bridge::{MAX_MEDIA, Media, MediaError};

/// Files streamed at once; more wait their turn by being refused (503).
pub const STREAMS: usize = 8;

/// The streams now open.
pub fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(STREAMS))
}

pub async fn get(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, "no such file");
    let Some(index) = &state.media else {
        return not_found();
    };
    let (bridge, reference) = match index.resolve(&token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            // NATS away: the link may be fine; say so rather than "no such file".
            tracing::warn!(error = %e, "cannot look a media link up");
            metrics::counter!("jetbridge_media_lookup_failures_total").increment(1);
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the media index cannot be read now; try again",
            );
        }
    };
    let Some(b) = state.bridges.get(&bridge) else {
        return not_found();
    };
    let Ok(slot) = state.media_slots.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many files being served; try again",
        );
    };
    match b.media(&reference).await {
        Ok(Media::Redirect(url)) => {
            let Ok(location) = HeaderValue::from_str(&url) else {
                return error(StatusCode::BAD_GATEWAY, "the platform gave an unusable URL");
            };
            (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response()
        }
        Ok(Media::Stream {
            content_type,
            length,
            body,
        }) => {
            if length.is_some_and(|l| l > MAX_MEDIA) {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    MediaError::TooLarge.to_string(),
                );
            }
            // Counted as it goes: a platform that did not say the length is
            // cut off at the limit. The slot is held until the body ends.
            let mut sent = 0u64;
            let body = body.map(move |chunk| {
                let _slot = &slot;
                let chunk = chunk?;
                sent += chunk.len() as u64;
                if sent > MAX_MEDIA {
                    return Err(std::io::Error::other("file larger than the limit"));
                }
                Ok(chunk)
            });
            let ctype = content_type.unwrap_or_else(|| "application/octet-stream".into());
            let inline = ["image/", "audio/", "video/"]
                .iter()
                .any(|p| ctype.starts_with(p));
            let mut resp = Response::new(Body::from_stream(body));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&ctype)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            );
            if let Some(l) = length {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(l));
            }
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static(if inline { "inline" } else { "attachment" }),
            );
            resp
        }
        Err(e @ MediaError::Gone) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ MediaError::TooLarge) => error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        Err(e @ MediaError::Unavailable(_)) => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}
