//! What the conformance suite (`tests/conformance.rs`) needs of a fake
//! platform. Each fake under `tests/support/` implements it; a new platform
//! passes the shared cases by writing its fake and this impl.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

/// One post jetbridge made on the platform.
#[derive(Debug, Clone)]
pub struct Post {
    /// The platform's id of the post, where it gives one.
    pub id: Option<String>,
    /// The name the post shows as its author when it is not the bot's own
    /// (Discord webhook, Slack custom name).
    pub name: Option<String>,
    pub text: String,
    /// The request as the platform received it.
    pub raw: Value,
}

impl Post {
    /// Whether a viewer sees `name` as the author of this post.
    pub fn shows(&self, name: &str) -> bool {
        self.name.as_deref().is_some_and(|n| n.contains(name)) || self.text.contains(name)
    }
}

/// A change jetbridge made to one of its posts.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Edit { id: String, text: String },
    Delete { id: String },
}

/// A fake platform server speaking the real protocol.
#[async_trait]
pub trait FakePlatform: Send + Sync + Sized + 'static {
    /// The platform (and bridge) name.
    const NAME: &'static str;

    async fn start() -> Self;

    /// The keys of an account on this fake, with pacing off.
    fn section(&self) -> String;

    /// Two channels, as configured.
    fn channels(&self) -> [String; 2];

    /// Wait until jetbridge is connected (and has joined the channels).
    async fn wait_connected(&self, timeout: Duration);

    /// `user` writes `text` in `channel`; returns the platform's message id.
    async fn say(&self, channel: &str, user: &str, text: &str) -> String;

    /// A post of jetbridge's own seen coming back in (another instance posted it).
    async fn echo(&self, channel: &str, text: &str);

    /// `user` edits their message `id`.
    async fn edit(&self, channel: &str, user: &str, id: &str, text: &str);

    /// Message `id` of `user` is deleted (by them or a moderator).
    async fn delete(&self, channel: &str, user: &str, id: &str);

    /// jetbridge's accepted posts in `channel`, in order.
    async fn posts(&self, channel: &str) -> Vec<Post>;

    /// Wait until `n` posts were accepted in `channel`; returns them all.
    async fn wait_posts(&self, channel: &str, n: usize, timeout: Duration) -> Vec<Post>;

    /// Every post attempt into `channel` with its time and whether it was accepted.
    async fn attempts(&self, channel: &str) -> Vec<(Instant, bool)>;

    /// jetbridge's edits and deletes of its posts in `channel`, in order.
    async fn changes(&self, channel: &str) -> Vec<Change>;

    /// Refuse the next `n` posts with a 429 asking to wait `after`.
    async fn rate_limit(&self, n: usize, after: Duration);

    /// Fail every post (and whatever the platform cannot serve) for `d`.
    async fn outage(&self, d: Duration);

    /// How `post` could act on the platform (ping, command, line break), if it could.
    fn live(post: &Post) -> Option<String>;
}
