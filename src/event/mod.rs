//! The chat event (schema v1): the one JSON object every bridge produces and
//! consumes, its deterministic ids, and the `chat.<room>.<bridge>.<channel>`
//! subject it is stored under.
//!
//! This module owns the wire format other services rely on (docs/events.md §2–§4). It
//! leaves markup conversion to the bridges and storage to `bus`.

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod moderation;
mod reaction;

pub use moderation::{ModAction, ModOrigin, ModResult, Moderation};
pub use reaction::{Reaction, ReactionOp, is_custom as is_custom_emoji};

/// The schema version this build writes. Readers ignore unknown fields; a breaking
/// change bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// Every event subject starts with this token.
pub const SUBJECT_ROOT: &str = "chat";

/// What happened. Kinds are additive (docs/events.md §3.6): a reader meets
/// kinds newer than itself as `Unknown` and passes them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Message,
    Edit,
    Delete,
    /// A platform's event message (a Twitch USERNOTICE: a sub, a raid, an
    /// announcement); see [`ChatEvent::notice`].
    Notice,
    /// Something a moderator did; see [`ChatEvent::moderation`].
    Moderation,
    /// An emoji added to or removed from a message; see [`ChatEvent::reaction`].
    Reaction,
    /// A kind this build does not know. Never written.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Edit => "edit",
            EventKind::Delete => "delete",
            EventKind::Notice => "notice",
            EventKind::Moderation => "moderation",
            EventKind::Reaction => "reaction",
            EventKind::Unknown => "unknown",
        }
    }

    /// A post of its own on the platforms (not a change to another event).
    pub fn is_post(self) -> bool {
        matches!(self, EventKind::Message | EventKind::Notice)
    }
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Source {
    /// The bridge name (`twitch`, or a named account such as `acme`).
    pub bridge: String,
    /// The channel as configured (`#streamer` for Twitch; the channel id for
    /// Discord and Slack; `api` for the HTTP API).
    pub channel: String,
    /// The platform's own message id (Twitch `id` tag, Discord snowflake, Slack `ts`).
    pub message_id: String,
}

/// Who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Author {
    /// Platform user id (or login where the platform has no id).
    pub id: String,
    /// Display name.
    pub name: String,
    pub avatar_url: Option<String>,
    /// `#RRGGBB` where the platform gives one.
    pub color: Option<String>,
    pub bot: bool,
    /// The author's standing in the channel, from a small fixed vocabulary:
    /// `broadcaster`, `moderator`, `vip`, `subscriber`, `founder`, `staff`,
    /// `bot`. Optional; absent when none (or unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub badges: Vec<String>,
    /// The author's first message in the channel (Twitch `first-msg`).
    /// Optional; absent when the platform does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<bool>,
}

/// A file or sticker, carried as a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    pub url: String,
    pub name: String,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

/// One chat event, as stored on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatEvent {
    /// Schema version, currently 1.
    pub v: u32,
    /// Deterministic id: `<bridge>:<channel token>:<platform message id>`, with
    /// `:edit:<marker>` or `:delete` appended for edits and deletes. Also the
    /// `Nats-Msg-Id`, so a message seen twice is stored once.
    pub id: String,
    pub kind: EventKind,
    pub room: String,
    pub source: Source,
    /// Null for a delete whose platform does not say who wrote the original.
    pub author: Option<Author>,
    /// The message in the common markup (a CommonMark subset: bold, italic, code,
    /// links). For `edit`, the new text; empty for `delete`.
    #[serde(default)]
    pub text: String,
    #[serde(serialize_with = "ts_ser", deserialize_with = "ts_de")]
    #[schemars(with = "String")]
    pub ts: DateTime<Utc>,
    /// The `id` of the message this one answers.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The `id` of the first message of the thread this one is in (a Slack
    /// thread, a Discord thread or forum post); absent outside threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// For `edit` and `delete`, the `id` of the original message event.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Images for words of `text` (Twitch emotes, Discord custom emoji): a viewer
    /// may show `url` in place of the exact token `name`. Optional; absent when
    /// empty, so readers of schema v1 without it are unaffected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emotes: Vec<Emote>,
    /// Set when the message was sent in another Twitch channel that shares its
    /// chat with this one (Twitch Shared Chat) and reached us only here.
    /// Optional; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_chat: Option<SharedChat>,
    /// What a `notice` announces. Present on `notice` events only.
    // This and the next two are boxed: rare, and large inline, they would
    // weigh on every event queued for a channel (the JSON is the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Box<Notice>>,
    /// What a moderator did. Present on `moderation` events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Box<Moderation>>,
    /// The emoji and whether it was added or removed. Present on `reaction`
    /// events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<Box<Reaction>>,
}

/// A platform's event message (kind `notice`): a Twitch USERNOTICE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Notice {
    /// What happened, as the platform names it (Twitch's `msg-id` verbatim:
    /// `announcement`, `sub`, `resub`, `subgift`, `submysterygift`, `raid`,
    /// `viewermilestone`, `sharedchatnotice`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The platform's own line about it (Twitch's `system-msg`, unescaped),
    /// plain text; may be empty (an announcement has none).
    #[serde(default)]
    pub system_text: String,
    /// The details (Twitch's `msg-param-*` tags without the prefix, values
    /// unescaped; a `sharedchatnotice` also carries `source-msg-id`, the type
    /// in the channel it was sent in).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
}

impl Notice {
    /// The type that counts for a room's `notices` list: a Shared Chat
    /// notice counts as what it was where it was sent.
    pub fn effective_type(&self) -> &str {
        match self.params.get("source-msg-id") {
            Some(t) if self.kind == "sharedchatnotice" && !t.is_empty() => t,
            _ => &self.kind,
        }
    }
}

/// Where a Shared Chat message was sent (see [`ChatEvent::shared_chat`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SharedChat {
    /// The Twitch user id of the channel it was sent in (`source-room-id`).
    pub room_id: String,
    /// Its id in that channel (`source-id`).
    pub message_id: String,
}

/// An image standing for a token of the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Emote {
    /// The token as it appears in `text` (`Kappa`, `:blobcat:`).
    pub name: String,
    pub url: String,
    /// Drawn over the emote before it rather than after it (BTTV's and 7TV's
    /// zero-width emotes, FFZ's modifiers). Optional; absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero_width: bool,
}

fn ts_ser<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn ts_de<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

/// The subject token for a platform channel: a leading `#` dropped and every
/// character outside `[A-Za-z0-9_-]` replaced by `_`, so that no channel name can
/// add a subject level (`.`) or a wildcard (`*`, `>`). Never empty.
pub fn channel_token(channel: &str) -> String {
    let trimmed = channel.strip_prefix('#').unwrap_or(channel);
    if trimmed.is_empty() {
        return "_".to_string();
    }
    trimmed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `chat.<room>.<bridge>.<channel token>`. Room and bridge names are validated to
/// the subject-safe alphabet at config load.
pub fn subject(room: &str, bridge: &str, channel: &str) -> String {
    format!("{SUBJECT_ROOT}.{room}.{bridge}.{}", channel_token(channel))
}

/// Filter for every event of a room.
pub fn room_filter(room: &str) -> String {
    format!("{SUBJECT_ROOT}.{room}.>")
}

/// Filter for every event.
pub fn all_filter() -> String {
    format!("{SUBJECT_ROOT}.>")
}

/// Id of a `message` event.
pub fn message_id(bridge: &str, channel: &str, platform_id: &str) -> String {
    format!("{bridge}:{}:{platform_id}", channel_token(channel))
}

/// Id of an `edit` of `original`; `marker` is the platform's own edit timestamp,
/// verbatim, so that every instance derives the same id.
pub fn edit_id(original: &str, marker: &str) -> String {
    format!("{original}:edit:{marker}")
}

/// Id of the `delete` of `original`.
pub fn delete_id(original: &str) -> String {
    format!("{original}:delete")
}

/// The platform id of the message `event_id` names, when it was said in
/// `channel` of `bridge` (message ids are `<bridge>:<channel token>:<id>`).
pub fn said_in<'a>(event_id: &'a str, bridge: &str, channel: &str) -> Option<&'a str> {
    let rest = event_id.strip_prefix(bridge)?.strip_prefix(':')?;
    let rest = rest.strip_prefix(channel_token(channel).as_str())?;
    rest.strip_prefix(':').filter(|id| !id.is_empty())
}

impl ChatEvent {
    /// A new `message` event; `room` is filled in by the core when it is published.
    pub fn message(
        bridge: &str,
        channel: &str,
        platform_id: &str,
        author: Author,
        text: String,
    ) -> Self {
        ChatEvent {
            v: SCHEMA_VERSION,
            id: message_id(bridge, channel, platform_id),
            kind: EventKind::Message,
            room: String::new(),
            source: Source {
                bridge: bridge.to_string(),
                channel: channel.to_string(),
                message_id: platform_id.to_string(),
            },
            author: Some(author),
            text,
            ts: Utc::now(),
            reply_to: None,
            thread: None,
            target: None,
            attachments: Vec::new(),
            emotes: Vec::new(),
            shared_chat: None,
            notice: None,
            moderation: None,
            reaction: None,
        }
    }

    /// A `notice` event (ids as for messages, so a notice seen twice is
    /// stored once); `text` is the user's own words, or empty.
    pub fn notice(
        bridge: &str,
        channel: &str,
        platform_id: &str,
        author: Author,
        text: String,
        notice: Notice,
    ) -> Self {
        let mut ev = ChatEvent::message(bridge, channel, platform_id, author, text);
        ev.kind = EventKind::Notice;
        ev.notice = Some(Box::new(notice));
        ev
    }

    /// A `moderation` event seen in `channel` (room unset); `key` is what
    /// makes its id (docs/events.md §4) the same on every instance.
    pub fn moderation(bridge: &str, channel: &str, key: &str, moderation: Moderation) -> Self {
        let mut ev = ChatEvent::message(
            bridge,
            channel,
            &format!("mod:{key}"),
            Author::default(),
            String::new(),
        );
        ev.kind = EventKind::Moderation;
        ev.author = moderation.actor.clone();
        ev.target = moderation.target.clone();
        ev.moderation = Some(Box::new(moderation));
        ev
    }

    /// A `delete` of the message with platform id `platform_id` in `channel`.
    pub fn delete(bridge: &str, channel: &str, platform_id: &str, author: Option<Author>) -> Self {
        let target = message_id(bridge, channel, platform_id);
        ChatEvent {
            v: SCHEMA_VERSION,
            id: delete_id(&target),
            kind: EventKind::Delete,
            room: String::new(),
            source: Source {
                bridge: bridge.to_string(),
                channel: channel.to_string(),
                message_id: platform_id.to_string(),
            },
            author,
            text: String::new(),
            ts: Utc::now(),
            reply_to: None,
            thread: None,
            target: Some(target),
            attachments: Vec::new(),
            emotes: Vec::new(),
            shared_chat: None,
            notice: None,
            moderation: None,
            reaction: None,
        }
    }

    /// A `reaction` to the message with platform id `platform_id` in
    /// `channel`, by `author` (`None`: everyone's, as when a moderator clears
    /// an emoji). `marker` is the platform's own time of it, where it gives
    /// one, so that every instance derives the same id.
    pub fn reaction(
        bridge: &str,
        channel: &str,
        platform_id: &str,
        author: Option<Author>,
        reaction: Reaction,
        marker: Option<&str>,
    ) -> Self {
        let target = message_id(bridge, channel, platform_id);
        let who = author.as_ref().map_or("*", |a| a.id.as_str());
        let mut id = format!(
            "{target}:reaction:{}:{who}:{}",
            reaction.op.as_str(),
            reaction::id_part(&reaction.emoji)
        );
        if let Some(m) = marker {
            id.push(':');
            id.push_str(m);
        }
        let mut ev = ChatEvent::delete(bridge, channel, platform_id, author);
        ev.id = id;
        ev.kind = EventKind::Reaction;
        ev.reaction = Some(Box::new(reaction));
        ev
    }

    /// A `delete` of `original` asked for somewhere else than where it was
    /// said (`source`): a copy of it deleted, or the moderator's console.
    pub fn delete_of(original: &str, room: &str, source: Source) -> Self {
        let mut ev = ChatEvent::delete(&source.bridge, &source.channel, &source.message_id, None);
        ev.id = delete_id(original);
        ev.room = room.to_string();
        ev.target = Some(original.to_string());
        ev
    }

    /// A delete made elsewhere than where its message was said (see
    /// [`ChatEvent::delete_of`]): the message's own channel is then one of
    /// the places it is removed from.
    pub fn is_foreign_delete(&self) -> bool {
        // A platform's own delete names the message it deletes as its source.
        self.kind == EventKind::Delete
            && self.target.as_deref().is_some_and(|t| {
                said_in(t, &self.source.bridge, &self.source.channel)
                    != Some(self.source.message_id.as_str())
            })
    }

    /// An `edit` of the message with platform id `platform_id`; `marker` is the
    /// platform's edit timestamp.
    pub fn edit(
        bridge: &str,
        channel: &str,
        platform_id: &str,
        marker: &str,
        author: Option<Author>,
        text: String,
    ) -> Self {
        let target = message_id(bridge, channel, platform_id);
        ChatEvent {
            v: SCHEMA_VERSION,
            id: edit_id(&target, marker),
            kind: EventKind::Edit,
            room: String::new(),
            source: Source {
                bridge: bridge.to_string(),
                channel: channel.to_string(),
                message_id: platform_id.to_string(),
            },
            author,
            text,
            ts: Utc::now(),
            reply_to: None,
            thread: None,
            target: Some(target),
            attachments: Vec::new(),
            emotes: Vec::new(),
            shared_chat: None,
            notice: None,
            moderation: None,
            reaction: None,
        }
    }

    /// The subject this event is stored under.
    pub fn subject(&self) -> String {
        subject(&self.room, &self.source.bridge, &self.source.channel)
    }

    /// The author's display name, or `someone` for deletes without an author.
    pub fn author_name(&self) -> &str {
        self.author
            .as_ref()
            .map(|a| a.name.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("someone")
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).expect("ChatEvent serializes")
    }
}

/// The JSON Schema of [`ChatEvent`], pretty-printed (`jetbridge schema`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ChatEvent);
    // A schema is a JSON value; printing it cannot fail.
    serde_json::to_string_pretty(&schema).expect("schema serializes")
}

/// Bridge name of events published through the HTTP API and `jetbridge send`.
pub const WEB_BRIDGE: &str = "web";
/// Channel of events published through the HTTP API and `jetbridge send`.
pub const WEB_CHANNEL: &str = "api";

impl ChatEvent {
    /// A `web` message (HTTP API, CLI `send`) in `room`, with a fresh ULID.
    pub fn web(room: &str, author: &str, text: String) -> Self {
        let ulid = ulid::Ulid::generate().to_string();
        let mut ev = ChatEvent::message(
            WEB_BRIDGE,
            WEB_CHANNEL,
            &ulid,
            Author {
                id: author.to_string(),
                name: author.to_string(),
                ..Default::default()
            },
            text,
        );
        ev.room = room.to_string();
        ev
    }
}
