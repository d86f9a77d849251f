//! Slack names its emoji (`+1`, `heart`, `thumbsup::skin-tone-2`); the event
//! carries Unicode. The names map through the `emojis` crate (GitHub's
//! gemoji shortcodes, which Slack's standard set uses); a name it does not
//! know is the workspace's own emoji, `:name:`.

/// The event's emoji for Slack's reaction name.
pub fn from_slack(name: &str) -> String {
    // A skin tone is the person's own choice of the same emoji.
    let base = name.split("::").next().unwrap_or(name);
    match emojis::get_by_shortcode(base) {
        Some(e) => e.as_str().to_string(),
        None => format!(":{base}:"),
    }
}

/// Slack's name for a Unicode emoji, if Slack has it.
pub fn to_slack(emoji: &str) -> Option<&'static str> {
    emojis::get(emoji).and_then(|e| e.shortcode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_unicode_and_back() {
        assert_eq!(from_slack("+1"), "👍");
        assert_eq!(from_slack("thumbsup"), "👍");
        assert_eq!(from_slack("+1::skin-tone-3"), "👍");
        assert_eq!(from_slack("heart"), "❤️");
        assert_eq!(from_slack("partyparrot"), ":partyparrot:");
        assert!(matches!(to_slack("👍"), Some("+1" | "thumbsup")));
        assert_eq!(to_slack("❤️"), Some("heart"));
        assert_eq!(to_slack(":partyparrot:"), None);
        for name in ["tada", "eyes", "rocket", "joy", "fire"] {
            let e = from_slack(name);
            assert_eq!(to_slack(&e).map(from_slack), Some(e.clone()), "{name}");
        }
    }
}
