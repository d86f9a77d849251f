//! How a bridge turns an event into posts by default: the `format` template
//! (or the platform's default) around the rendered name and text, attachments
//! as links, fitted to the platform's limit.

use crate::event::{ChatEvent, EventKind};
use crate::render::{self, TemplateVars};

use super::Bridge;

/// The event's text (a notice's as [`notice_text`] says) with its
/// attachments' links after it.
fn text_with_links(event: &ChatEvent) -> String {
    let mut text = match event.kind {
        EventKind::Notice => notice_text(event),
        _ => event.text.clone(),
    };
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

/// How a relayed notice reads on another platform, in the common markup
/// (before the bridge's own template; docs/events.md §3.4): what happened, then the user's own
/// words. An announcement is its words under a megaphone; other types lead
/// with Twitch's line in italics.
pub fn notice_text(ev: &ChatEvent) -> String {
    let Some(n) = &ev.notice else {
        return ev.text.clone();
    };
    let said = &ev.text;
    if n.effective_type() == "announcement" {
        return if said.is_empty() {
            "📣 **Announcement**".to_string()
        } else {
            format!("📣 **Announcement:** {said}")
        };
    }
    let system = render::escape_markup(&render::single_line(&n.system_text));
    let line = if system.is_empty() {
        format!("_{}_", render::escape_markup(&n.kind))
    } else {
        format!("_{system}_")
    };
    if said.is_empty() {
        format!("{} {line}", icon(n.effective_type()))
    } else {
        format!("{} {line} {said}", icon(n.effective_type()))
    }
}

/// A mark for what kind of moment a notice is, as overlays show them.
fn icon(kind: &str) -> &'static str {
    match kind {
        "sub"
        | "resub"
        | "subgift"
        | "submysterygift"
        | "anonsubgift"
        | "anonsubmysterygift"
        | "giftpaidupgrade"
        | "anongiftpaidupgrade"
        | "primepaidupgrade"
        | "extendsub"
        | "standardpayforward"
        | "communitypayforward" => "⭐",
        "raid" => "🚀",
        "bitsbadgetier" | "onetapgiftredeemed" | "charitydonation" => "💎",
        "viewermilestone" => "🔥",
        _ => "🔔",
    }
}
