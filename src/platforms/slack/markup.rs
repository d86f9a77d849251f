//! Text between Slack and the common markup: mrkdwn's plain parts in,
//! everything escaped out so that nothing from another platform can ping,
//! link or format beyond what it says.

use crate::render::{self, Span};

/// `&amp;` `&lt;` `&gt;` back to characters.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Plain Slack text (outside `<…>`) → common markup: entities unescaped, Slack's
/// `*bold*` and `_italic_` to their common forms, other markup characters escaped.
pub fn plain_to_common(s: &str) -> String {
    let s = unescape(s);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let boundary_before = i == 0 || !chars[i - 1].is_alphanumeric();
        if (c == '*' || c == '_')
            && boundary_before
            && let Some(end) = (i + 1..chars.len()).find(|&j| chars[j] == c)
            && end > i + 1
            && chars.get(end + 1).is_none_or(|n| !n.is_alphanumeric())
        {
            let inner: String = chars[i + 1..end].iter().collect();
            let inner = render::escape_markup(&inner);
            if c == '*' {
                out.push_str(&format!("**{inner}**"));
            } else {
                out.push_str(&format!("*{inner}*"));
            }
            i = end + 1;
            continue;
        }
        if c == '`'
            && let Some(end) = (i + 1..chars.len()).find(|&j| chars[j] == '`')
        {
            out.push('`');
            out.extend(&chars[i + 1..end]);
            out.push('`');
            i = end + 1;
            continue;
        }
        if ['\\', '*', '_', '`', '[', ']', '~'].contains(&c) {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Escape text for Slack: `&`, `<`, `>` become entities, so nothing from another
/// platform can form `<!channel>`, `<!here>`, `<@U…>` or a link.
pub fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Common markup → Slack mrkdwn, every piece of text escaped.
pub fn to_mrkdwn(markup: &str) -> String {
    fn spans(out: &mut String, list: &[Span]) {
        for s in list {
            match s {
                Span::Text(t) => out.push_str(&escape_slack(t)),
                Span::Bold(inner) => {
                    out.push('*');
                    spans(out, inner);
                    out.push('*');
                }
                Span::Italic(inner) => {
                    out.push('_');
                    spans(out, inner);
                    out.push('_');
                }
                Span::Code(c) => {
                    out.push('`');
                    out.push_str(&escape_slack(c));
                    out.push('`');
                }
                Span::Link { label, url } => {
                    let safe_url = url.starts_with("https://") || url.starts_with("http://");
                    let mut l = String::new();
                    spans(&mut l, label);
                    if safe_url && !url.contains(['|', '<', '>']) {
                        out.push_str(&format!("<{}|{}>", escape_slack(url), l.replace('|', "¦")));
                    } else {
                        out.push_str(&l);
                        out.push_str(" (");
                        out.push_str(&escape_slack(url));
                        out.push(')');
                    }
                }
            }
        }
    }
    let mut out = String::with_capacity(markup.len());
    spans(&mut out, &render::parse_markup(markup));
    out
}

/// `Name (twitch)`: Slack shows it as the poster's name (up to 80 characters).
pub fn slack_username(name: &str, bridge: &str) -> String {
    let name: String = render::single_line(name).chars().take(60).collect();
    let name = if name.trim().is_empty() {
        "someone".to_string()
    } else {
        name
    };
    format!("{name} ({bridge})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_from_elsewhere_can_ping_on_slack() {
        assert_eq!(
            to_mrkdwn("<!channel> <!here> <@U123> & co"),
            "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &amp; co"
        );
        assert_eq!(
            to_mrkdwn("**bold** *it* `c<d>`"),
            "*bold* _it_ `c&lt;d&gt;`"
        );
        assert_eq!(to_mrkdwn("[docs](https://x.y/a)"), "<https://x.y/a|docs>");
        assert_eq!(
            to_mrkdwn("[x](javascript:alert(1))"),
            "x (javascript:alert(1))"
        );
    }

    #[test]
    fn mrkdwn_plain_parts_become_common_markup() {
        assert_eq!(plain_to_common("a &amp; b &lt;3"), "a & b <3");
        assert_eq!(plain_to_common("*bold* and _it_"), "**bold** and *it*");
        assert_eq!(plain_to_common("snake_case 2*3"), "snake\\_case 2\\*3");
    }
}
