//! The web surface as a bridge named `web`: it serves the HTTP router (chat page,
//! SSE, send API, health, metrics) for as long as it runs. Its inbound is the
//! send API; it has no outbound channels, since viewers read the stream directly
//! through room feeds (with resume by stream sequence).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Bridge, BridgeContext, BridgeError, DeliverError, Delivery, OutboundSpec};
use crate::bus::Posted;
use crate::config::{CommonBridgeConfig, Config};
use crate::feed::Feeds;
use crate::http::{self, AppState};
use crate::status::Health;

pub struct WebBridge {
    common: CommonBridgeConfig,
    config: Arc<Config>,
    feeds: Feeds,
    health: Health,
}

impl WebBridge {
    pub fn new(config: Arc<Config>, feeds: Feeds, health: Health) -> Self {
        WebBridge {
            common: CommonBridgeConfig::default(),
            config,
            feeds,
            health,
        }
    }
}

#[async_trait]
impl Bridge for WebBridge {
    fn name(&self) -> &str {
        crate::config::WEB_BRIDGE
    }

    fn common(&self) -> &CommonBridgeConfig {
        &self.common
    }

    fn spec(&self) -> OutboundSpec {
        OutboundSpec {
            max_chars: http::MAX_TEXT,
            rate: None,
            can_edit: true,
            joiner: "\n",
            default_format: "{text}",
        }
    }

    fn render_name(&self, name: &str) -> String {
        name.to_string()
    }

    fn render_text(&self, markup: &str) -> String {
        markup.to_string()
    }

    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        let addr = &self.config.http.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| BridgeError::Connection(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| addr.clone());
        tracing::info!(listen = %local, "http listening");
        ctx.status.connected();
        let app = http::router(AppState {
            config: self.config.clone(),
            feeds: self.feeds.clone(),
            health: self.health.clone(),
            inbound: ctx.inbound.clone(),
        });
        let shutdown = ctx.shutdown.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(|e| BridgeError::Connection(format!("http server failed: {e}")))
    }

    async fn deliver(&self, _: Delivery<'_>) -> Result<Posted, DeliverError> {
        // No room lists a web channel (config validation refuses it), so the
        // router never hands the web surface a delivery.
        Err(DeliverError::Reject(
            "the web surface has no outbound channels".into(),
        ))
    }
}
