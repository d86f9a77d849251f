//! How a bridge turns an event into posts by default: the `format` template
//! (or the platform's default) around the rendered name and text, attachments
//! as links, fitted to the platform's limit.

use crate::event::ChatEvent;
use crate::render::{self, TemplateVars};

use super::Bridge;

/// The event's text with its attachments' links after it.
fn text_with_links(event: &ChatEvent) -> String {
    let mut text = event.text.clone();
    for a in &event.attachments {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&a.url);
    }
    text
}

/// The text alone (attachments as links), rendered and fitted: for posts whose
/// poster already shows the author (a Discord webhook, a Slack custom name).
pub fn render_text_only<B: Bridge + ?Sized>(b: &B, event: &ChatEvent) -> Vec<String> {
    let common = b.common();
    render::fit(
        &b.render_text(&text_with_links(event)),
        b.spec().max_chars,
        common.long_messages,
        common.max_parts,
        |t: &str| t.to_string(),
    )
}

/// The template (`format`, or the platform's default) filled with the rendered
/// name and text, attachments as links, fitted to the platform's limit.
pub fn default_render<B: Bridge + ?Sized>(b: &B, event: &ChatEvent, channel: &str) -> Vec<String> {
    let spec = b.spec();
    let common = b.common();
    let template = if common.format.is_empty() {
        spec.default_format
    } else {
        common.format.as_str()
    };
    let name = b.render_name(event.author_name());
    let text = b.render_text(&text_with_links(event));
    let bridge = b.render_name(&event.source.bridge);
    let wrap = |t: &str| {
        render::apply_template(
            template,
            &TemplateVars {
                name: &name,
                bridge: &bridge,
                channel,
                text: t,
            },
        )
    };
    render::fit(
        &text,
        spec.max_chars,
        common.long_messages,
        common.max_parts,
        wrap,
    )
}
