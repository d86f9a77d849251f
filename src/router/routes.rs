//! Where one bridge's outbound events go: per room, the bridge's writable
//! channels, less the source channel, less what the room's and the channels'
//! rules ignore.

use std::collections::{HashMap, HashSet};

use crate::config::{Config, Notices, Rules};
use crate::event::{self, ChatEvent, EventKind};
use crate::render;

/// Where one bridge's outbound events go, per room.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    bridge: String,
    rooms: HashMap<String, RoomRoutes>,
    /// This bridge's channels that some room reads.
    read: HashSet<String>,
}

#[derive(Debug, Default, Clone)]
struct RoomRoutes {
    rules: Rules,
    /// Rules of every channel of the room, by (bridge, channel): a channel's rules
    /// apply to what it sends and to what it receives.
    channel_rules: HashMap<(String, String), Rules>,
    /// This bridge's channels that the room writes to.
    destinations: Vec<String>,
    /// The room's moderation hold.
    hold: Option<std::time::Duration>,
    /// The notice types relayed.
    notices: Notices,
    /// A deleted copy removes the original and the other copies.
    mirror_deletes: bool,
    /// Every channel of the room that is written to, of any bridge.
    writers: Vec<(String, String)>,
}

impl Routes {
    /// The routes of `bridge` in `config`. Channels of disabled bridges are absent.
    pub fn new(config: &Config, bridge: &str) -> Routes {
        let mut rooms = HashMap::new();
        for room in &config.rooms {
            let destinations: Vec<String> = room
                .channels
                .iter()
                .filter(|c| c.bridge == bridge && c.direction.writes())
                .map(|c| c.channel.clone())
                .collect();
            if destinations.is_empty() {
                continue;
            }
            let channel_rules = room
                .channels
                .iter()
                .filter(|c| !c.rules.is_empty())
                .map(|c| ((c.bridge.clone(), c.channel.clone()), c.rules.clone()))
                .collect();
            rooms.insert(
                room.name.clone(),
                RoomRoutes {
                    rules: room.rules.clone(),
                    channel_rules,
                    destinations,
                    hold: room.hold,
                    notices: room.notices.clone(),
                    mirror_deletes: room.mirror_deletes,
                    writers: room
                        .channels
                        .iter()
                        .filter(|c| c.direction.writes())
                        .map(|c| (c.bridge.clone(), c.channel.clone()))
                        .collect(),
                },
            );
        }
        let read = config
            .rooms
            .iter()
            .flat_map(|r| &r.channels)
            .filter(|c| c.bridge == bridge && c.direction.reads())
            .map(|c| c.channel.clone())
            .collect();
        Routes {
            bridge: bridge.to_string(),
            rooms,
            read,
        }
    }

    /// Whether jetbridge reads `channel` of this bridge: only then can
    /// something said there (a moderator's delete, a reply, a reaction)
    /// name a copy posted there, so only then must a copy lead back to its
    /// original.
    pub fn reads(&self, channel: &str) -> bool {
        self.read.contains(channel)
    }

    /// Stream filters covering every room this bridge writes to.
    pub fn filters(&self) -> Vec<String> {
        let mut f: Vec<String> = self.rooms.keys().map(|r| event::room_filter(r)).collect();
        f.sort();
        f
    }

    /// How long after it was sent a message of `room` may be relayed.
    pub fn hold(&self, room: &str) -> Option<std::time::Duration> {
        self.rooms.get(room).and_then(|r| r.hold)
    }

    /// Whether a copy deleted in `room` removes the original and every other copy.
    pub fn mirrors_deletes(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.mirror_deletes)
    }

    /// Every (bridge, channel) that `room` writes to: where a delete of one
    /// of its messages may have something to remove.
    pub fn writers(&self, room: &str) -> &[(String, String)] {
        self.rooms.get(room).map_or(&[], |r| r.writers.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The channels of this bridge that should receive `ev`.
    pub fn destinations<'a>(&'a self, ev: &ChatEvent) -> Vec<&'a str> {
        let Some(room) = self.rooms.get(&ev.room) else {
            return Vec::new();
        };
        match ev.kind {
            EventKind::Notice => {
                let kind = ev.notice.as_ref().map_or("", |n| n.effective_type());
                if !room.notices.relays(kind) {
                    return Vec::new();
                }
            }
            // A record of what a moderator did: the deletes it came with do
            // the work on the copies.
            EventKind::Moderation => return Vec::new(),
            // A kind newer than this build: others may read it; we cannot post it.
            EventKind::Unknown => return Vec::new(),
            // A platform's own emoji: the others lack it (the stream keeps it).
            EventKind::Reaction
                if ev
                    .reaction
                    .as_ref()
                    .is_none_or(|r| event::is_custom_emoji(&r.emoji)) =>
            {
                return Vec::new();
            }
            _ => {}
        }
        // Rules decide what is relayed; a delete of (or reaction to) something
        // never relayed finds no copy and does nothing, so those pass.
        let filtered = !matches!(ev.kind, EventKind::Delete | EventKind::Reaction);
        // Most rooms have no channel rules: no key to build per event then.
        let channel_ignores = |bridge: &str, channel: &str| {
            !room.channel_rules.is_empty()
                && room
                    .channel_rules
                    .get(&(bridge.to_string(), channel.to_string()))
                    .is_some_and(|r| ignored(r, ev))
        };
        if filtered
            && (ignored(&room.rules, ev) || channel_ignores(&ev.source.bridge, &ev.source.channel))
        {
            return Vec::new();
        }
        // A delete asked for elsewhere than where its message was said (a
        // deleted copy, the console) is carried out everywhere, its source
        // included: another part of the deleted copy may be there.
        let everywhere = ev.is_foreign_delete();
        room.destinations
            .iter()
            // Never back to where it came from.
            .filter(|ch| {
                everywhere || !(ev.source.bridge == self.bridge && ev.source.channel == **ch)
            })
            .filter(|ch| !filtered || !channel_ignores(&self.bridge, ch))
            .map(String::as_str)
            .collect()
    }
}

/// Whether `rules` say `ev` is not relayed.
pub fn ignored(rules: &Rules, ev: &ChatEvent) -> bool {
    if rules.is_empty() {
        return false;
    }
    if let Some(a) = &ev.author {
        let id = a.id.to_lowercase();
        let name = a.name.to_lowercase();
        if rules.ignore_authors.iter().any(|x| *x == id || *x == name) {
            return true;
        }
    }
    let plain = render::markup_to_plain(&ev.text);
    rules.ignore_text.iter().any(|re| re.is_match(&plain))
}

#[cfg(test)]
impl Routes {
    /// Route `room` to `channel` of this bridge (for tests without platforms).
    pub(super) fn add_destination(&mut self, room: &str, channel: &str) {
        let r = self.rooms.entry(room.to_string()).or_default();
        r.destinations.push(channel.to_string());
        r.writers.push((self.bridge.clone(), channel.to_string()));
        r.mirror_deletes = true;
        self.read.insert(channel.to_string());
    }

    /// Route `room` to `channel`, which nothing reads (`direction = "out"`).
    pub(super) fn add_write_only_destination(&mut self, room: &str, channel: &str) {
        self.add_destination(room, channel);
        self.read.remove(channel);
    }

    /// Give `room` a moderation hold (for tests without platforms).
    pub(super) fn set_hold(&mut self, room: &str, hold: std::time::Duration) {
        self.rooms.entry(room.to_string()).or_default().hold = Some(hold);
    }
}
