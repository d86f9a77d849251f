//! Hostile input, generated: IRC lines through twitch-irc's parser into events,
//! any text through every platform's rendering, splitting, subjects and config
//! parsing. Properties: never panic, never emit a live mention or a line break
//! where it would act, never cut inside a character or grapheme, keep every
//! post within the platform's limit, always produce valid subjects and JSON.
//!
//! (`cargo fuzz` needs a nightly toolchain, which this project's machines do
//! not have; these run in CI with a bounded, seeded number of cases.)

use std::sync::Arc;

use jetbridge::bridge::Bridge;
use jetbridge::platforms as registry;

use jetbridge::event::{self, Author, ChatEvent};
use jetbridge::render;
use proptest::prelude::*;
use unicode_segmentation::UnicodeSegmentation;

/// Text made of pieces that have meaning somewhere: mentions of every platform,
/// commands, markup, line breaks, entities, combining marks, ZWJ sequences.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("@everyone".to_string()),
        Just("@here".to_string()),
        Just("@Everyone".to_string()),
        Just("<!channel>".to_string()),
        Just("<!here|here>".to_string()),
        Just("<@U0123>".to_string()),
        Just("<@&123>".to_string()),
        Just("<#C01|x>".to_string()),
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\u{0}".to_string()),
        Just("/ban ronni".to_string()),
        Just(".clear".to_string()),
        Just("**".to_string()),
        Just("*".to_string()),
        Just("_".to_string()),
        Just("`".to_string()),
        Just("\\".to_string()),
        Just("||".to_string()),
        Just("> ".to_string()),
        Just("# ".to_string()),
        Just("[a](javascript:alert(1))".to_string()),
        Just("[b](https://x.y/|<>)".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("&amp;".to_string()),
        Just("&".to_string()),
        Just("e\u{301}".to_string()),
        Just("👨\u{200D}👩\u{200D}👧".to_string()),
        Just("\u{200B}".to_string()),
        "[a-zA-Z0-9 ]{0,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

fn bridges() -> Vec<Arc<dyn Bridge>> {
    let cfg = registry::from_toml_str(
        r#"
[twitch]
login = "bot"
token = "t"
[discord]
token = "d"
webhooks = false
[bridges.hooked]
platform = "discord"
token = "d"
[slack]
app_token = "xapp-1"
bot_token = "xoxb-1"
"#,
    )
    .expect("valid config");
    cfg.bridges
        .values()
        .map(|b| registry::build(b, &cfg).expect("bridge builds"))
        .collect()
}

fn event_with(text: String, name: String) -> ChatEvent {
    let mut ev = ChatEvent::message(
        "twitch",
        "#chan",
        "id-1",
        Author {
            id: "1".into(),
            name,
            ..Default::default()
        },
        text,
    );
    ev.room = "lobby".into();
    ev
}

/// No grapheme is cut between two consecutive posts.
fn cut_inside_grapheme(parts: &[String]) -> bool {
    parts.iter().any(|p| {
        let first = p.graphemes(true).next().unwrap_or("");
        first.starts_with('\u{301}') || first.starts_with('\u{200D}') || p.ends_with('\u{200D}')
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rendering_never_pings_breaks_lines_or_overflows(text in hostile_text(), name in hostile_text()) {
        for bridge in bridges() {
            let ev = event_with(text.clone(), name.clone());
            let limit = bridge.spec().max_chars;
            let parts = bridge.render(&ev, "chan");
            prop_assert!(parts.len() <= 3, "{} parts", parts.len());
            for p in &parts {
                prop_assert!(render::char_len(p) <= limit, "{}: {} > {limit}", bridge.name(), render::char_len(p));
                match bridge.name() {
                    "twitch" => {
                        prop_assert!(!p.chars().any(char::is_control), "control character in {p:?}");
                    }
                    "discord" | "hooked" => {
                        let lower = p.to_lowercase();
                        prop_assert!(!lower.contains("@everyone") && !lower.contains("@here"), "live mention in {p:?}");
                        // Every '<' is escaped, so no <@id>, <#id>, <@&id>.
                        for (i, _) in p.match_indices('<') {
                            prop_assert!(i > 0 && p.as_bytes()[i - 1] == b'\\', "raw < in {p:?}");
                        }
                    }
                    "slack" => {
                        prop_assert!(!p.contains("<!") && !p.contains("<@") && !p.contains("<#"), "live mention in {p:?}");
                    }
                    other => prop_assert!(false, "unexpected bridge {other}"),
                }
            }
            prop_assert!(!cut_inside_grapheme(&parts), "cut inside a grapheme: {parts:?}");
        }
    }

    #[test]
    fn split_keeps_every_character_within_budget(text in hostile_text(), budget in 1usize..80) {
        let parts = render::split(&text, budget);
        for p in &parts {
            prop_assert!(render::char_len(p) <= budget);
            prop_assert!(!p.is_empty());
        }
        // Nothing but white space is lost.
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        prop_assert_eq!(squash(&parts.concat()), squash(&text));
    }

    #[test]
    fn subjects_are_always_four_valid_tokens(channel in any::<String>(), room in "[A-Za-z0-9_-]{1,16}") {
        let s = event::subject(&room, "twitch", &channel);
        let tokens: Vec<&str> = s.split('.').collect();
        prop_assert_eq!(tokens.len(), 4);
        for t in tokens {
            prop_assert!(!t.is_empty());
            prop_assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{s}");
        }
    }

    #[test]
    fn irc_lines_become_valid_events_or_are_refused(
        text in "[^\r\n\u{0}]{0,600}",
        display in "[A-Za-z0-9_]{1,25}",
        channel in "[a-z0-9_]{1,25}",
        tags in prop::collection::vec(("[a-z-]{1,12}", "[^ ;\r\n\u{0}]{0,20}"), 0..6),
    ) {
        let extra: String = tags.iter().map(|(k, v)| format!("{k}={v};")).collect();
        let line = format!(
            "@{extra}badge-info=;badges=;color=#FF0000;display-name={display};emotes=;id=abc-123;room-id=1;tmi-sent-ts=1700000000000;user-id=42 :{l}!{l}@{l}.tmi.twitch.tv PRIVMSG #{channel} :{text}",
            l = display.to_lowercase()
        );
        // A line that does not parse is rejected, not passed: proptest fails
        // the test when too many are, so a generator that stopped making
        // valid lines cannot go unnoticed.
        let irc = twitch_irc::message::IRCMessage::parse(&line);
        prop_assume!(irc.is_ok(), "not an IRC line: {:?}", line);
        let parsed = twitch_irc::message::ServerMessage::try_from(irc.unwrap());
        let Ok(twitch_irc::message::ServerMessage::Privmsg(m)) = parsed else {
            prop_assume!(false, "not a PRIVMSG: {:?}", line);
            unreachable!()
        };
        let mut ev = jetbridge::platforms::twitch::privmsg_to_event("twitch", &m);
        ev.room = "lobby".into();
        let json = ev.to_json();
        prop_assert!(std::str::from_utf8(&json).is_ok());
        let back: ChatEvent = serde_json::from_slice(&json).expect("round trip");
        prop_assert_eq!(back.id, ev.id.clone());
        prop_assert_eq!(ev.subject().split('.').count(), 4);
        // The stored text shows exactly what was said.
        prop_assert_eq!(render::markup_to_plain(&ev.text), m.message_text.clone());
    }

    #[test]
    fn config_parsing_never_panics(lines in prop::collection::vec(
        prop_oneof![
            Just("[nats]".to_string()), Just("[http]".to_string()), Just("[twitch]".to_string()),
            Just("[[rooms]]".to_string()), Just("[bridges.x]".to_string()),
            "[a-z_]{1,12} = \"[^\"\\\\\n]{0,12}\"",
            "[a-z_]{1,12} = [0-9]{1,4}",
            "[a-z_]{1,12} = (true|false)",
            "channels = \\[\"[a-z]{1,6}:[#a-zA-Z0-9]{0,8}\"\\]",
            "name = \"[^\"\\\\\n]{0,10}\"",
        ],
        0..20,
    )) {
        let text = lines.join("\n");
        match registry::from_toml_str(&text) {
            Ok(cfg) => {
                for r in &cfg.rooms {
                    prop_assert!(jetbridge::config::is_valid_name(&r.name));
                }
            }
            Err(e) => prop_assert!(!e.problems.is_empty()),
        }
    }
}
