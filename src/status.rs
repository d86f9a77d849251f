//! Health of the process: the NATS connection and each enabled bridge, as reported
//! by their tasks and read by `/readyz` and the supervisor.
//!
//! This module only stores states; it never decides them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use serde::Serialize;

/// One component's state, rendered as `"connected"` or `"connecting: <why>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Connecting(String),
    Connected,
    /// Stopped trying until restarted by the supervisor; the reason is operator-facing.
    Failed(String),
}

impl State {
    pub fn is_connected(&self) -> bool {
        matches!(self, State::Connected)
    }
    pub fn describe(&self) -> String {
        match self {
            State::Connected => "connected".into(),
            State::Connecting(why) if why.is_empty() => "connecting".into(),
            State::Connecting(why) => format!("connecting: {why}"),
            State::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// The process-wide health board. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<RwLock<Board>>,
}

#[derive(Debug, Default)]
struct Board {
    nats: Option<State>,
    /// The chat stream exists with our settings: publishing can succeed.
    stream_ready: bool,
    bridges: BTreeMap<String, State>,
    /// When each bridge last heard an inbound event (see [`Health::heard`]).
    heard: BTreeMap<String, Arc<AtomicU64>>,
}

/// Milliseconds since the process's clock started, never 0 (0 = never heard).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What `/readyz` answers.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ready: bool,
    pub nats: String,
    pub bridges: BTreeMap<String, String>,
    /// Seconds since each bridge's last inbound event (or since it started).
    pub silent_s: BTreeMap<String, u64>,
}

impl Health {
    pub fn set_nats(&self, state: State) {
        self.write().nats = Some(state);
    }

    pub fn set_bridge(&self, bridge: &str, state: State) {
        let mut board = self.write();
        board
            .heard
            .entry(bridge.to_string())
            .or_insert_with(|| Arc::new(AtomicU64::new(now_ms())));
        board.bridges.insert(bridge.to_string(), state);
    }

    /// `bridge` received an inbound event just now.
    pub fn heard(&self, bridge: &str) {
        let clock = self.read().heard.get(bridge).cloned();
        match clock {
            Some(c) => c.store(now_ms(), Ordering::Relaxed),
            None => {
                self.write()
                    .heard
                    .insert(bridge.to_string(), Arc::new(AtomicU64::new(now_ms())));
            }
        }
    }

    pub fn set_stream_ready(&self) {
        self.write().stream_ready = true;
    }

    pub fn bridge(&self, bridge: &str) -> Option<State> {
        self.read().bridges.get(bridge).cloned()
    }

    pub fn nats_connected(&self) -> bool {
        self.read().nats.as_ref().is_some_and(State::is_connected)
    }

    pub fn report(&self) -> Report {
        let board = self.read();
        let nats = match board.nats.clone() {
            None => State::Connecting(String::new()),
            Some(State::Connected) if !board.stream_ready => {
                State::Connecting("creating the chat stream".into())
            }
            Some(s) => s,
        };
        let ready = nats.is_connected() && board.bridges.values().all(State::is_connected);
        let now = now_ms();
        let silent_s = board
            .bridges
            .keys()
            .filter_map(|b| {
                let at = board.heard.get(b)?.load(Ordering::Relaxed);
                Some((b.clone(), now.saturating_sub(at) / 1000))
            })
            .collect();
        Report {
            ready,
            nats: nats.describe(),
            bridges: board
                .bridges
                .iter()
                .map(|(k, v)| (k.clone(), v.describe()))
                .collect(),
            silent_s,
        }
    }

    // A poisoned lock only means a panic elsewhere while holding it; the board is
    // plain data and stays usable.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Board> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Board> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}
