//! Socket Mode, our own client of it: `apps.connections.open` (slack-morphism's
//! Web API), one websocket, envelopes read in order into slack-morphism's
//! models. An envelope carrying chat is acknowledged only once the bridge has
//! queued its event (Slack wants the ack within 3 s; one it never gets is sent
//! again, and the repeat collapses in JetStream's dedupe). A stop reads no new
//! frame, lets the bridge queue what was read, acknowledges that, and only
//! then closes: an envelope Slack handed us is never lost to a rolling deploy.
//!
//! Why not slack-morphism's listener: it says nothing when a socket drops (so
//! readiness could not follow the connection), hands each envelope to a task
//! of its own (so events could be reordered), and reads a malformed message
//! as an empty one without a word. Here a connection that closes, errs or
//! stops answering pings is reported, events keep their order, and what
//! cannot be read is counted and logged.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::api::is_token_error;
use super::files::{FileRef, read_push};
use crate::backoff::Backoff;
use crate::bridge::{BridgeError, Inbound};

/// What the socket says, in order.
pub enum SocketEvent {
    /// A connection is up (Slack said hello).
    Connected,
    /// The connection is gone; another is being opened.
    Lost(String),
    /// An event, with the files taken out of its JSON (see `files`), and its
    /// envelope to acknowledge once the event is queued (through the acks
    /// channel handed to [`run`]).
    Push(Box<SlackPushEventCallback>, Vec<FileRef>, Option<String>),
    /// A stop: everything sent before this was handled; say so.
    Flush(oneshot::Sender<()>),
}

/// How often we ping, and how long a silent connection is trusted.
const PING_EVERY: Duration = Duration::from_secs(10);
const SILENCE_LIMIT: Duration = Duration::from_secs(30);

type Socket = tokio_tungstenite::WebSocketStream<
    Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>,
>;

/// Keep a Socket Mode connection open until `stop`, reconnecting with backoff;
/// returns an error only for a refused app token.
pub async fn run(
    shared: &Shared,
    inbound: &Inbound,
    events: mpsc::UnboundedSender<SocketEvent>,
    mut acks: mpsc::UnboundedReceiver<String>,
    stop: CancellationToken,
    give_up: CancellationToken,
) -> Result<(), BridgeError> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let opened = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            o = open(shared) => o,
        };
        let why = match opened {
            Ok(socket) => {
                let started = Instant::now();
                let why = read(socket, inbound, &events, &mut acks, (&stop, &give_up)).await;
                if stop.is_cancelled() {
                    return Ok(());
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                why
            }
            Err(Opening::Refused(e)) => return Err(e),
            Err(Opening::Failed(why)) => why,
        };
        let retry_in = match why {
            // Slack asked us to move: at once.
            Ended::Rotated => Duration::ZERO,
            Ended::Lost(why) => {
                tracing::warn!(reason = %why, "slack socket lost, reconnecting");
                let _ = events.send(SocketEvent::Lost(why));
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(retry_in) => {}
        }
    }
}

enum Opening {
    Refused(BridgeError),
    Failed(Ended),
}

/// How a connection ended.
enum Ended {
    /// Slack sent `disconnect` (it rotates connections now and then).
    Rotated,
    Lost(String),
}

async fn open(shared: &Shared) -> Result<Socket, Opening> {
    let token = SlackApiToken::new(shared.cfg.app_token.expose().into());
    let session = shared.client.open_session(&token);
    let url = match session
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await
    {
        Ok(r) => r.url.0,
        Err(SlackClientError::ApiError(a)) if is_token_error(&a.code) => {
            let name = &shared.name;
            return Err(Opening::Refused(BridgeError::auth(
                format!("Slack refused the app token: {}", a.code),
                format!(
                    "{name}.app_token / JETBRIDGE_{}__APP_TOKEN, an xapp- token with connections:write",
                    name.to_uppercase()
                ),
            )));
        }
        Err(e) => {
            return Err(Opening::Failed(Ended::Lost(format!(
                "apps.connections.open: {e}"
            ))));
        }
    };
    connect(&url)
        .await
        .map_err(|e| Opening::Failed(Ended::Lost(format!("socket connect: {e}"))))
}

async fn connect(url: &url::Url) -> Result<Socket, Box<dyn std::error::Error + Send + Sync>> {
    let host = url
        .host_str()
        .ok_or("the socket URL has no host")?
        .to_string();
    let tls = url.scheme() == "wss";
    let port = url.port().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let stream = if tls {
        Either::Right(crate::tls::connect(&host, tcp).await?)
    } else {
        Either::Left(tcp)
    };
    let (socket, _) = tokio_tungstenite::client_async(url.as_str(), stream).await?;
    Ok(socket)
}

/// Read one connection until it ends.
async fn read(
    mut socket: Socket,
    inbound: &Inbound,
    events: &mpsc::UnboundedSender<SocketEvent>,
    acks: &mut mpsc::UnboundedReceiver<String>,
    (stop, give_up): (&CancellationToken, &CancellationToken),
) -> Ended {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => {
                acknowledge_handled(&mut socket, events, acks, give_up).await;
                let _ = socket.close(None).await;
                return Ended::Rotated;
            }
            Some(id) = acks.recv() => {
                if let Err(e) = send_ack(&mut socket, &id).await {
                    return Ended::Lost(format!("ack: {e}"));
                }
                continue;
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENCE_LIMIT {
                    return Ended::Lost(format!("no answer for {}s", SILENCE_LIMIT.as_secs()));
                }
                if let Err(e) = socket.send(Frame::Ping(Vec::new().into())).await {
                    return Ended::Lost(format!("ping: {e}"));
                }
                continue;
            }
            frame = socket.next() => frame,
        };
        heard = Instant::now();
        let text = match frame {
            Some(Ok(Frame::Text(t))) => t,
            Some(Ok(Frame::Close(c))) => {
                return Ended::Lost(match c {
                    Some(c) => format!("closed by Slack ({} {})", c.code, c.reason),
                    None => "closed by Slack".into(),
                });
            }
            // Pings are answered by the websocket layer; pongs only say we are heard.
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Ended::Lost(format!("socket: {e}")),
            None => return Ended::Lost("socket closed".into()),
        };
        let frame: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                inbound.unparsed("?", &format!("a socket frame that is not JSON: {e}"));
                continue;
            }
        };
        let envelope = frame["envelope_id"].as_str().map(str::to_string);
        match frame["type"].as_str() {
            Some("hello") => {
                let _ = events.send(SocketEvent::Connected);
            }
            Some("disconnect") => {
                tracing::info!(reason = %frame["reason"], "slack asked to reconnect");
                let _ = socket.close(None).await;
                return Ended::Rotated;
            }
            Some("events_api") => {
                if let Some((cb, files)) = read_push(frame["payload"].clone(), inbound) {
                    // Acknowledged by the bridge, once its event is queued.
                    let _ = events.send(SocketEvent::Push(Box::new(cb), files, envelope));
                    continue;
                }
            }
            // Interactions and commands are not chat: acknowledged, not read.
            _ => {}
        }
        // Nothing to queue (or counted as unreadable): acknowledge, so Slack
        // does not send it again.
        if let Some(id) = envelope
            && let Err(e) = send_ack(&mut socket, &id).await
        {
            return Ended::Lost(format!("ack: {e}"));
        }
    }
}

async fn send_ack(socket: &mut Socket, envelope: &str) -> Result<(), impl std::fmt::Display> {
    let ack = serde_json::json!({ "envelope_id": envelope }).to_string();
    socket.send(Frame::Text(ack.into())).await
}

/// A stop: no frame is read any more; wait (until `give_up`) for the bridge to
/// queue the events already read, acknowledging each as it is queued.
async fn acknowledge_handled(
    socket: &mut Socket,
    events: &mpsc::UnboundedSender<SocketEvent>,
    acks: &mut mpsc::UnboundedReceiver<String>,
    give_up: &CancellationToken,
) {
    let (done_tx, mut done) = oneshot::channel();
    if events.send(SocketEvent::Flush(done_tx)).is_err() {
        return;
    }
    loop {
        tokio::select! {
            Some(id) = acks.recv() => {
                if send_ack(socket, &id).await.is_err() {
                    return;
                }
            }
            _ = &mut done => {
                while let Ok(id) = acks.try_recv() {
                    if send_ack(socket, &id).await.is_err() {
                        return;
                    }
                }
                return;
            }
            _ = give_up.cancelled() => {
                tracing::warn!("stopping before every event read from slack was queued; slack sends those again");
                return;
            }
        }
    }
}
