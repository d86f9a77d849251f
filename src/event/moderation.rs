//! What moderators do, as the `moderation` event keeps it (docs/events.md
//! §3.5): the action, who acted and on whom, and what each platform answered
//! when jetbridge carried it out.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Author;

/// A moderator's action (kind `moderation`), as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Moderation {
    pub action: ModAction,
    /// Who acted, where the platform says.
    #[serde(default)]
    pub actor: Option<Author>,
    /// Whom it was about.
    #[serde(default)]
    pub user: Option<Author>,
    /// The event id of the message acted on.
    #[serde(default)]
    pub target: Option<String>,
    /// How long a timeout lasts.
    #[serde(default)]
    pub duration_s: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
    pub origin: ModOrigin,
    /// What jetbridge did on each platform for it (empty when it did
    /// nothing: a moderator acting on the platform itself).
    #[serde(default)]
    pub results: Vec<ModResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModAction {
    Delete,
    Timeout,
    Ban,
    Unban,
    /// The whole chat cleared.
    Clear,
}

impl ModAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModAction::Delete => "delete",
            ModAction::Timeout => "timeout",
            ModAction::Ban => "ban",
            ModAction::Unban => "unban",
            ModAction::Clear => "clear",
        }
    }
}

/// Where a moderation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModOrigin {
    /// A moderator on the platform itself.
    Platform,
    /// jetbridge following a deleted copy to the original and other copies.
    Mirror,
    /// The moderator's console or its HTTP route.
    Console,
}

/// What one platform channel answered to a moderation jetbridge carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModResult {
    pub bridge: String,
    pub channel: String,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
}
