//! Dialing the configured server, without a limit on accounts per process.
//!
//! twitch-irc opens its connections through `MakeConnection::new_socket()`, an
//! associated function with no arguments: the address cannot be handed in as a
//! value. So each account runs its twitch-irc client on a thread of its own
//! (a current-thread runtime: every task twitch-irc spawns stays on it), and the
//! connector reads the account's endpoint from that thread. The client handle
//! and the incoming messages cross to the main runtime through twitch-irc's own
//! channels, which work from any runtime.

use std::cell::RefCell;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio_util::either::Either;
use twitch_irc::login::StaticLoginCredentials;
use twitch_irc::message::ServerMessage;
use twitch_irc::transport::tcp::{MakeConnection, TCPTransport, TCPTransportConnectError};
use twitch_irc::{ClientConfig, TwitchIRCClient};

use super::config::Endpoint;
use super::gate::{Gated, ReadGate};

/// The twitch-irc client of one account.
pub type IrcClient = TwitchIRCClient<TCPTransport<Dial>, StaticLoginCredentials>;

type Socket = Gated<Stream>;

thread_local! {
    /// The endpoint and read gate of the account whose client runs on this thread.
    static ACCOUNT: RefCell<Option<(Endpoint, Arc<ReadGate>)>> = const { RefCell::new(None) };
}

/// twitch-irc connector for the endpoint of the account on the current thread.
pub struct Dial;

#[async_trait]
impl MakeConnection for Dial {
    type Socket = Socket;

    async fn new_socket() -> Result<Socket, TCPTransportConnectError> {
        let (ep, gate) = ACCOUNT.with(|a| a.borrow().clone()).ok_or_else(|| {
            std::io::Error::other("twitch connector used outside an account's thread")
        })?;
        let inner = open(&ep).await?;
        gate.connected();
        Ok(Gated::new(inner, gate))
    }
}

/// A socket to Twitch's chat server, plain or TLS.
pub type Stream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// Open a socket to `ep`. Lines go out as they are written: the other side
/// answers line by line.
pub async fn open(ep: &Endpoint) -> std::io::Result<Stream> {
    let tcp = TcpStream::connect((ep.host.as_str(), ep.port)).await?;
    tcp.set_nodelay(true)?;
    Ok(if ep.tls {
        Either::Right(crate::tls::connect(&ep.host, tcp).await?)
    } else {
        Either::Left(tcp)
    })
}

/// A running client: its handle, its incoming messages, and its thread, which
/// ends (closing the connections) when this is dropped.
pub struct Running {
    pub client: IrcClient,
    pub incoming: UnboundedReceiver<ServerMessage>,
    _stop: oneshot::Sender<()>,
}

/// Start a twitch-irc client for `endpoint` on a thread of its own.
pub async fn start(
    name: &str,
    endpoint: Endpoint,
    gate: Arc<ReadGate>,
    config: ClientConfig<StaticLoginCredentials>,
) -> std::io::Result<Running> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(format!("twitch-{name}"))
        .spawn(move || {
            ACCOUNT.with(|a| *a.borrow_mut() = Some((endpoint, gate)));
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let (incoming, client) = IrcClient::new(config);
                if ready_tx.send(Ok((incoming, client))).is_err() {
                    return;
                }
                // Until the bridge lets go of the client (its sender drops).
                let _ = stop_rx.await;
            });
            // Dropping the runtime ends every task of twitch-irc's: the
            // connections close with it.
        })?;
    let (incoming, client) = ready_rx
        .await
        .map_err(|_| std::io::Error::other("the twitch client thread ended at start"))??;
    Ok(Running {
        client,
        incoming,
        _stop: stop_tx,
    })
}
