//! The HTTP surface (`[http]`): room list and chat page, Server-Sent Events with
//! resume, the send API, health, readiness and Prometheus metrics.
//!
//! Handlers use core services only (room feeds, the health board, the inbound
//! sink of the `web` bridge name); `lib.rs` wires it and [`serve`] runs it.

mod health;
mod media;
mod moderate;
mod page;
mod send;
mod sse;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use std::collections::HashMap;

use crate::bridge::{Bridge, Inbound, MediaIndex};
use crate::config::Config;
use crate::feed::Feeds;
use crate::status::Health;

pub use health::{keep_metrics, metrics_handle};
pub use media::slots as media_slots;
pub use send::MAX_TEXT;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub feeds: Feeds,
    pub health: Health,
    pub inbound: Inbound,
    /// Where media links are kept, when this server serves them.
    pub media: Option<Arc<dyn MediaIndex>>,
    /// The running bridges, by name (they open the files they linked to).
    pub bridges: Arc<HashMap<String, Arc<dyn Bridge>>>,
    /// Media streams open now (see `media::STREAMS`).
    pub media_slots: Arc<tokio::sync::Semaphore>,
    /// What the moderator's console acts through.
    pub console: Arc<crate::router::Console>,
}

/// `{"error": "…"}` with a status.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page (see / for the rooms)")
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}

/// Serve `state` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %local, "http listening");
    let app = router(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "http server failed");
    }
}

pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.http.cors_origins);
    let mut app = Router::new()
        .route("/", get(page::index))
        .route("/rooms/{room}", get(page::room))
        .route("/assets/{name}", get(page::asset))
        .route("/rooms/{room}/events", get(sse::events))
        .route(
            "/rooms/{room}/messages",
            axum::routing::post(send::post)
                .layer(axum::extract::DefaultBodyLimit::max(send::MAX_BODY)),
        )
        .route("/rooms/{room}/moderate", get(moderate::page))
        .route(
            "/rooms/{room}/moderation",
            axum::routing::post(moderate::post)
                .layer(axum::extract::DefaultBodyLimit::max(send::MAX_BODY)),
        )
        .route("/media/{token}", get(media::get))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::HeaderName::from_static("last-event-id"),
        ]);
    if origins.iter().any(|o| o == "*") {
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(layer.allow_origin(list))
}
