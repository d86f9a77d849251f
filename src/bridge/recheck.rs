//! What a catch-up stores, decided from two reads: the channel's history as
//! the platform has it now, and the channel's events as the stream has them.
//! Messages after the last stored one were missed; a stored message edited
//! since becomes the `edit` a live edit would have given, and a stored
//! message that history no longer lists becomes its `delete` (with the ids a
//! live one would have had, so every instance agrees and the stream keeps
//! each once). Nothing is guessed: where history was cut short, or a stored
//! message is one history never lists, nothing is deleted.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::event::{self, ChatEvent};

/// One message of a channel's history as the platform has it now.
#[derive(Debug, Clone)]
pub struct Found {
    /// The platform's id of the message.
    pub message_id: String,
    /// Its chat event, as live it would be; `None` for what is not chat to
    /// us (our own posts, a join) or could not be read (counted already).
    pub event: Option<ChatEvent>,
    /// The platform's marker of its last edit (Slack `edited.ts`, Discord
    /// `edited_timestamp`), as a live edit's id carries it.
    pub edited: Option<String>,
}

/// What a channel's catch-up stores.
#[derive(Debug, Default)]
pub struct CaughtUp {
    /// Messages said after the last stored one, oldest first.
    pub missed: Vec<ChatEvent>,
    /// Edits of stored messages made meanwhile.
    pub edits: Vec<ChatEvent>,
    /// Deletions of stored messages made meanwhile.
    pub deletes: Vec<ChatEvent>,
    /// Older missed messages were left out (`backfill_max`).
    pub more: bool,
}

/// The stored side of a re-check: the channel's events since `from`, and
/// which of them history is expected to list.
pub struct Stored<'a> {
    pub from: DateTime<Utc>,
    pub events: &'a [ChatEvent],
    /// Whether the platform's channel history lists this stored message (a
    /// Slack thread reply, say, is not in its channel's history).
    pub listed: &'a dyn Fn(&ChatEvent) -> bool,
}

/// Decide what to store: `found` is history from `stored.from` (or from
/// `after` without a re-check), oldest first; `more` says it was cut at its
/// oldest end.
pub fn reconcile(
    after: DateTime<Utc>,
    found: Vec<Found>,
    more: bool,
    stored: Option<Stored<'_>>,
) -> CaughtUp {
    let stored_ids: HashSet<&str> = stored
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.id.as_str()))
        .collect();
    let mut out = CaughtUp {
        more,
        ..Default::default()
    };
    if let Some(s) = &stored {
        let now: HashMap<&str, &Found> = found.iter().map(|f| (f.message_id.as_str(), f)).collect();
        // History covers from here on: where it was cut, older messages
        // are not in it for that reason alone.
        let covered_from = match (more, found.iter().filter_map(|f| f.event.as_ref()).next()) {
            (true, Some(oldest)) => oldest.ts,
            (true, None) => DateTime::<Utc>::MAX_UTC,
            (false, _) => s.from,
        };
        for ev in s.events.iter().filter(|e| e.kind.is_post()) {
            if stored_ids.contains(event::delete_id(&ev.id).as_str()) {
                continue;
            }
            match now.get(ev.source.message_id.as_str()) {
                Some(f) => {
                    let (Some(marker), Some(current)) = (&f.edited, &f.event) else {
                        continue;
                    };
                    if stored_ids.contains(event::edit_id(&ev.id, marker).as_str()) {
                        continue;
                    }
                    out.edits.push(ChatEvent::edit(
                        &ev.source.bridge,
                        &ev.source.channel,
                        &ev.source.message_id,
                        marker,
                        current.author.clone(),
                        current.text.clone(),
                    ));
                }
                None if ev.ts >= covered_from && (s.listed)(ev) => {
                    out.deletes.push(ChatEvent::delete(
                        &ev.source.bridge,
                        &ev.source.channel,
                        &ev.source.message_id,
                        ev.author.clone(),
                    ));
                }
                None => {}
            }
        }
    }
    out.missed = found
        .into_iter()
        .filter_map(|f| f.event)
        .filter(|e| e.ts > after && !stored_ids.contains(e.id.as_str()))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Author;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn msg(id: &str, s: i64, text: &str) -> ChatEvent {
        let mut ev = ChatEvent::message(
            "slack",
            "C1",
            id,
            Author {
                id: "U1".into(),
                name: "Ann".into(),
                ..Default::default()
            },
            text.into(),
        );
        ev.ts = at(s);
        ev
    }

    fn found(id: &str, s: i64, text: &str, edited: Option<&str>) -> Found {
        Found {
            message_id: id.into(),
            event: Some(msg(id, s, text)),
            edited: edited.map(str::to_string),
        }
    }

    fn listed(_: &ChatEvent) -> bool {
        true
    }

    #[test]
    fn an_edit_and_a_deletion_made_while_away_become_events_and_new_messages_are_missed() {
        let stored = vec![
            msg("1", 10, "one"),
            msg("2", 20, "two"),
            msg("3", 30, "three"),
        ];
        let history = vec![
            found("1", 10, "one, edited", Some("1700000040.000100")),
            found("3", 30, "three", None),
            found("4", 50, "four", None),
        ];
        let got = reconcile(
            at(30),
            history,
            false,
            Some(Stored {
                from: at(0),
                events: &stored,
                listed: &listed,
            }),
        );
        assert_eq!(got.missed.len(), 1);
        assert_eq!(got.missed[0].source.message_id, "4");
        assert_eq!(got.edits.len(), 1);
        assert_eq!(got.edits[0].id, "slack:C1:1:edit:1700000040.000100");
        assert_eq!(got.edits[0].text, "one, edited");
        assert_eq!(got.deletes.len(), 1);
        assert_eq!(got.deletes[0].id, "slack:C1:2:delete");
        assert_eq!(got.deletes[0].target.as_deref(), Some("slack:C1:2"));
    }

    #[test]
    fn what_the_stream_already_has_is_not_stored_again() {
        let mut stored = vec![msg("1", 10, "one"), msg("2", 20, "two")];
        stored.push(ChatEvent::edit("slack", "C1", "1", "m1", None, "x".into()));
        stored.push(ChatEvent::delete("slack", "C1", "2", None));
        let history = vec![found("1", 10, "x", Some("m1"))];
        let got = reconcile(
            at(20),
            history,
            false,
            Some(Stored {
                from: at(0),
                events: &stored,
                listed: &listed,
            }),
        );
        assert!(got.edits.is_empty() && got.deletes.is_empty() && got.missed.is_empty());
    }

    #[test]
    fn history_cut_short_or_not_listing_a_message_deletes_nothing() {
        let stored = vec![msg("1", 10, "one"), msg("2", 20, "a thread reply")];
        // Cut at backfill_max: history starts at 15, so 1 is not known gone.
        let history = vec![found("3", 15, "three", None)];
        let not_replies = |e: &ChatEvent| e.source.message_id != "2";
        let got = reconcile(
            at(20),
            history,
            true,
            Some(Stored {
                from: at(0),
                events: &stored,
                listed: &not_replies,
            }),
        );
        assert!(got.deletes.is_empty(), "{:?}", got.deletes);
    }

    #[test]
    fn without_a_recheck_only_what_came_after_is_missed() {
        let history = vec![found("1", 10, "one", None), found("2", 20, "two", None)];
        let got = reconcile(at(10), history, false, None);
        assert_eq!(got.missed.len(), 1);
        assert!(got.edits.is_empty() && got.deletes.is_empty());
    }
}
