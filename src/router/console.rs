//! What the moderator's console (and its HTTP route) does: delete a message
//! everywhere (a delete carried out in every channel of the room, the
//! original's included, as a mirrored delete is), or time out, ban or unban
//! its author on their platform. Each action is one `moderation` event with
//! what every platform answered.

use std::collections::HashMap;
use std::sync::Arc;

use super::Backbone;
use super::mirror::{ANSWERS_WITHIN, Tally};
use crate::bridge::{Bridge, ModerateError, UserAction, UserActionKind};
use crate::bus::BusError;
use crate::config::Config;
use crate::event::{
    self, Author, ChatEvent, ModAction, ModOrigin, ModResult, Moderation, Source, WEB_BRIDGE,
    WEB_CHANNEL,
};

pub struct Console {
    backbone: Arc<dyn Backbone>,
    config: Arc<Config>,
    bridges: Arc<HashMap<String, Arc<dyn Bridge>>>,
}

/// Why an action was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Not a message or a user of this room.
    #[error("{0}")]
    NotFound(String),
    /// It cannot be done (a platform without timeouts, a message already deleted).
    #[error("{0}")]
    Conflict(String),
    /// NATS could not store it now.
    #[error("not stored: {0}")]
    Bus(#[from] BusError),
}

/// A moderator's action on a user.
#[derive(Debug, Clone)]
pub struct OnUser {
    pub bridge: String,
    pub user: Author,
    pub kind: UserActionKind,
}

impl Console {
    pub fn new(
        backbone: Arc<dyn Backbone>,
        config: Arc<Config>,
        bridges: Arc<HashMap<String, Arc<dyn Bridge>>>,
    ) -> Self {
        Console {
            backbone,
            config,
            bridges,
        }
    }

    /// Delete message `target` of `room` everywhere. Returns the id of the
    /// `moderation` event, stored once every channel answered (or
    /// [`ANSWERS_WITHIN`] passed).
    pub async fn delete(
        &self,
        room: &str,
        target: &str,
        actor: Author,
        reason: Option<String>,
    ) -> Result<String, ConsoleError> {
        let Some(cfg) = self.config.room(room) else {
            return Err(ConsoleError::NotFound(format!("unknown room {room:?}")));
        };
        let of_room = target.starts_with(&format!("{WEB_BRIDGE}:{WEB_CHANNEL}:"))
            || cfg
                .channels
                .iter()
                .any(|c| event::said_in(target, &c.bridge, &c.channel).is_some());
        if !of_room {
            return Err(ConsoleError::NotFound(format!(
                "{target:?} is not a message of room {room:?}"
            )));
        }
        let key = ulid::Ulid::generate().to_string();
        let source = Source {
            bridge: WEB_BRIDGE.to_string(),
            channel: WEB_CHANNEL.to_string(),
            message_id: format!("mod-{key}"),
        };
        let delete = ChatEvent::delete_of(target, room, source);
        if !self.backbone.publish(&delete).await? {
            return Err(ConsoleError::Conflict(format!(
                "{target:?} was deleted already"
            )));
        }
        tracing::info!(target, room, "console: deleting everywhere");
        let expected: Vec<(String, String)> = cfg
            .channels
            .iter()
            .filter(|c| c.direction.writes())
            .map(|c| (c.bridge.clone(), c.channel.clone()))
            .collect();
        let mut record = record(
            room,
            &key,
            Moderation {
                action: ModAction::Delete,
                actor: Some(actor),
                user: None,
                target: Some(target.to_string()),
                duration_s: None,
                reason,
                origin: ModOrigin::Console,
                results: Vec::new(),
            },
        );
        let id = record.id.clone();
        let backbone = self.backbone.clone();
        // The answers take as long as the slowest platform: the caller has
        // its answer (202) now, the record follows.
        tokio::spawn(async move {
            let results = match backbone.verdicts().await {
                Ok(v) => match v.collect(&delete.id, &expected, ANSWERS_WITHIN).await {
                    Ok(got) => {
                        let mut tally = Tally::default();
                        tally.add(&expected, &got);
                        tally.into_results()
                    }
                    Err(e) => unknown(&expected, &e),
                },
                Err(e) => unknown(&expected, &e),
            };
            if let Some(m) = record.moderation.as_mut() {
                m.results = results;
            }
            if let Err(e) = backbone.publish(&record).await {
                tracing::error!(error = %e, id = %record.id, "cannot store the record of a console delete");
            }
        });
        Ok(id)
    }

    /// Time out, ban or unban a user in every channel of their platform in
    /// `room`. Returns the id of the stored `moderation` event.
    pub async fn act(
        &self,
        room: &str,
        on: OnUser,
        actor: Author,
        reason: Option<String>,
    ) -> Result<String, ConsoleError> {
        let Some(cfg) = self.config.room(room) else {
            return Err(ConsoleError::NotFound(format!("unknown room {room:?}")));
        };
        let channels: Vec<&str> = cfg
            .channels
            .iter()
            .filter(|c| c.bridge == on.bridge)
            .map(|c| c.channel.as_str())
            .collect();
        let bridge = match self.bridges.get(&on.bridge) {
            Some(b) if !channels.is_empty() => b,
            _ => {
                return Err(ConsoleError::NotFound(format!(
                    "room {room:?} has no channel of a running bridge {:?}",
                    on.bridge
                )));
            }
        };
        let action = UserAction {
            kind: on.kind,
            user_id: on.user.id.clone(),
            reason: reason.clone(),
        };
        let mut results = Vec::new();
        let mut unsupported = None;
        for channel in channels {
            let error = match bridge.moderate(channel, &action).await {
                Ok(()) => None,
                Err(ModerateError::Unsupported(why)) => {
                    unsupported = Some(why);
                    continue;
                }
                Err(ModerateError::Failed(why)) => Some(why),
            };
            tracing::info!(bridge = %on.bridge, channel, user = %on.user.id, action = ?on.kind, ?error, "console: acted on a user");
            results.push(ModResult {
                bridge: on.bridge.clone(),
                channel: channel.to_string(),
                ok: error.is_none(),
                error,
            });
        }
        if results.is_empty() {
            return Err(ConsoleError::Conflict(
                unsupported.unwrap_or_else(|| "nothing to do".into()),
            ));
        }
        let (action, duration_s) = match on.kind {
            UserActionKind::Timeout(d) => (ModAction::Timeout, Some(d.as_secs())),
            UserActionKind::Ban => (ModAction::Ban, None),
            UserActionKind::Unban => (ModAction::Unban, None),
        };
        let record = record(
            room,
            &ulid::Ulid::generate().to_string(),
            Moderation {
                action,
                actor: Some(actor),
                user: Some(on.user),
                target: None,
                duration_s,
                reason,
                origin: ModOrigin::Console,
                results,
            },
        );
        self.backbone.publish(&record).await?;
        Ok(record.id)
    }
}

/// The `moderation` event of a console action.
fn record(room: &str, key: &str, moderation: Moderation) -> ChatEvent {
    let mut ev = ChatEvent::moderation(WEB_BRIDGE, WEB_CHANNEL, key, moderation);
    ev.room = room.to_string();
    ev
}

/// Every expected channel, with why its answer is not known.
fn unknown(expected: &[(String, String)], e: &BusError) -> Vec<ModResult> {
    tracing::warn!(error = %e, "cannot gather what the platforms did for a console delete");
    expected
        .iter()
        .map(|(bridge, channel)| ModResult {
            bridge: bridge.clone(),
            channel: channel.clone(),
            ok: false,
            error: Some(format!("unknown: {e}")),
        })
        .collect()
}
