//! A reaction (kind `reaction`, docs/events.md §3.6): an emoji added to or
//! removed from a message by someone. The emoji is a Unicode character, or
//! `:name:` for a platform's custom emoji, which other platforms lack.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reaction {
    /// `👍`, or `:custom_name:`.
    pub emoji: String,
    pub op: ReactionOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReactionOp {
    Add,
    Remove,
}

impl ReactionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactionOp::Add => "add",
            ReactionOp::Remove => "remove",
        }
    }
}

/// Whether `emoji` is a platform's own (`:name:`), not a Unicode emoji.
pub fn is_custom(emoji: &str) -> bool {
    emoji.len() > 2 && emoji.starts_with(':') && emoji.ends_with(':')
}

/// `emoji` in an event id: the custom name, or the code points in hex
/// (`1f44d`), so that ids stay ASCII.
pub fn id_part(emoji: &str) -> String {
    if is_custom(emoji) {
        return emoji.trim_matches(':').to_string();
    }
    emoji
        .chars()
        .map(|c| format!("{:x}", c as u32))
        .collect::<Vec<_>>()
        .join("-")
}
