//! What a Discord message says outside its `content`: a forward's snapshot, a
//! poll, rich embeds (other bots' announcements), Components V2 (text
//! displays in containers and sections, media galleries, files, link
//! buttons). Each is rendered into common-markup lines (and attachments), so
//! that no message is stored or relayed empty because its words were
//! elsewhere.

use serde_json::Value;
use serenity::all::{Embed, Poll, PollMediaEmoji};

use crate::render;

/// One attachment found in a message's structure: its URL and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub url: String,
    pub name: String,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

/// A poll as lines: its question, then its answers numbered.
pub fn poll_lines(poll: &Poll) -> Vec<String> {
    let mut lines = Vec::new();
    let question = poll.question.text.as_deref().unwrap_or("").trim();
    lines.push(format!("**Poll:** {}", render::escape_markup(question)));
    for (i, a) in poll.answers.iter().enumerate() {
        let emoji = match &a.poll_media.emoji {
            Some(PollMediaEmoji::Name(n)) => format!("{n} "),
            _ => String::new(),
        };
        let text = a.poll_media.text.as_deref().unwrap_or("").trim();
        lines.push(format!("{}. {emoji}{}", i + 1, render::escape_markup(text)));
    }
    lines
}

/// A rich embed (a bot's announcement) as lines: author, title (a link when
/// it has one), description, fields, footer. Link previews (the platform's
/// own embeds of a URL in the text) are not repeated.
pub fn embed_lines(embed: &Embed) -> Vec<String> {
    if embed.kind.as_deref().is_some_and(|k| k != "rich") {
        return Vec::new();
    }
    let mut lines = Vec::new();
    if let Some(a) = &embed.author
        && !a.name.trim().is_empty()
    {
        lines.push(format!("*{}*", render::escape_markup(a.name.trim())));
    }
    if let Some(t) = embed
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let title = render::escape_markup(t);
        lines.push(match embed.url.as_deref().filter(|u| is_web_url(u)) {
            Some(u) => format!("**[{title}]({u})**"),
            None => format!("**{title}**"),
        });
    }
    if let Some(d) = embed
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        lines.push(d.to_string());
    }
    for f in &embed.fields {
        lines.push(format!(
            "**{}:** {}",
            render::escape_markup(f.name.trim()),
            f.value.trim()
        ));
    }
    if let Some(f) = &embed.footer
        && !f.text.trim().is_empty()
    {
        lines.push(format!("*{}*", render::escape_markup(f.text.trim())));
    }
    lines
}

fn is_web_url(u: &str) -> bool {
    u.starts_with("https://") || u.starts_with("http://")
}

/// Components V2 (and link buttons of classic action rows), read from the
/// message's raw JSON: the lines they say and the media they show.
pub fn components(list: &Value) -> (Vec<String>, Vec<Found>) {
    let mut lines = Vec::new();
    let mut media = Vec::new();
    for c in list.as_array().into_iter().flatten() {
        component(c, &mut lines, &mut media);
    }
    (lines, media)
}

fn component(c: &Value, lines: &mut Vec<String>, media: &mut Vec<Found>) {
    match c["type"].as_u64() {
        // Action row, container, section: their children, in order.
        Some(1) | Some(17) => {
            for child in c["components"].as_array().into_iter().flatten() {
                component(child, lines, media);
            }
        }
        Some(9) => {
            for child in c["components"].as_array().into_iter().flatten() {
                component(child, lines, media);
            }
            component(&c["accessory"], lines, media);
        }
        // A link button says where it goes; other buttons do nothing here.
        Some(2) => {
            if let Some(url) = c["url"].as_str().filter(|u| is_web_url(u)) {
                let label = c["label"].as_str().unwrap_or(url);
                lines.push(format!("[{}]({url})", render::escape_markup(label)));
            }
        }
        // Text display: Discord markdown, as message content is.
        Some(10) => {
            if let Some(t) = c["content"]
                .as_str()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                lines.push(t.to_string());
            }
        }
        // Thumbnail and media gallery items: images.
        Some(11) => found(&c["media"], c["description"].as_str(), media),
        Some(12) => {
            for item in c["items"].as_array().into_iter().flatten() {
                found(&item["media"], item["description"].as_str(), media);
            }
        }
        // File: its name and size come with it.
        Some(13) => {
            if let Some(url) = c["file"]["url"].as_str().filter(|u| is_web_url(u)) {
                media.push(Found {
                    url: url.to_string(),
                    name: c["name"].as_str().unwrap_or("file").to_string(),
                    content_type: c["file"]["content_type"].as_str().map(str::to_string),
                    size: c["size"].as_u64(),
                });
            }
        }
        // Separators and anything newer say nothing.
        _ => {}
    }
}

fn found(m: &Value, description: Option<&str>, media: &mut Vec<Found>) {
    let Some(url) = m["url"].as_str().filter(|u| is_web_url(u)) else {
        return;
    };
    let name = description
        .filter(|d| !d.trim().is_empty())
        .map(str::to_string)
        .or_else(|| {
            url.split('?')
                .next()
                .and_then(|p| p.rsplit('/').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "image".into());
    media.push(Found {
        url: url.to_string(),
        name,
        content_type: m["content_type"].as_str().map(str::to_string),
        size: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn components_v2_become_lines_and_media() {
        let v = json!([
            {"type": 17, "id": 1, "accent_color": 703487, "components": [
                {"type": 10, "id": 2, "content": "# Stream is live"},
                {"type": 9, "id": 3, "components": [{"type": 10, "id": 4, "content": "Playing **chess**"}],
                 "accessory": {"type": 11, "id": 5, "media": {"url": "https://cdn.example/t.png"}}},
                {"type": 12, "id": 6, "items": [{"media": {"url": "https://cdn.example/a.png", "content_type": "image/png"}, "description": "board"}]},
                {"type": 13, "id": 7, "file": {"url": "https://cdn.example/game.pgn"}, "name": "game.pgn", "size": 1234},
                {"type": 14, "id": 8, "divider": true, "spacing": 1},
                {"type": 1, "id": 9, "components": [{"type": 2, "id": 10, "style": 5, "label": "Watch", "url": "https://twitch.tv/x"}]},
                {"type": 99, "id": 11}
            ]}
        ]);
        let (lines, media) = components(&v);
        assert_eq!(
            lines,
            vec![
                "# Stream is live",
                "Playing **chess**",
                "[Watch](https://twitch.tv/x)"
            ]
        );
        let urls: Vec<&str> = media.iter().map(|m| m.url.as_str()).collect();
        assert_eq!(
            urls,
            vec![
                "https://cdn.example/t.png",
                "https://cdn.example/a.png",
                "https://cdn.example/game.pgn"
            ]
        );
        assert_eq!(media[1].name, "board");
        assert_eq!(media[2].size, Some(1234));
    }

    #[test]
    fn polls_and_rich_embeds_become_lines() {
        let poll: Poll = serde_json::from_value(json!({
            "question": {"text": "Lunch?"},
            "answers": [{"answer_id": 1, "poll_media": {"text": "Pizza", "emoji": {"id": null, "name": "🍕"}}},
                        {"answer_id": 2, "poll_media": {"text": "Sushi"}}],
            "expiry": null, "allow_multiselect": false, "layout_type": 1}))
        .unwrap();
        assert_eq!(
            poll_lines(&poll),
            vec!["**Poll:** Lunch?", "1. 🍕 Pizza", "2. Sushi"]
        );
        let embed: Embed = serde_json::from_value(json!({
            "type": "rich", "title": "New video", "url": "https://x.y/v", "description": "Watch *now*",
            "fields": [{"name": "Length", "value": "12 min", "inline": true}],
            "author": {"name": "Channel"}, "footer": {"text": "posted by a bot"}}))
        .unwrap();
        assert_eq!(
            embed_lines(&embed),
            vec![
                "*Channel*",
                "**[New video](https://x.y/v)**",
                "Watch *now*",
                "**Length:** 12 min",
                "*posted by a bot*"
            ]
        );
        let preview: Embed = serde_json::from_value(
            json!({"type": "link", "title": "A page", "url": "https://x.y"}),
        )
        .unwrap();
        assert!(embed_lines(&preview).is_empty());
    }
}
