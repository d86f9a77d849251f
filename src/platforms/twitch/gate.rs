//! Read-side backpressure for a Twitch connection: twitch-irc reads its socket
//! into unbounded channels of parsed messages (a few KiB each), so a burst
//! faster than JetStream takes it would wait in our memory. The socket is
//! wrapped ([`Gated`]) so that reading stops a bounded number of lines ahead of
//! what the bridge has taken, and the rest of a burst waits in the kernel's
//! socket buffers and then the server's.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Lines read but not yet taken by the bridge at which reading stops, and
/// where it starts again.
const GATE_HIGH: u64 = 1024;
const GATE_LOW: u64 = 256;

/// Read-side backpressure for one connection. twitch-irc reads its socket into
/// unbounded channels of parsed messages (a few KiB each). When the bridge falls
/// behind (a burst faster than JetStream takes it), reading stops `GATE_HIGH`
/// lines ahead of it, so the rest of the burst waits in the kernel's socket
/// buffers and then the server's, not in our memory. twitch-irc hands every line
/// on as one message, so lines read minus messages taken is the backlog.
pub struct ReadGate {
    bridge: String,
    read: AtomicU64,
    taken: AtomicU64,
    /// `taken` when the bridge last looked at an idle moment (see `idle`).
    taken_at_idle: AtomicU64,
    waker: AtomicWaker,
    /// Reading is stopped (for counting pauses, not for deciding).
    paused: AtomicBool,
    /// Which connection this is: one more each time a socket is opened.
    generation: AtomicU64,
}

impl ReadGate {
    pub fn new(bridge: &str) -> ReadGate {
        ReadGate {
            bridge: bridge.to_string(),
            read: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            taken_at_idle: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            paused: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }

    fn backlog(&self) -> u64 {
        let read = self.read.load(Ordering::Acquire);
        read.saturating_sub(self.taken.load(Ordering::Acquire))
    }

    /// A new connection: what the old one left unread is gone with it.
    /// The connection now in use (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn connected(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.read.store(0, Ordering::Release);
        self.taken.store(0, Ordering::Release);
        self.taken_at_idle.store(0, Ordering::Release);
    }

    /// Whether the socket may be read now; if not, `cx` is woken when it may.
    fn poll_open(&self, cx: &mut std::task::Context<'_>) -> bool {
        if self.backlog() < GATE_HIGH {
            self.paused.store(false, Ordering::Relaxed);
            return true;
        }
        self.waker.register(cx.waker());
        // Taken meanwhile? Then do not wait for a wake that already happened.
        if self.backlog() < GATE_HIGH {
            return true;
        }
        if !self.paused.swap(true, Ordering::Relaxed) {
            tracing::debug!(backlog = self.backlog(), "bridge behind: pausing reads");
            metrics::counter!("jetbridge_inbound_read_paused_total", "bridge" => self.bridge.clone())
                .increment(1);
        }
        false
    }

    fn count(&self, bytes: &[u8]) {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        if lines > 0 {
            self.read.fetch_add(lines, Ordering::AcqRel);
        }
    }

    /// The bridge took one message.
    pub fn took(&self) {
        self.taken.fetch_add(1, Ordering::AcqRel);
        if self.backlog() <= GATE_LOW {
            self.waker.wake();
        }
    }

    /// The bridge has nothing waiting. If reading is stopped and nothing was
    /// taken since the last such look, the count is off (a line that did not
    /// become a message): forgive it rather than stop reading for good.
    pub fn idle(&self) {
        let taken = self.taken.load(Ordering::Acquire);
        let stuck = self.taken_at_idle.swap(taken, Ordering::AcqRel) == taken;
        if stuck && self.backlog() >= GATE_HIGH {
            tracing::warn!(
                backlog = self.backlog(),
                "read gate count drifted; reopening"
            );
            self.taken
                .store(self.read.load(Ordering::Acquire), Ordering::Release);
            self.waker.wake();
        }
    }
}

/// A socket whose reads wait at the gate.
pub struct Gated<S> {
    inner: S,
    gate: Arc<ReadGate>,
}

impl<S> Gated<S> {
    pub fn new(inner: S, gate: Arc<ReadGate>) -> Self {
        Gated { inner, gate }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.gate.poll_open(cx) {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.gate.count(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
