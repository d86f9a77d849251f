//! The supervisor of one bridge: keeps it running, restarts it with jittered
//! exponential backoff whenever it returns, reports its state, and never lets
//! it stop the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Bridge, BridgeContext, BridgeError, Inbound, StatusReporter};
use crate::backoff::Backoff;
use crate::config::Direction;
use crate::status::Health;

/// Keep `bridge` running until `shutdown`.
pub async fn supervise(
    bridge: Arc<dyn Bridge>,
    inbound: Inbound,
    channels: Vec<(String, Direction)>,
    health: Health,
    shutdown: CancellationToken,
) {
    let name = bridge.name().to_string();
    let span = tracing::info_span!("bridge", bridge = %name);
    async move {
        let status = StatusReporter::new(&name, health);
        let give_up = CancellationToken::new();
        tokio::spawn({
            let (shutdown, give_up) = (shutdown.clone(), give_up.clone());
            async move {
                shutdown.cancelled().await;
                tokio::time::sleep(super::STOP_INBOUND).await;
                give_up.cancel();
            }
        });
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        loop {
            status.connecting("");
            let started = Instant::now();
            let ctx = BridgeContext {
                inbound: inbound.clone(),
                status: status.clone(),
                channels: channels.clone(),
                shutdown: shutdown.child_token(),
                give_up: give_up.clone(),
            };
            let result = bridge.run(ctx).await;
            if shutdown.is_cancelled() {
                break;
            }
            // A connection that stayed up a while earns a quick first retry.
            if started.elapsed() > Duration::from_secs(60) {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            match &result {
                Ok(()) => {
                    tracing::warn!(retry_in = ?delay, "bridge connection ended, reconnecting")
                }
                Err(e @ BridgeError::Auth { .. }) => {
                    tracing::error!(error = %e, retry_in = ?delay, "bridge login refused")
                }
                Err(e @ (BridgeError::Connection { .. } | BridgeError::Ended(_))) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "bridge connection failed")
                }
            }
            metrics::counter!("jetbridge_reconnects_total", "bridge" => name.clone()).increment(1);
            status.connecting(match result {
                Ok(()) => "reconnecting".to_string(),
                Err(e) => e.to_string(),
            });
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        tracing::info!("bridge stopped");
    }
    .instrument(span)
    .await
}
