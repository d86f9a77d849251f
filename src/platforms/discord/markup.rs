//! Text for Discord: common markup made Discord markdown that cannot ping or
//! format beyond what it says, and webhook names Discord accepts.

use crate::render;

/// `Name (twitch)`, within Discord's rules for webhook names: 1–80 characters,
/// no "discord" or "clyde", no `@ # : ```, not "everyone" or "here".
pub fn webhook_username(name: &str, bridge: &str) -> String {
    let clean = |s: &str| -> String {
        render::single_line(s)
            .chars()
            .filter(|c| !matches!(c, '@' | '#' | ':' | '`'))
            .collect::<String>()
    };
    let mut base = clean(name);
    if base.trim().is_empty() {
        base = "someone".into();
    }
    let base: String = base
        .chars()
        .take(80 - 3 - bridge.chars().count().min(20))
        .collect();
    let full = format!(
        "{} ({})",
        base.trim(),
        clean(bridge).chars().take(20).collect::<String>()
    );
    defuse_reserved(&full)
}

/// Replace reserved words with look-alikes (Greek omicron, Cyrillic у) so that
/// Discord accepts the name and it still reads the same.
fn defuse_reserved(s: &str) -> String {
    let mut out = s.to_string();
    for (word, replacement) in [("discord", "disc\u{03bf}rd"), ("clyde", "cl\u{0443}de")] {
        let lower = out.to_lowercase();
        if let Some(pos) = lower.find(word) {
            // Both are ASCII words: the byte range is the same in `out`.
            let original = &out[pos..pos + word.len()];
            let mapped: String = original
                .chars()
                .zip(replacement.chars())
                .map(|(o, r)| {
                    if o.is_ascii_uppercase() {
                        r.to_uppercase().next().unwrap_or(r)
                    } else {
                        r
                    }
                })
                .collect();
            out.replace_range(pos..pos + word.len(), &mapped);
            return defuse_reserved(&out);
        }
    }
    if matches!(out.to_lowercase().as_str(), "everyone" | "here") {
        out.push('_');
    }
    out
}

/// Common markup → Discord markdown that means the same and cannot ping or
/// format beyond it: `@everyone`/`@here` broken with a zero-width space, raw
/// `<…>` mention syntax escaped, Discord-only syntax (`||`, line-leading `>`,
/// `#`, `-#`) escaped.
pub fn to_discord(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len() + 8);
    for (i, line) in markup.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        out.push_str(indent);
        if trimmed.starts_with('>') || trimmed.starts_with('#') || trimmed.starts_with("-#") {
            out.push('\\');
        }
        let mut chars = trimmed.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '<' => out.push_str("\\<"),
                '|' if chars.peek() == Some(&'|') => {
                    chars.next();
                    out.push_str("\\|\\|");
                }
                '@' => {
                    out.push('@');
                    let ahead: String = chars.clone().take(8).collect::<String>().to_lowercase();
                    if ahead.starts_with("everyone") || ahead.starts_with("here") {
                        out.push('\u{200B}');
                    }
                }
                _ => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_cannot_ping() {
        assert_eq!(
            to_discord("@everyone hi @here"),
            "@\u{200B}everyone hi @\u{200B}here"
        );
        assert_eq!(to_discord("<@123> <@&5> <#9>"), "\\<@123> \\<@&5> \\<#9>");
        assert_eq!(
            to_discord("> quote\n# big\n||spoiler||"),
            "\\> quote\n\\# big\n\\|\\|spoiler\\|\\|"
        );
        assert_eq!(to_discord("**bold** and *it*"), "**bold** and *it*");
    }

    #[test]
    fn webhook_names_follow_discord_rules() {
        assert_eq!(webhook_username("Ann", "twitch"), "Ann (twitch)");
        let n = webhook_username("Clyde from Discord", "discord");
        assert!(
            !n.to_lowercase().contains("discord") && !n.to_lowercase().contains("clyde"),
            "{n}"
        );
        assert_eq!(webhook_username("@every#one:`", "web"), "everyone (web)");
        assert!(webhook_username(&"x".repeat(200), "twitch").chars().count() <= 80);
        assert_eq!(webhook_username("", "web"), "someone (web)");
    }
}
