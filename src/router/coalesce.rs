//! Coalescing a channel's backlog into one post, and the surgery a coalesced
//! post needs later: deleting one member edits the post to drop its line;
//! edits of members are ignored.

use std::collections::VecDeque;

use super::item::{Item, withdrawn};
use crate::bridge::{Bridge, Combined, Posted, default_render};
use crate::event::{ChatEvent, EventKind};
use crate::render;

/// Events that may join a coalesced post: plain messages (not replies).
fn coalescible(ev: &ChatEvent) -> bool {
    ev.kind == EventKind::Message && ev.reply_to.is_none() && ev.thread.is_none()
}

/// Whether `n` may join a coalesced post now: a plain message that may be
/// relayed now and was not deleted while held.
fn joins(n: &Item, queue: &VecDeque<Item>, now: tokio::time::Instant) -> bool {
    coalescible(&n.event) && n.is_due(now) && !(n.due.is_some() && withdrawn(queue, &n.event.id))
}

/// The head of the queue, with its rendered parts; plus the messages behind it
/// when the channel is behind by more than `coalesce_after` and they fit in one
/// post. Coalesced lines use the template (`format`), so each keeps its author
/// even where a single post would otherwise carry one author's name (webhooks,
/// Slack's custom name). `queue` must not be empty.
pub fn take_batch(
    bridge: &dyn Bridge,
    channel: &str,
    queue: &mut VecDeque<Item>,
) -> Vec<(Item, Vec<String>)> {
    let Some(head) = queue.pop_front() else {
        return Vec::new();
    };
    let lagging = head.ready_since().elapsed() >= bridge.common().coalesce_after;
    let now = tokio::time::Instant::now();
    let single = |head: Item| {
        let parts = bridge.render(&head.event, channel);
        vec![(head, parts)]
    };
    if !(lagging && coalescible(&head.event) && queue.front().is_some_and(|n| joins(n, queue, now)))
    {
        return single(head);
    }
    let spec = bridge.spec();
    let head_line = default_render(bridge, &head.event, channel);
    if head_line.len() != 1 {
        return single(head);
    }
    let mut len = render::char_len(&head_line[0]);
    let mut batch = vec![(head, head_line)];
    while let Some(next) = queue.front() {
        if !joins(next, queue, now) {
            break;
        }
        let line = default_render(bridge, &next.event, channel);
        let add = render::char_len(spec.joiner) + line.first().map_or(0, |p| render::char_len(p));
        if line.len() != 1 || len + add > spec.max_chars {
            break;
        }
        len += add;
        if let Some(item) = queue.pop_front() {
            batch.push((item, line));
        }
    }
    if batch.len() == 1 {
        // Nothing joined it after all: post it the usual way.
        let (head, _) = batch.remove(0);
        return single(head);
    }
    batch
}

/// The record of a coalesced post of `batch`.
pub fn combined(batch: &[(Item, Vec<String>)]) -> Combined {
    Combined {
        members: batch.iter().map(|(i, _)| i.event.id.clone()).collect(),
        lines: batch.iter().map(|(_, l)| l[0].clone()).collect(),
    }
}

/// What an edit or delete of one member of a coalesced post does to it.
#[derive(Debug, PartialEq)]
pub enum MemberChange {
    /// Nothing (edits of members; a platform that cannot edit).
    Ignore,
    /// Edit the post to this (the member's line dropped).
    Shrink(Posted),
    /// Delete the whole post (its last member went).
    DeleteAll,
}

/// How `kind` of member `target` changes the coalesced post `post`; `None`
/// when `post` is not a coalesced post.
pub fn member_change(
    post: &Posted,
    kind: EventKind,
    target: &str,
    can_edit: bool,
) -> Option<MemberChange> {
    let c = post.combined.as_ref()?;
    let Some(i) = c.members.iter().position(|m| m == target) else {
        return Some(MemberChange::Ignore);
    };
    if kind != EventKind::Delete {
        return Some(MemberChange::Ignore);
    }
    let mut rest = c.clone();
    rest.members.remove(i);
    rest.lines.remove(i);
    Some(if rest.members.is_empty() {
        MemberChange::DeleteAll
    } else if can_edit {
        let mut shrunk = post.clone();
        shrunk.combined = Some(rest);
        MemberChange::Shrink(shrunk)
    } else {
        MemberChange::Ignore
    })
}
