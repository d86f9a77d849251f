//! Platform-neutral text work for outbound posts: the common markup (a CommonMark
//! subset: `**bold**`, `*italic*`, `` `code` ``, `[label](url)`, backslash escapes),
//! `format` templates, control-character stripping, and splitting to a platform's
//! length limit on grapheme boundaries.
//!
//! Each bridge converts between the common markup and its platform's markup with
//! the helpers here; what is dangerous on a given platform (mentions, commands) is
//! the bridge's to neutralize.

use unicode_segmentation::UnicodeSegmentation;

use crate::config::LongMessages;

/// Characters that carry meaning in the common markup.
const MARKUP_CHARS: &[char] = &['\\', '*', '_', '`', '[', ']', '~'];

/// Turn plain text (a platform without markup, such as Twitch) into common markup
/// that shows the same characters: every markup character is escaped.
pub fn escape_markup(plain: &str) -> String {
    let mut out = String::with_capacity(plain.len() + 8);
    for c in plain.chars() {
        if MARKUP_CHARS.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Render common markup as plain text: emphasis and code marks dropped, links as
/// `label (url)`, escapes resolved.
pub fn markup_to_plain(markup: &str) -> String {
    let chars: Vec<char> = markup.chars().collect();
    let mut out = String::with_capacity(markup.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() && MARKUP_CHARS.contains(&chars[i + 1]) => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '*' | '`' | '~' => i += 1,
            '_' if is_emphasis_underscore(&chars, i) => i += 1,
            '[' => match parse_link(&chars, i) {
                Some((label, url, end)) => {
                    let label = markup_to_plain(&label);
                    if label.is_empty() || label == url {
                        out.push_str(&url);
                    } else {
                        out.push_str(&label);
                        out.push_str(" (");
                        out.push_str(&url);
                        out.push(')');
                    }
                    i = end;
                }
                None => {
                    out.push('[');
                    i += 1;
                }
            },
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// An underscore at a word boundary is emphasis (`_it_`); inside a word
/// (`snake_case`) it is a literal, as in CommonMark.
fn is_emphasis_underscore(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| chars[j]);
    let after = chars.get(i + 1).copied();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    !(word(before) && word(after))
}

/// `[label](url)` starting at `start`; returns label, url and the index after it.
fn parse_link(chars: &[char], start: usize) -> Option<(String, String, usize)> {
    let mut i = start + 1;
    let mut depth = 1;
    let mut label = String::new();
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                label.push('\\');
                label.push(chars[i + 1]);
                i += 2;
                continue;
            }
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        label.push(chars[i]);
        i += 1;
    }
    if i >= chars.len() || chars.get(i + 1) != Some(&'(') {
        return None;
    }
    let mut j = i + 2;
    let mut url = String::new();
    while j < chars.len() && chars[j] != ')' {
        if chars[j].is_whitespace() {
            return None;
        }
        url.push(chars[j]);
        j += 1;
    }
    if j >= chars.len() || url.is_empty() {
        return None;
    }
    Some((label, url, j + 1))
}

/// A piece of common markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    Text(String),
    Bold(Vec<Span>),
    Italic(Vec<Span>),
    Code(String),
    Link { label: Vec<Span>, url: String },
}

/// Parse common markup into spans (escapes resolved), for platforms whose markup
/// differs enough to be rendered from structure (Slack mrkdwn).
pub fn parse_markup(markup: &str) -> Vec<Span> {
    let chars: Vec<char> = markup.chars().collect();
    parse_spans(&chars)
}

fn parse_spans(chars: &[char]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<Span>| {
        if !text.is_empty() {
            out.push(Span::Text(std::mem::take(text)));
        }
    };
    let find = |from: usize, pat: &[char]| -> Option<usize> {
        (from..chars.len().saturating_sub(pat.len() - 1))
            .find(|&j| chars[j..j + pat.len()] == *pat && (j == 0 || chars[j - 1] != '\\'))
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() && MARKUP_CHARS.contains(&chars[i + 1]) {
            text.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '`'
            && let Some(end) = find(i + 1, &['`'])
        {
            flush(&mut text, &mut out);
            out.push(Span::Code(chars[i + 1..end].iter().collect()));
            i = end + 1;
            continue;
        }
        if c == '*'
            && chars.get(i + 1) == Some(&'*')
            && let Some(end) = find(i + 2, &['*', '*'])
            && end > i + 2
        {
            flush(&mut text, &mut out);
            out.push(Span::Bold(parse_spans(&chars[i + 2..end])));
            i = end + 2;
            continue;
        }
        if (c == '*' || (c == '_' && is_emphasis_underscore(chars, i)))
            && let Some(end) = find(i + 1, &[c])
            && end > i + 1
        {
            flush(&mut text, &mut out);
            out.push(Span::Italic(parse_spans(&chars[i + 1..end])));
            i = end + 1;
            continue;
        }
        if c == '['
            && let Some((label, url, end)) = parse_link(chars, i)
        {
            flush(&mut text, &mut out);
            let label: Vec<char> = label.chars().collect();
            out.push(Span::Link {
                label: parse_spans(&label),
                url,
            });
            i = end;
            continue;
        }
        text.push(c);
        i += 1;
    }
    flush(&mut text, &mut out);
    out
}

/// Replace every control character (CR, LF, NUL, …) by a space, and collapse the
/// runs this creates: on a line protocol such as IRC a CR or LF would end the line
/// and let the rest run as a command.
pub fn single_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && last_space && out.ends_with(' ') {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    out.trim().to_string()
}

/// Values for a `format` template.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    pub name: &'a str,
    pub bridge: &'a str,
    pub channel: &'a str,
    pub text: &'a str,
}

/// Fill `{name}`, `{bridge}`, `{channel}` and `{text}` in one pass, so that a
/// value containing `{text}` is never expanded again.
pub fn apply_template(template: &str, vars: &TemplateVars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + vars.text.len() + vars.name.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match &after[..end] {
            "name" => out.push_str(vars.name),
            "bridge" => out.push_str(vars.bridge),
            "channel" => out.push_str(vars.channel),
            "text" => out.push_str(vars.text),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Length in Unicode scalar values, the unit platform limits are stated in.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The ellipsis appended where text was cut off.
pub const ELLIPSIS: char = '…';

/// Cut `text` into pieces of at most `budget` scalar values, on grapheme
/// boundaries, preferring the last white space in each piece. A single grapheme
/// longer than the budget (a huge combining sequence) is cut between scalars
/// rather than overflow.
pub fn split(text: &str, budget: usize) -> Vec<String> {
    let budget = budget.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if char_len(rest) <= budget {
            parts.push(rest.to_string());
            break;
        }
        let mut cut = 0; // byte index of the last grapheme boundary within budget
        let mut space_cut = None; // byte index after the last white space within budget
        let mut used = 0;
        for (idx, g) in rest.grapheme_indices(true) {
            let n = char_len(g);
            if used + n > budget {
                break;
            }
            used += n;
            cut = idx + g.len();
            if g.chars().all(char::is_whitespace) {
                space_cut = Some(idx);
            }
        }
        if cut == 0 {
            // The first grapheme alone exceeds the budget.
            cut = rest
                .char_indices()
                .nth(budget)
                .map(|(i, _)| i)
                .unwrap_or(rest.len());
        }
        // Prefer white space, unless it would leave a tiny first piece.
        let end = match space_cut {
            Some(s) if s > 0 && char_len(&rest[..s]) * 2 >= budget => s,
            _ => cut,
        };
        let piece = rest[..end].trim_end();
        if !piece.is_empty() {
            parts.push(piece.to_string());
        }
        rest = rest[end..].trim_start();
    }
    parts
}

/// `text` cut to at most `budget` scalar values (on a grapheme boundary), with an
/// ellipsis when anything was dropped.
pub fn truncate(text: &str, budget: usize) -> String {
    let text = text.trim();
    if char_len(text) <= budget {
        return text.to_string();
    }
    let mut parts = split(text, budget.saturating_sub(1).max(1));
    let mut first = parts.swap_remove(0);
    first.push(ELLIPSIS);
    first
}

/// Fit `text` into posts of at most `limit` scalar values each, once `wrap` (the
/// template around the text) is applied, following `long_messages`/`max_parts`.
pub fn fit(
    text: &str,
    limit: usize,
    mode: LongMessages,
    max_parts: usize,
    wrap: impl Fn(&str) -> String,
) -> Vec<String> {
    let overhead = char_len(&wrap(""));
    // A template that leaves no room at all still sends something readable.
    let budget = limit.saturating_sub(overhead).max(limit.min(16));
    let pieces = match mode {
        LongMessages::Truncate => vec![truncate(text, budget)],
        LongMessages::Split => {
            let mut pieces = split(text, budget);
            let max_parts = max_parts.max(1);
            if pieces.len() > max_parts {
                let rest = pieces[max_parts - 1..].join(" ");
                pieces.truncate(max_parts - 1);
                pieces.push(truncate(&rest, budget));
            }
            pieces
        }
    };
    pieces
        .iter()
        .map(|p| {
            let post = wrap(p);
            // A name longer than the limit: the limit is the platform's, not ours.
            if char_len(&post) > limit {
                truncate(&post, limit)
            } else {
                post
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_round_trip_of_plain_text() {
        for s in ["a*b*c", "snake_case", "[x](y)", "back\\slash", "~~no~~"] {
            assert_eq!(markup_to_plain(&escape_markup(s)), s);
        }
    }

    #[test]
    fn markup_to_plain_drops_marks_and_expands_links() {
        assert_eq!(markup_to_plain("hello **world**"), "hello world");
        assert_eq!(
            markup_to_plain("see [docs](https://x.y/z)"),
            "see docs (https://x.y/z)"
        );
        assert_eq!(markup_to_plain("[https://a.b](https://a.b)"), "https://a.b");
        assert_eq!(markup_to_plain("my_var_name"), "my_var_name");
        assert_eq!(markup_to_plain("`code`"), "code");
    }

    #[test]
    fn spans_parse_the_common_subset() {
        assert_eq!(
            parse_markup("a **b** *c* `d*` [e](https://x.y) \\*f"),
            vec![
                Span::Text("a ".into()),
                Span::Bold(vec![Span::Text("b".into())]),
                Span::Text(" ".into()),
                Span::Italic(vec![Span::Text("c".into())]),
                Span::Text(" ".into()),
                Span::Code("d*".into()),
                Span::Text(" ".into()),
                Span::Link {
                    label: vec![Span::Text("e".into())],
                    url: "https://x.y".into()
                },
                Span::Text(" *f".into()),
            ]
        );
        assert_eq!(
            parse_markup("snake_case_name"),
            vec![Span::Text("snake_case_name".into())]
        );
        assert_eq!(
            parse_markup("2 * 3 = 6"),
            vec![Span::Text("2 * 3 = 6".into())]
        );
    }

    #[test]
    fn single_line_removes_crlf_and_controls() {
        assert_eq!(single_line("a\r\nPRIVMSG #x :b"), "a PRIVMSG #x :b");
        assert_eq!(single_line("x\u{0}y\u{7}z"), "x y z");
        assert_eq!(single_line("\n\n"), "");
    }

    #[test]
    fn template_is_single_pass() {
        let vars = TemplateVars {
            name: "{text}",
            bridge: "discord",
            channel: "c",
            text: "hi",
        };
        assert_eq!(
            apply_template("[{bridge}] {name}: {text}", &vars),
            "[discord] {text}: hi"
        );
        assert_eq!(apply_template("{unknown} {", &vars), "{unknown} {");
    }

    #[test]
    fn split_respects_budget_and_graphemes() {
        let family = "👨‍👩‍👧‍👦"; // one grapheme, seven scalars
        let text = family.repeat(10);
        for part in split(&text, 15) {
            assert!(char_len(&part) <= 15);
            assert_eq!(
                part.chars().count() % 7,
                0,
                "cut inside a grapheme: {part:?}"
            );
        }
        let words = "word ".repeat(300);
        let parts = split(&words, 500);
        assert!(
            parts
                .iter()
                .all(|p| char_len(p) <= 500 && !p.ends_with(' '))
        );
        assert_eq!(parts.join(" ").split(' ').count(), 300);
    }

    #[test]
    fn fit_counts_template_and_caps_parts() {
        let text = "x".repeat(1200);
        let wrap = |t: &str| format!("[discord] Ann: {t}");
        let posts = fit(&text, 500, LongMessages::Split, 3, wrap);
        assert_eq!(posts.len(), 3);
        assert!(posts.iter().all(|p| char_len(p) <= 500));
        let posts = fit(&text, 500, LongMessages::Split, 2, |t: &str| t.to_string());
        assert_eq!(posts.len(), 2);
        assert!(posts[1].ends_with(ELLIPSIS) && char_len(&posts[1]) <= 500);
        let posts = fit(&text, 500, LongMessages::Truncate, 3, |t: &str| {
            t.to_string()
        });
        assert_eq!(posts.len(), 1);
        assert_eq!(char_len(&posts[0]), 500);
    }
}
