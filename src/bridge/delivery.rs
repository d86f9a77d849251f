//! What the router asks of a bridge for one channel (a [`Delivery`]), what the
//! bridge answers ([`Posted`], the record kept for later edits and deletes), and
//! how a delivery fails ([`DeliverFailure`]): classified, so that the router
//! knows whether to retry, wait or give up, and how much of a split post is
//! already on the platform.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::{Deserialize, Serialize};

use crate::event::ChatEvent;
use crate::ratelimit::Rate;

/// What a platform accepts per post and per channel.
#[derive(Debug, Clone)]
pub struct OutboundSpec {
    /// Longest post, in Unicode scalar values, counting everything on the wire.
    pub max_chars: usize,
    /// The platform's published per-channel send limit.
    pub rate: Option<Rate>,
    /// Whether posted copies can be edited (deletes are assumed possible).
    pub can_edit: bool,
    /// Whether messages take reactions (emoji under them).
    pub can_react: bool,
    /// How coalesced lines are joined into one post.
    pub joiner: &'static str,
    /// The template used when `format` is empty.
    pub default_format: &'static str,
}

/// What a bridge posted for one event in one channel: the platform's ids of the
/// copy (when the platform gives them) and anything else the bridge needs to
/// edit or delete it later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Platform message ids of the copy (several when a long message was split).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Opaque to everyone but the bridge that posted (a Discord webhook id, say).
    #[serde(default, rename = "extra", skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Set when the copy is one post that coalesced several events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<Combined>,
    /// The platform's thread the copy was posted in, where the platform
    /// addresses a thread's messages through it (a Discord thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// Ids the platform gives only after the delivery returned; never stored
    /// (the router stores the copy once they came, see [`Posted::settled`]).
    #[serde(skip)]
    pub later: Option<Later>,
}

/// Platform ids a bridge learns after its delivery returned: Twitch answers a
/// line a round trip after it was written, and the channel's next lines go
/// out meanwhile. Cheap to clone; every clone resolves to the same ids.
#[derive(Clone)]
pub struct Later(Shared<BoxFuture<'static, Vec<String>>>);

impl Later {
    pub fn new(ids: BoxFuture<'static, Vec<String>>) -> Later {
        Later(ids.shared())
    }

    /// The ids of this, then of `next`.
    fn then(self, next: Later) -> Later {
        Later::new(
            async move {
                let mut ids = self.0.await;
                ids.extend(next.0.await);
                ids
            }
            .boxed(),
        )
    }
}

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Later(..)")
    }
}

/// Ids still to come do not make two copies different: equality is about
/// what is stored.
impl PartialEq for Later {
    fn eq(&self, _: &Later) -> bool {
        true
    }
}

impl Eq for Later {}

impl Posted {
    /// Whether a later edit, delete or reply can find this copy on its
    /// platform (it has an id); only such copies need an id map entry.
    pub fn can_be_referenced(&self) -> bool {
        !self.ids.is_empty() || self.handle.is_some() || self.later.is_some()
    }

    /// This copy with the ids it was still waiting for.
    pub async fn settled(mut self) -> Posted {
        if let Some(later) = self.later.take() {
            self.ids.extend(later.0.await);
        }
        self
    }

    /// Add the parts `later` posted after these.
    pub fn extend(&mut self, later: Posted) {
        self.ids.extend(later.ids);
        if later.handle.is_some() {
            self.handle = later.handle;
        }
        if later.thread.is_some() {
            self.thread = later.thread;
        }
        self.later = match (self.later.take(), later.later) {
            (Some(first), Some(next)) => Some(first.then(next)),
            (first, next) => first.or(next),
        };
    }
}

/// The members of a coalesced post, with the line each one became, so that
/// deleting one member can drop just its line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combined {
    pub members: Vec<String>,
    pub lines: Vec<String>,
}

/// One outbound action for one channel.
#[derive(Debug)]
pub enum Action<'a> {
    /// Post `parts` (already rendered and fitted) as consecutive messages.
    Post {
        parts: &'a [String],
        /// Index of `parts[0]` in the whole post: a post resumed after part k
        /// failed starts at k (only part 0 carries a reply reference).
        first: usize,
        /// The copy, in this channel, of the message this one replies to.
        reply_to: Option<&'a Posted>,
        /// The copy (or original), in this channel, of the first message of
        /// the thread this one is in.
        thread: Option<&'a Posted>,
    },
    /// Replace the text of a copy.
    Edit {
        target: &'a Posted,
        parts: &'a [String],
    },
    /// Remove a copy.
    Delete { target: &'a Posted },
    /// Add (or take back) the bot's reaction `emoji` (Unicode) on a message.
    React {
        target: &'a Posted,
        emoji: &'a str,
        add: bool,
    },
}

/// A delivery handed to [`Bridge::deliver`](super::Bridge::deliver).
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The platform channel as configured.
    pub channel: &'a str,
    /// The event (for a coalesced post, the first of them).
    pub event: &'a ChatEvent,
    pub action: Action<'a>,
    /// Several events coalesced into one post (each line from the template): post
    /// as the bridge itself, not as one author.
    pub combined: bool,
}

/// Why a delivery did not happen, and so what the router does next. The source
/// keeps the platform's own error (status, code) for the log.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Transient (network, 5xx, not connected yet, credentials being fixed):
    /// retry the same delivery with backoff, keeping the channel's order.
    #[error("{0}")]
    Retry(Box<dyn std::error::Error + Send + Sync>),
    /// The platform said slow down: retry after exactly this long.
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// Will never succeed (unknown channel, forbidden, rejected content): log it,
    /// count it, and move on.
    #[error("{0}")]
    Reject(Box<dyn std::error::Error + Send + Sync>),
}

impl DeliverError {
    pub fn retry(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        DeliverError::Retry(e.into())
    }
    pub fn reject(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        DeliverError::Reject(e.into())
    }
}

/// A failed delivery, with what of it the platform accepted before the failure.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct DeliverFailure {
    #[source]
    pub error: DeliverError,
    /// Parts of a split post accepted before the failure: a retry starts after them.
    pub accepted: usize,
    /// What those parts became (their ids).
    pub partial: Posted,
}

impl From<DeliverError> for DeliverFailure {
    fn from(error: DeliverError) -> Self {
        DeliverFailure {
            error,
            accepted: 0,
            partial: Posted::default(),
        }
    }
}

/// Post `parts` one by one with `post_one(index, part)` (which returns the
/// platform id of the post, if any); on a failure, report how many were
/// accepted, so that a retry resumes at the failed part.
pub async fn post_parts<F, Fut>(parts: &[String], mut post_one: F) -> Result<Posted, DeliverFailure>
where
    F: FnMut(usize, &str) -> Fut,
    Fut: Future<Output = Result<Option<String>, DeliverError>>,
{
    let mut posted = Posted::default();
    for (i, part) in parts.iter().enumerate() {
        match post_one(i, part).await {
            Ok(id) => posted.ids.extend(id),
            Err(error) => {
                return Err(DeliverFailure {
                    error,
                    accepted: i,
                    partial: posted,
                });
            }
        }
    }
    Ok(posted)
}
