//! Health of the process: the NATS connection and each enabled bridge, as reported
//! by their tasks and read by `/readyz` and the supervisor.
//!
//! This module only stores states; it never decides them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

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
}

/// What `/readyz` answers.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ready: bool,
    pub nats: String,
    pub bridges: BTreeMap<String, String>,
}

impl Health {
    pub fn set_nats(&self, state: State) {
        self.write().nats = Some(state);
    }

    pub fn set_bridge(&self, bridge: &str, state: State) {
        self.write().bridges.insert(bridge.to_string(), state);
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
        Report {
            ready,
            nats: nats.describe(),
            bridges: board
                .bridges
                .iter()
                .map(|(k, v)| (k.clone(), v.describe()))
                .collect(),
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
