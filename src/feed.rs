//! Room feeds for viewers (the web page, SSE): for each room, one ordered
//! JetStream read shared by every viewer of that room, a ring of its recent events
//! for `?last=N`, and gap-free resume from any stream sequence.
//!
//! A viewer's stream is: (optionally) a `Gap` when its resume point has aged out
//! of the stream, the backlog it asked for, then live events. A viewer that falls
//! too far behind the live broadcast is ended; its client reconnects with
//! `Last-Event-ID` and resumes from JetStream without a gap.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Mutex, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::bus::{Bus, ReadFrom};
use crate::event;

/// Recent events kept per room: the largest `?last=N` served without a
/// JetStream read.
pub const RING: usize = 500;
/// Live events a viewer may lag behind before it is ended (and reconnects).
const LIVE_BUFFER: usize = 4096;

/// One stored event, as viewers see it.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub seq: u64,
    /// `message`, `edit` or `delete` (read from the payload).
    pub kind: String,
    /// The event JSON, verbatim from the stream.
    pub json: Bytes,
}

/// What a viewer receives.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// Events between `after` and `oldest` have aged out of the stream.
    Gap {
        after: u64,
        oldest: u64,
    },
    Event(Arc<FeedEvent>),
}

/// Where a viewer starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// The last N events, then live.
    Last(usize),
    /// Everything after this stream sequence, then live.
    After(u64),
}

/// Every room's feed. Cheap to clone.
#[derive(Clone)]
pub struct Feeds {
    bus: Bus,
    rooms: Arc<Mutex<HashMap<String, Arc<RoomFeed>>>>,
    shutdown: CancellationToken,
}

struct RoomFeed {
    ring: Mutex<VecDeque<Arc<FeedEvent>>>,
    live: broadcast::Sender<Arc<FeedEvent>>,
    /// True once the ring holds the room's recent history.
    ready: watch::Receiver<bool>,
}

/// Errors a viewer can meet.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the chat stream is not available right now: {0}")]
    Unavailable(String),
}

impl Feeds {
    pub fn new(bus: Bus, shutdown: CancellationToken) -> Feeds {
        Feeds {
            bus,
            rooms: Arc::default(),
            shutdown,
        }
    }

    async fn room(&self, room: &str) -> Arc<RoomFeed> {
        let mut rooms = self.rooms.lock().await;
        if let Some(f) = rooms.get(room) {
            return f.clone();
        }
        let (ready_tx, ready) = watch::channel(false);
        let feed = Arc::new(RoomFeed {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            live: broadcast::channel(LIVE_BUFFER).0,
            ready,
        });
        rooms.insert(room.to_string(), feed.clone());
        tokio::spawn(run_room(
            self.bus.clone(),
            room.to_string(),
            feed.clone(),
            ready_tx,
            self.shutdown.clone(),
        ));
        feed
    }

    /// A viewer's stream of `room`, from `start`. Ends at shutdown, or when the
    /// viewer lags too far behind (it should reconnect and resume).
    pub async fn subscribe(
        &self,
        room: &str,
        start: Start,
    ) -> Result<futures::stream::BoxStream<'static, FeedItem>, FeedError> {
        let feed = self.room(room).await;
        let mut ready = feed.ready.clone();
        tokio::select! {
            r = ready.wait_for(|r| *r) => { r.map_err(|_| FeedError::Unavailable("feed stopped".into()))?; }
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                return Err(FeedError::Unavailable("no answer from JetStream".into()));
            }
        }
        // Under the ring lock, nothing is pushed: the ring snapshot and the live
        // subscription meet exactly, with neither gap nor overlap.
        let (snapshot, live) = {
            let ring = feed.ring.lock().await;
            let live = feed.live.subscribe();
            (ring.iter().cloned().collect::<Vec<_>>(), live)
        };
        let mut backlog: Vec<FeedItem> = Vec::new();
        match start {
            Start::Last(n) => {
                let skip = snapshot.len().saturating_sub(n);
                backlog.extend(snapshot.into_iter().skip(skip).map(FeedItem::Event));
            }
            Start::After(after) => {
                let (first, _) = self
                    .bus
                    .stream_bounds()
                    .await
                    .map_err(|e| FeedError::Unavailable(e.to_string()))?;
                // Sequence 0 means "from the start": nothing was missed.
                if after > 0 && first > after + 1 {
                    backlog.push(FeedItem::Gap {
                        after,
                        oldest: first,
                    });
                }
                // The ring holds the room's last RING events: it covers `after` when
                // it starts at or before it, or when it holds the whole room.
                let ring_first = snapshot.first().map(|e| e.seq);
                let covered = snapshot.len() < RING || ring_first.is_some_and(|f| f <= after + 1);
                if !covered && let Some(until) = ring_first {
                    backlog.extend(self.history(room, after, until).await?);
                }
                backlog.extend(
                    snapshot
                        .into_iter()
                        .filter(|e| e.seq > after)
                        .map(FeedItem::Event),
                );
            }
        }
        let last_sent = backlog
            .iter()
            .rev()
            .find_map(|i| match i {
                FeedItem::Event(e) => Some(e.seq),
                FeedItem::Gap { .. } => None,
            })
            .unwrap_or(match start {
                Start::After(a) => a,
                Start::Last(_) => 0,
            });
        let shutdown = self.shutdown.clone();
        let live = futures::stream::unfold(
            (live, last_sent, shutdown),
            |(mut rx, mut last, shutdown)| async move {
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        next = rx.recv() => next,
                    };
                    match next {
                        Ok(ev) if ev.seq <= last => continue,
                        Ok(ev) => {
                            last = ev.seq;
                            return Some((FeedItem::Event(ev), (rx, last, shutdown)));
                        }
                        // Too slow for the broadcast: end; the client resumes.
                        Err(broadcast::error::RecvError::Lagged(_)) => return None,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        Ok(futures::stream::iter(backlog).chain(live).boxed())
    }

    /// Events of `room` with `after < seq < until`, read from JetStream.
    async fn history(
        &self,
        room: &str,
        after: u64,
        until: u64,
    ) -> Result<Vec<FeedItem>, FeedError> {
        let unavailable = |e: crate::bus::BusError| FeedError::Unavailable(e.to_string());
        let mut out = Vec::new();
        if after + 1 >= until {
            return Ok(out);
        }
        let stop = until;
        let mut msgs = self
            .bus
            .read_ordered(&event::room_filter(room), ReadFrom::Sequence(after + 1))
            .await
            .map_err(unavailable)?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), msgs.next()).await;
            let msg = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(FeedError::Unavailable(e.to_string())),
                Ok(None) | Err(_) => break,
            };
            let (seq, pending) = (msg.seq, msg.pending);
            if seq >= stop {
                break;
            }
            out.push(FeedItem::Event(Arc::new(to_feed_event(seq, &msg.payload))));
            if pending == 0 || seq + 1 >= stop {
                break;
            }
        }
        Ok(out)
    }
}

fn to_feed_event(seq: u64, payload: &Bytes) -> FeedEvent {
    #[derive(serde::Deserialize)]
    struct KindOnly {
        kind: String,
    }
    let kind = serde_json::from_slice::<KindOnly>(payload)
        .map(|k| k.kind)
        .unwrap_or_else(|_| "message".into());
    FeedEvent {
        seq,
        kind,
        json: payload.clone(),
    }
}

/// Keep one room's ring filled and its live broadcast fed, until shutdown.
async fn run_room(
    bus: Bus,
    room: String,
    feed: Arc<RoomFeed>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let filter = event::room_filter(&room);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut next_seq: Option<u64> = None;
    loop {
        let start = match next_seq {
            Some(s) => Ok(s),
            None => bus.start_for_last(&filter, RING as u64).await,
        };
        let reading = match start {
            Ok(s) => {
                // An empty room is ready at once; otherwise when the read catches up.
                if bus
                    .stream_bounds()
                    .await
                    .map(|(_, last)| s > last)
                    .unwrap_or(false)
                {
                    ready.send_replace(true);
                }
                next_seq = Some(s);
                bus.read_ordered(&filter, ReadFrom::Sequence(s)).await
            }
            Err(e) => Err(e),
        };
        match reading {
            Ok(mut msgs) => loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    n = msgs.next() => n,
                };
                let msg = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::warn!(room = %room, error = %e, "room feed read failed, resuming");
                        break;
                    }
                    None => break,
                };
                let (seq, pending) = (msg.seq, msg.pending);
                backoff.reset();
                let ev = Arc::new(to_feed_event(seq, &msg.payload));
                {
                    let mut ring = feed.ring.lock().await;
                    if ring.len() == RING {
                        ring.pop_front();
                    }
                    ring.push_back(ev.clone());
                    // No receivers is fine: nobody is watching live yet.
                    let _ = feed.live.send(ev);
                }
                next_seq = Some(seq + 1);
                if pending == 0 {
                    ready.send_replace(true);
                }
            },
            Err(e) => tracing::warn!(room = %room, error = %e, "room feed not available, retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
