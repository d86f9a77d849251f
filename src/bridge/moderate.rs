//! What a moderator can do to a user through a bridge (a timeout, a ban, an
//! unban), and how a platform answers: done, refused by the platform, or
//! not something it can do at all.

use std::time::Duration;

/// An action on one user of a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAction {
    pub kind: UserActionKind,
    /// The platform's user id.
    pub user_id: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserActionKind {
    Timeout(Duration),
    Ban,
    Unban,
}

/// Why an action on a user did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ModerateError {
    /// The platform has no such thing (a Slack timeout): asking again will
    /// never help.
    #[error("{0}")]
    Unsupported(String),
    /// The platform refused or could not be reached (rights, tokens, down).
    #[error("{0}")]
    Failed(String),
}
