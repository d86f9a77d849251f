//! A channel's meters, named once: naming a metric with its labels costs
//! allocations and a registry lookup, which every relayed message would pay.

use metrics::{Counter, Histogram};

use crate::event::EventKind;

pub struct Meters {
    bridge: String,
    latency: Option<Histogram>,
    /// Messages out by room and kind: a channel sees one room and a few
    /// kinds, so a short list.
    out: Vec<(String, EventKind, Counter)>,
}

impl Meters {
    pub fn new(bridge: &str) -> Meters {
        Meters {
            bridge: bridge.to_string(),
            latency: None,
            out: Vec::new(),
        }
    }

    /// One message of `room` and `kind` delivered.
    pub fn delivered(&mut self, room: &str, kind: EventKind) {
        if let Some((_, _, c)) = self.out.iter().find(|(r, k, _)| r == room && *k == kind) {
            return c.increment(1);
        }
        let c = metrics::counter!("jetbridge_messages_out_total", "bridge" => self.bridge.clone(), "room" => room.to_string(), "kind" => kind.as_str());
        c.increment(1);
        self.out.push((room.to_string(), kind, c));
    }

    /// A message reached its channel `latency` after it was said.
    pub fn relayed_after(&mut self, latency: std::time::Duration) {
        let bridge = &self.bridge;
        self.latency
            .get_or_insert_with(|| {
                metrics::histogram!("jetbridge_relay_latency_seconds", "bridge" => bridge.clone())
            })
            .record(latency.as_secs_f64());
    }
}
