//! Text for Twitch: one line of plain text that can never run as a command.

use crate::render;

/// Common markup as one plain line (CR, LF and other controls become spaces).
pub fn to_plain_line(markup: &str) -> String {
    render::single_line(&render::markup_to_plain(markup))
}

/// A PRIVMSG starting with `/` or `.` runs as a chat command (`/ban`, `.clear`).
/// The same guard twitch-irc's `say()` uses: a leading `. ` is shown as the text.
pub fn guard_command(line: &str) -> String {
    if line.starts_with('/') || line.starts_with('.') {
        format!(". {line}")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_defused() {
        assert_eq!(guard_command("/ban x"), ". /ban x");
        assert_eq!(guard_command(".clear"), ". .clear");
        assert_eq!(guard_command("[discord] a: /ban x"), "[discord] a: /ban x");
    }
}
