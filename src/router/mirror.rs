//! Mirrored deletes: a copy that someone deleted on its platform (only
//! moderators and the bot can delete a copy) leads back, through the copy
//! entries of the id map, to its original; jetbridge then deletes the
//! original and every other copy with a delete carried out everywhere, and
//! gathers what each channel answered into one `moderation` event.
//!
//! Our own deletions of copies come back from the platforms too; the worker
//! forgets a copy's entry before deleting it, so those lead nowhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::recent::Recent;
use super::{Backbone, Records, Routes, Verdicts};
use crate::bus::{BusError, Verdict};
use crate::event::{ChatEvent, EventKind, ModAction, ModOrigin, ModResult, Moderation};

/// How long the channels get to say what they did before the record is
/// stored without them (a channel that did not answer is said so).
pub const ANSWERS_WITHIN: Duration = Duration::from_secs(20);

pub struct Mirror {
    pub backbone: Arc<dyn Backbone>,
    pub records: Arc<dyn Records>,
    pub verdicts: Arc<dyn Verdicts>,
    pub routes: Arc<Routes>,
    /// This bridge's recent posts: a copy deleted right after it was posted
    /// is found before its entry lands.
    pub recent: Recent,
}

/// Whether `ev`, read by the router of `bridge`, is a deletion seen on one
/// of its channels that may be of a copy it posted.
pub fn may_follow(bridge: &str, routes: &Routes, ev: &ChatEvent) -> bool {
    ev.kind == EventKind::Delete
        && ev.source.bridge == bridge
        && !ev.is_foreign_delete()
        && routes.mirrors_deletes(&ev.room)
}

/// How long a deletion of something not known as a copy is given to turn
/// out to be one (its post's answer still on its way).
const LATE_COPY: Duration = Duration::from_secs(1);

impl Mirror {
    /// What the message `platform_id` of `channel` is known as: `Some(Some)`
    /// a copy of that event, `Some(None)` a copy jetbridge deleted itself,
    /// `None` not a copy that is known.
    async fn copy_of(
        &self,
        channel: &str,
        platform_id: &str,
    ) -> Result<Option<Option<String>>, BusError> {
        if let Some(known) = self.recent.copy_of(channel, platform_id) {
            return Ok(Some(known));
        }
        Ok(self.records.copy_of(channel, platform_id).await?.map(Some))
    }

    /// Follow the deletion `ev` to the original and every other copy, if it
    /// deleted a copy.
    pub async fn follow(&self, ev: &ChatEvent) -> Result<(), BusError> {
        let channel = &ev.source.channel;
        let mut original = self.copy_of(channel, &ev.source.message_id).await?;
        if original.is_none() {
            // A copy deleted the moment it appeared may be one whose post
            // jetbridge has not heard back about yet: look once more.
            tokio::time::sleep(LATE_COPY).await;
            original = self.copy_of(channel, &ev.source.message_id).await?;
        }
        let Some(original) = original.flatten() else {
            return Ok(());
        };
        // A coalesced post stands for several messages: all of them go.
        let record = match self.recent.get(channel, &original) {
            Some(p) => Some(p),
            None => self.records.get(channel, &original).await?,
        };
        let members = record
            .and_then(|p| p.combined)
            .map(|c| c.members)
            .unwrap_or_default();
        let members = if members.is_empty() {
            vec![original]
        } else {
            members
        };
        tracing::info!(copy = %ev.source.message_id, originals = ?members, "a copy was deleted: deleting its original and every copy");
        metrics::counter!("jetbridge_mirrored_deletes_total", "bridge" => ev.source.bridge.clone())
            .increment(1);
        let mut deletes = Vec::new();
        for m in &members {
            let mut d = ChatEvent::delete_of(m, &ev.room, ev.source.clone());
            d.ts = ev.ts;
            self.backbone.publish(&d).await?;
            deletes.push(d.id);
        }
        let expected = self.routes.writers(&ev.room).to_vec();
        let mut results = Tally::default();
        for id in &deletes {
            let got = self.verdicts.collect(id, &expected, ANSWERS_WITHIN).await?;
            results.add(&expected, &got);
        }
        let moderation = Moderation {
            action: ModAction::Delete,
            actor: None,
            user: None,
            target: members.first().cloned(),
            duration_s: None,
            reason: None,
            origin: ModOrigin::Mirror,
            results: results.into_results(),
        };
        let mut record = ChatEvent::moderation(
            &ev.source.bridge,
            channel,
            &format!("mirror:{}", ev.source.message_id),
            moderation,
        );
        record.room = ev.room.clone();
        record.ts = ev.ts;
        self.backbone.publish(&record).await?;
        Ok(())
    }
}

/// What the channels answered to one or more deletes, one result per channel.
#[derive(Default)]
pub struct Tally(BTreeMap<(String, String), Option<String>>);

impl Tally {
    /// Add the answers `got` of the `expected` channels to one delete.
    pub fn add(
        &mut self,
        expected: &[(String, String)],
        got: &std::collections::HashMap<(String, String), Verdict>,
    ) {
        for pair in expected {
            let error = match got.get(pair) {
                Some(Verdict::Absent) => continue,
                Some(Verdict::Done) => None,
                Some(Verdict::Refused { error }) => Some(error.clone()),
                None => Some(format!(
                    "no answer within {}s (the platform may be down; its delivery goes on)",
                    ANSWERS_WITHIN.as_secs()
                )),
            };
            let slot = self.0.entry(pair.clone()).or_default();
            if slot.is_none() {
                *slot = error;
            }
        }
    }

    pub fn into_results(self) -> Vec<ModResult> {
        self.0
            .into_iter()
            .map(|((bridge, channel), error)| ModResult {
                bridge,
                channel,
                ok: error.is_none(),
                error,
            })
            .collect()
    }
}
