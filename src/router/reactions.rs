//! Reactions in one channel: who reacted with what to a message is kept per
//! channel (in the id map, so instances and restarts agree), and the bot's
//! own reaction with an emoji is there while anyone's on the other side is:
//! added with the first, taken back with the last. A moderator clearing an
//! emoji (no one named), or every emoji (`*`), takes that platform's away.

use std::time::Duration;

use super::worker::{Plan, Worker};
use crate::backoff::Backoff;
use crate::bridge::Posted;
use crate::bus::Reactors;
use crate::event::{ChatEvent, ReactionOp};

/// The emoji of a reaction that clears every emoji of a message.
pub const EVERY_EMOJI: &str = "*";

impl Worker {
    /// The reactors of the message `ev` reacts to after `ev`, and what the
    /// bot does about each emoji that changed: add (`true`) or take back its
    /// own reaction. `None` when stopped.
    pub(super) async fn reacted(&self, ev: &ChatEvent) -> Option<(Reactors, Vec<(String, bool)>)> {
        let target = ev.target.as_deref().unwrap_or_default();
        let reaction = ev.reaction.as_ref()?;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut reactors = loop {
            match self.records.reactors(&self.channel, target).await {
                Ok(r) => break r,
                Err(e) => tracing::warn!(error = %e, "cannot read the reactions yet"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = self.hard_stop.cancelled() => return None,
            }
        };
        let before: std::collections::BTreeSet<String> = reactors
            .iter()
            .filter(|(_, who)| !who.is_empty())
            .map(|(e, _)| e.clone())
            .collect();
        let bridge = &ev.source.bridge;
        let mine = |w: &String| w.starts_with(&format!("{bridge}/"));
        match (reaction.op, &ev.author) {
            (ReactionOp::Add, Some(a)) if reaction.emoji != EVERY_EMOJI => {
                reactors
                    .entry(reaction.emoji.clone())
                    .or_default()
                    .insert(format!("{bridge}/{}", a.id));
            }
            (ReactionOp::Add, _) => {}
            (ReactionOp::Remove, Some(a)) => {
                if let Some(who) = reactors.get_mut(&reaction.emoji) {
                    who.remove(&format!("{bridge}/{}", a.id));
                }
            }
            (ReactionOp::Remove, None) if reaction.emoji == EVERY_EMOJI => {
                for who in reactors.values_mut() {
                    who.retain(|w| !mine(w));
                }
            }
            (ReactionOp::Remove, None) => {
                if let Some(who) = reactors.get_mut(&reaction.emoji) {
                    who.retain(|w| !mine(w));
                }
            }
        }
        reactors.retain(|_, who| !who.is_empty());
        // Emoji no one reacts with any more go; new ones come.
        let mut changes: Vec<(String, bool)> = before
            .iter()
            .filter(|e| !reactors.contains_key(*e))
            .map(|e| (e.clone(), false))
            .collect();
        changes.extend(
            reactors
                .keys()
                .filter(|e| !before.contains(*e))
                .map(|e| (e.clone(), true)),
        );
        Some((reactors, changes))
    }

    /// Add or take back the bot's reactions, one emoji after another; `None`
    /// when stopped.
    pub(super) async fn react_all(
        &mut self,
        ev: &ChatEvent,
        changes: &[(String, bool)],
        target: Option<&Posted>,
    ) -> Option<Option<Posted>> {
        for change in changes {
            let one = Plan::React {
                changes: vec![change.clone()],
                reactors: Reactors::new(),
            };
            self.attempt(ev, &one, &[], (target, None), false).await?;
        }
        Some(Some(Posted::default()))
    }

    /// Keep who reacted to `event_id` (see `Records::reactors`).
    pub(super) async fn keep_reactors(&self, event_id: &str, reactors: &Reactors) -> bool {
        self.persist("reactors", || {
            self.records.put_reactors(&self.channel, event_id, reactors)
        })
        .await
    }
}
