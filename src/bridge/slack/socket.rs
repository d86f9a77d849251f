//! Socket Mode, on slack-morphism: the listener's callbacks queue each event
//! (slack-morphism acks the envelope once the callback returns; Slack wants the
//! ack within 3 s) and report the connection's state.

use std::sync::Arc;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::Shared;
use super::api::is_token_error;
use crate::bridge::{BridgeContext, BridgeError, Inbound, StatusReporter};

/// What the callbacks reach through slack-morphism's user state.
struct ListenerState {
    shared: Arc<Shared>,
    inbound: Inbound,
    status: StatusReporter,
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let (shared, inbound) = {
        let guard = states.read().await;
        let Some(st) = guard.get_user_state::<ListenerState>() else {
            return Ok(());
        };
        (st.shared.clone(), st.inbound.clone())
    };
    if let SlackEventCallbackBody::Message(msg) = event.event {
        shared.on_message(msg, &inbound).await;
    }
    Ok(())
}

// Generic over the event: slack-morphism does not export the hello event's type
// by name, and the callback's function-pointer type fixes it.
async fn on_hello<E>(
    _event: E,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) {
    let guard = states.read().await;
    if let Some(st) = guard.get_user_state::<ListenerState>() {
        st.status.connected();
    }
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    _states: SlackClientEventsUserState,
) -> http::StatusCode {
    tracing::warn!(error = %err, "slack socket mode error");
    // Acknowledge: the event is not lost to us (it is stored or dropped by
    // design), and a redelivery would only repeat the same failure.
    http::StatusCode::OK
}

/// Listen on Socket Mode until `ctx.shutdown`.
pub(super) async fn listen(shared: &Arc<Shared>, ctx: &BridgeContext) -> Result<(), BridgeError> {
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_hello_events(on_hello)
        .with_push_events(on_push);
    let env = Arc::new(
        SlackClientEventsListenerEnvironment::new(shared.client.clone())
            .with_error_handler(on_error)
            .with_user_state(ListenerState {
                shared: shared.clone(),
                inbound: ctx.inbound.clone(),
                status: ctx.status.clone(),
            }),
    );
    let listener =
        SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), env, callbacks);
    let app_token = SlackApiToken::new(shared.cfg.app_token.expose().into());
    if let Err(e) = listener.listen_for(&app_token).await {
        let name = &shared.name;
        return Err(match e {
            SlackClientError::ApiError(a) if is_token_error(&a.code) => BridgeError::Auth(format!(
                "Slack refused the app token: {} (check {name}.app_token / JETBRIDGE_{}__APP_TOKEN, an xapp- token with connections:write)",
                a.code,
                name.to_uppercase()
            )),
            other => BridgeError::Connection(format!("slack socket mode: {other}")),
        });
    }
    listener.start().await;
    ctx.shutdown.cancelled().await;
    listener.shutdown().await;
    Ok(())
}
