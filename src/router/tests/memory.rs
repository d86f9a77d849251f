//! Doubles for the router's unit tests: a [`Backbone`] whose records, lease
//! and stream live in memory, and a platform ([`Recorder`]) that records what
//! it was asked to do, when, and can be scripted to fail.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::bridge::{
    Action, Bridge, BridgeContext, BridgeError, DeliverError, DeliverFailure, Delivery,
    OutboundSpec, Posted,
};
use crate::bus::{BusError, MarkScope, Reactors, Renewal, Verdict};
use crate::config::{CommonBridgeConfig, LongMessages};
use crate::event::ChatEvent;
use crate::ratelimit::Rate;
use crate::router::{Backbone, Incoming, Lease, Opened, Records, Settle, Verdicts};

/// What happened, in order: record writes and watermarks (as they land), acks.
type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

/// Records in memory.
#[derive(Default)]
pub struct MemRecords {
    entries: Mutex<HashMap<(String, String), Posted>>,
    marks: Mutex<HashMap<String, (MarkScope, u64)>>,
    copies: Mutex<HashMap<(String, String), String>>,
    reactors: Mutex<HashMap<(String, String), Reactors>>,
    /// How long a record or watermark write takes (a NATS round trip).
    latency: Mutex<Duration>,
    log: Log,
}

impl MemRecords {
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// Wait as long as a write takes.
    async fn round_trip(&self) {
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

/// Verdicts in memory: what is there when asked.
#[derive(Default)]
pub struct MemVerdicts(Mutex<HashMap<(String, String, String), Verdict>>);

#[async_trait]
impl Verdicts for MemVerdicts {
    async fn report(
        &self,
        delete_id: &str,
        bridge: &str,
        channel: &str,
        verdict: &Verdict,
    ) -> Result<(), BusError> {
        let key = (
            delete_id.to_string(),
            bridge.to_string(),
            channel.to_string(),
        );
        self.0.lock().unwrap().insert(key, verdict.clone());
        Ok(())
    }

    async fn collect(
        &self,
        delete_id: &str,
        expected: &[(String, String)],
        _within: Duration,
    ) -> Result<HashMap<(String, String), Verdict>, BusError> {
        let all = self.0.lock().unwrap();
        Ok(expected
            .iter()
            .filter_map(|(b, c)| {
                let v = all.get(&(delete_id.to_string(), b.clone(), c.clone()))?;
                Some(((b.clone(), c.clone()), v.clone()))
            })
            .collect())
    }
}

#[async_trait]
impl Records for MemRecords {
    async fn get(&self, channel: &str, event_id: &str) -> Result<Option<Posted>, BusError> {
        let key = (channel.to_string(), event_id.to_string());
        Ok(self.entries.lock().unwrap().get(&key).cloned())
    }
    async fn put(
        &self,
        channel: &str,
        event_id: &str,
        posted: &Posted,
        back_links: bool,
    ) -> Result<(), BusError> {
        self.round_trip().await;
        push(&self.log, format!("put {event_id}"));
        let key = (channel.to_string(), event_id.to_string());
        self.entries.lock().unwrap().insert(key, posted.clone());
        let mut copies = self.copies.lock().unwrap();
        for id in posted.ids.iter().filter(|_| back_links) {
            copies.insert((channel.to_string(), id.clone()), event_id.to_string());
        }
        Ok(())
    }
    async fn copy_of(&self, channel: &str, platform_id: &str) -> Result<Option<String>, BusError> {
        let key = (channel.to_string(), platform_id.to_string());
        Ok(self.copies.lock().unwrap().get(&key).cloned())
    }
    async fn reactors(&self, channel: &str, event_id: &str) -> Result<Reactors, BusError> {
        let key = (channel.to_string(), event_id.to_string());
        Ok(self
            .reactors
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .unwrap_or_default())
    }
    async fn put_reactors(
        &self,
        channel: &str,
        event_id: &str,
        reactors: &Reactors,
    ) -> Result<(), BusError> {
        let key = (channel.to_string(), event_id.to_string());
        self.reactors.lock().unwrap().insert(key, reactors.clone());
        Ok(())
    }
    async fn forget_copies(&self, channel: &str, platform_ids: &[String]) -> Result<(), BusError> {
        push(&self.log, format!("forget {}", platform_ids.join(",")));
        let mut copies = self.copies.lock().unwrap();
        for id in platform_ids {
            copies.remove(&(channel.to_string(), id.clone()));
        }
        Ok(())
    }
    async fn watermark(&self, channel: &str, scope: &MarkScope) -> Result<Option<u64>, BusError> {
        let marks = self.marks.lock().unwrap();
        Ok(marks
            .get(channel)
            .filter(|(s, _)| s == scope)
            .map(|(_, seq)| *seq))
    }
    async fn put_watermark(
        &self,
        channel: &str,
        scope: &MarkScope,
        seq: u64,
    ) -> Result<(), BusError> {
        self.round_trip().await;
        push(&self.log, format!("mark {seq}"));
        self.marks
            .lock()
            .unwrap()
            .insert(channel.to_string(), (scope.clone(), seq));
        Ok(())
    }
}

/// A lease in memory that expires `ttl` after its last renewal.
#[derive(Default)]
struct MemLeaseState {
    holder: Option<(String, Instant)>,
}

struct MemLease {
    state: Arc<Mutex<MemLeaseState>>,
    me: String,
    ttl: Duration,
}

#[async_trait]
impl Lease for MemLease {
    async fn try_acquire(&mut self) -> bool {
        let mut s = self.state.lock().unwrap();
        let free = s
            .holder
            .as_ref()
            .is_none_or(|(_, exp)| *exp <= Instant::now());
        if free {
            s.holder = Some((self.me.clone(), Instant::now() + self.ttl));
        }
        free
    }
    async fn renew(&mut self) -> Renewal {
        let mut s = self.state.lock().unwrap();
        match &mut s.holder {
            Some((h, exp)) if *h == self.me && *exp > Instant::now() => {
                *exp = Instant::now() + self.ttl;
                Renewal::Renewed
            }
            _ => Renewal::Lost,
        }
    }
    async fn release(&mut self) {
        let mut s = self.state.lock().unwrap();
        if s.holder.as_ref().is_some_and(|(h, _)| *h == self.me) {
            s.holder = None;
        }
    }
}

/// How a message is settled: written to the log.
struct MemSettle {
    seq: u64,
    log: Log,
}

#[async_trait]
impl Settle for MemSettle {
    async fn ack(&self) -> Result<(), BusError> {
        push(&self.log, format!("ack {}", self.seq));
        Ok(())
    }
    async fn nak(&self) -> Result<(), BusError> {
        push(&self.log, format!("nak {}", self.seq));
        Ok(())
    }
    async fn term(&self) -> Result<(), BusError> {
        push(&self.log, format!("term {}", self.seq));
        Ok(())
    }
}

/// A backbone in memory. The stream is one queue that whichever leader has it
/// open reads.
pub struct Memory {
    pub records: Arc<MemRecords>,
    pub verdicts: Arc<MemVerdicts>,
    lease: Arc<Mutex<MemLeaseState>>,
    stream: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Incoming>>>,
    tx: mpsc::UnboundedSender<Incoming>,
    log: Log,
    next_seq: AtomicU64,
    /// Every event put on the stream, in order.
    events: Mutex<Vec<ChatEvent>>,
}

impl Memory {
    pub fn new() -> Arc<Memory> {
        let log = Log::default();
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Memory {
            records: Arc::new(MemRecords {
                log: log.clone(),
                ..Default::default()
            }),
            verdicts: Arc::default(),
            lease: Arc::default(),
            stream: Arc::new(tokio::sync::Mutex::new(rx)),
            tx,
            log,
            next_seq: AtomicU64::new(1),
            events: Mutex::default(),
        })
    }

    /// Put `ev` on the stream; returns its sequence.
    pub fn publish(&self, ev: &ChatEvent) -> u64 {
        self.events.lock().unwrap().push(ev.clone());
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        self.deliver_again(seq, ev, 1);
        seq
    }

    /// Offer `ev` (at `seq`) again, as JetStream does after a crash.
    pub fn deliver_again(&self, seq: u64, ev: &ChatEvent, delivered: i64) {
        let _ = self.tx.send(Incoming {
            seq,
            delivered,
            pending: 0,
            payload: Bytes::from(ev.to_json()),
            ack: Box::new(MemSettle {
                seq,
                log: self.log.clone(),
            }),
        });
    }

    /// Every event put on the stream so far.
    pub fn published(&self) -> Vec<ChatEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[async_trait]
impl Backbone for Memory {
    async fn records(&self, _bridge: &str) -> Result<Arc<dyn Records>, BusError> {
        Ok(self.records.clone())
    }
    async fn verdicts(&self) -> Result<Arc<dyn Verdicts>, BusError> {
        Ok(self.verdicts.clone())
    }
    async fn publish(&self, ev: &ChatEvent) -> Result<bool, BusError> {
        Memory::publish(self, ev);
        Ok(true)
    }
    async fn lease(
        &self,
        _name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Box<dyn Lease>, BusError> {
        Ok(Box::new(MemLease {
            state: self.lease.clone(),
            me: holder.to_string(),
            ttl,
        }))
    }
    async fn open(
        &self,
        _bridge: &str,
        _filters: Vec<String>,
        _since: time::OffsetDateTime,
        _take_over: bool,
    ) -> Result<Opened, BusError> {
        let rx = self.stream.clone();
        let messages = futures::stream::unfold(rx, |rx| async move {
            let m = rx.lock().await.recv().await?;
            Some((Ok(m), rx))
        })
        .boxed();
        Ok(Opened {
            messages,
            verify_until: 0,
            epoch: "epoch-1".into(),
        })
    }
}

/// One thing the platform was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Did {
    Post(Vec<String>),
    Edit(Vec<String>, Vec<String>),
    Delete(Vec<String>),
    /// Reacted (`true`) or took the reaction back, with that emoji.
    React(Vec<String>, String, bool),
}

/// A failure to answer with, instead of doing it.
pub enum Script {
    Retry,
    RateLimited(Duration),
    /// Accept this many parts, then fail (retry).
    AcceptThenRetry(usize),
    /// Take the post now; its ids come this much later (as Twitch answers
    /// a line).
    IdsAfter(Duration),
}

/// A platform that records what it does, with the time it did it.
pub struct Recorder {
    common: CommonBridgeConfig,
    rate: Option<Rate>,
    max_chars: usize,
    did: Mutex<Vec<(Instant, Did)>>,
    script: Mutex<VecDeque<Script>>,
    changed: Notify,
    next_id: AtomicU64,
}

impl Recorder {
    pub fn new(rate: Option<Rate>, max_chars: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            common: CommonBridgeConfig {
                rate_limit: rate.is_some(),
                coalesce_after: Duration::from_secs(2),
                long_messages: LongMessages::Split,
                max_parts: 5,
                ..Default::default()
            },
            rate,
            max_chars,
            did: Mutex::default(),
            script: Mutex::default(),
            changed: Notify::new(),
            next_id: AtomicU64::new(100),
        })
    }

    pub fn then(&self, s: Script) {
        self.script.lock().unwrap().push_back(s);
    }

    pub fn did(&self) -> Vec<Did> {
        self.did
            .lock()
            .unwrap()
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }

    pub fn times(&self) -> Vec<Instant> {
        self.did.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    fn record(&self, d: Did) {
        self.did.lock().unwrap().push((Instant::now(), d));
        self.changed.notify_waiters();
    }

    /// Wait (in paused time) until `n` things were done.
    pub async fn wait(&self, n: usize) -> Vec<Did> {
        let waited = tokio::time::timeout(Duration::from_secs(600), async {
            loop {
                let changed = self.changed.notified();
                if self.did.lock().unwrap().len() >= n {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "waited for {n}, got {:?}", self.did());
        self.did()
    }

    fn ids(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| self.next_id.fetch_add(1, Ordering::SeqCst).to_string())
            .collect()
    }
}

#[async_trait]
impl Bridge for Recorder {
    fn name(&self) -> &str {
        "mem"
    }
    fn common(&self) -> &CommonBridgeConfig {
        &self.common
    }
    fn spec(&self) -> OutboundSpec {
        OutboundSpec {
            max_chars: self.max_chars,
            rate: self.rate,
            can_edit: true,
            can_react: true,
            joiner: "\n",
            default_format: "{name}: {text}",
        }
    }
    fn render_name(&self, name: &str) -> String {
        name.to_string()
    }
    fn render_text(&self, markup: &str) -> String {
        markup.to_string()
    }
    async fn run(&self, ctx: BridgeContext) -> Result<(), BridgeError> {
        ctx.shutdown.cancelled().await;
        Ok(())
    }
    async fn deliver(&self, d: Delivery<'_>) -> Result<Posted, DeliverFailure> {
        let scripted = self.script.lock().unwrap().pop_front();
        match (d.action, scripted) {
            (_, Some(Script::Retry)) => Err(DeliverError::retry("scripted").into()),
            (_, Some(Script::RateLimited(after))) => Err(DeliverError::RateLimited(after).into()),
            (Action::Post { parts, .. }, Some(Script::AcceptThenRetry(k))) => {
                let ids = self.ids(k);
                self.record(Did::Post(parts[..k].to_vec()));
                Err(DeliverFailure {
                    error: DeliverError::retry("scripted after some parts"),
                    accepted: k,
                    partial: Posted {
                        ids,
                        ..Default::default()
                    },
                })
            }
            (Action::Post { parts, .. }, Some(Script::IdsAfter(after))) => {
                self.record(Did::Post(parts.to_vec()));
                let ids = self.ids(parts.len());
                let later = async move {
                    tokio::time::sleep(after).await;
                    ids
                };
                Ok(Posted {
                    later: Some(crate::bridge::Later::new(Box::pin(later))),
                    ..Default::default()
                })
            }
            (Action::Post { parts, .. }, _) => {
                self.record(Did::Post(parts.to_vec()));
                Ok(Posted {
                    ids: self.ids(parts.len()),
                    ..Default::default()
                })
            }
            (Action::Edit { target, parts }, _) => {
                self.record(Did::Edit(target.ids.clone(), parts.to_vec()));
                Ok(target.clone())
            }
            (Action::Delete { target }, _) => {
                self.record(Did::Delete(target.ids.clone()));
                Ok(target.clone())
            }
            (Action::React { target, emoji, add }, _) => {
                self.record(Did::React(target.ids.clone(), emoji.to_string(), add));
                Ok(Posted::default())
            }
        }
    }
}
