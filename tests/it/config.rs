//! Configuration: every validation error names its key path, all problems are
//! reported at once, env overrides apply, and secrets never reach the output.

use crate::support::run_cli;
use jetbridge::config::Direction;
use jetbridge::platforms as config;

fn problems(toml: &str) -> Vec<String> {
    match config::from_toml_str(toml) {
        Ok(_) => panic!("expected an invalid config:\n{toml}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

fn assert_problem(toml: &str, needle: &str) {
    let p = problems(toml);
    assert!(
        p.iter().any(|x| x.contains(needle)),
        "no problem containing {needle:?} in {p:#?}"
    );
}

#[test]
fn shipped_config_is_valid() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bridges.toml")).unwrap();
    let cfg = config::from_toml_str(&text).expect("shipped bridges.toml is valid");
    assert_eq!(cfg.rooms.len(), 1);
    assert_eq!(cfg.rooms[0].name, "lobby");
    assert_eq!(
        cfg.enabled_bridges().count(),
        0,
        "the shipped config runs without secrets"
    );
    assert_eq!(cfg.nats.stream, "CHAT");
    assert_eq!(cfg.nats.max_age, std::time::Duration::from_secs(7 * 86400));
}

#[test]
fn empty_config_has_defaults() {
    let cfg = config::from_toml_str("").unwrap();
    assert_eq!(cfg.nats.url, "nats://127.0.0.1:4222");
    assert_eq!(
        cfg.nats.duplicate_window,
        std::time::Duration::from_secs(120)
    );
    assert!(cfg.http.enabled);
    assert!(cfg.rooms.is_empty());
}

#[test]
fn channels_resolve_in_both_forms() {
    let cfg = config::from_toml_str(
        r##"
[twitch]
[discord]
enabled = false
[[rooms]]
name = "lobby"
channels = ["twitch:#Streamer", { bridge = "discord", channel = "123", direction = "out", ignore_authors = ["Bot"] }]
"##,
    )
    .unwrap();
    let ch = &cfg.rooms[0].channels;
    assert_eq!(ch[0].bridge, "twitch");
    assert_eq!(ch[0].channel, "#streamer");
    assert_eq!(ch[0].direction, Direction::Both);
    assert_eq!(ch[1].direction, Direction::Out);
    assert_eq!(ch[1].rules.ignore_authors, vec!["bot"]);
    // A section without `enabled` is enabled; twitch is anonymous: warned.
    assert!(cfg.bridges["twitch"].common.enabled);
    assert!(!cfg.bridges["discord"].common.enabled);
    assert!(
        cfg.warnings.iter().any(|w| w.contains("anonymous")),
        "{:?}",
        cfg.warnings
    );
    assert!(
        cfg.warnings.iter().any(|w| w.contains("disabled")),
        "{:?}",
        cfg.warnings
    );
}

#[test]
fn named_accounts_are_bridges() {
    let cfg = config::from_toml_str(
        r##"
[bridges.acme]
platform = "slack"
enabled = false
bot_token = "xoxb-1"
[bridges.second]
platform = "twitch"
login = "bot2"
token = "x"
[[rooms]]
name = "r"
channels = ["acme:C0123", "second:#chan"]
"##,
    )
    .unwrap();
    assert_eq!(cfg.bridges["acme"].platform, "slack");
    assert_eq!(cfg.bridges["second"].platform, "twitch");
    assert_eq!(cfg.rooms[0].channels[0].bridge, "acme");
}

#[test]
fn every_validation_error_names_its_key() {
    let cases: &[(&str, &str)] = &[
        (
            r##"[[rooms]]
name = "lobby"
channels = ["slak:C1"]"##,
            r##"rooms[0].channels[0]: unknown bridge "slak" (known: twitch, discord, slack)"##,
        ),
        (
            r##"[[rooms]]
name = "lob.by"
channels = []"##,
            "rooms[0].name",
        ),
        (
            r##"[[rooms]]
name = "a"
[[rooms]]
name = "a""##,
            "rooms[1].name: duplicate room",
        ),
        (
            r##"[[rooms]]
channels = []"##,
            "rooms[0].name: missing",
        ),
        (
            r##"[[rooms]]
name = "a"
channels = ["twitch"]"##,
            r##"rooms[0].channels[0]: "twitch" is not "<bridge>:<channel>""##,
        ),
        (
            r##"[twitch]
[[rooms]]
name = "a"
channels = ["twitch:#bad.name"]"##,
            "is not a Twitch channel",
        ),
        (
            r##"[twitch]
[[rooms]]
name = "a"
channels = [{ bridge = "twitch", channel = "#a", direction = "sideways" }]"##,
            "rooms[0].channels[0].direction: expected",
        ),
        (
            r##"[twitch]
[[rooms]]
name = "a"
channels = [{ bridge = "twitch", channel = "#a", colour = "red" }]"##,
            "rooms[0].channels[0].colour: unknown key",
        ),
        (
            r##"[twitch]
[[rooms]]
name = "a"
channels = ["twitch:#a", "twitch:#A"]"##,
            "rooms[0].channels[1]: twitch:#a is already in room",
        ),
        (
            r##"[[rooms]]
name = "a"
ignore_text = ["("]"##,
            "rooms[0].ignore_text[0]: invalid regex",
        ),
        (
            r##"[[rooms]]
name = "a"
topic = "x""##,
            "rooms[0].topic: unknown key",
        ),
        (
            "[nats]\nmax_age = \"forever\"",
            "nats: invalid duration \"forever\"",
        ),
        ("[nats]\nurl = 5", "nats: invalid type"),
        ("[nats]\nsubjects = 1", "nats: unknown field `subjects`"),
        (
            "[nats]\nqueue_size = 0",
            "nats.queue_size: must be at least 1",
        ),
        ("[http]\nlisten = \"nowhere\"", "http.listen"),
        ("[twitter]", "twitter: unknown section"),
        (
            "[twitch]\nlogin = \"bot\"",
            "twitch.token: login is set but token is empty",
        ),
        ("[twitch]\nserver = \"nohost\"", "is not host:port"),
        ("[twitch]\nfavourite = 1", "unknown field `favourite`"),
        (
            "[twitch]\nformat = \"{who}: {text}\"",
            "twitch.format: unknown placeholder {who}",
        ),
        (
            "[twitch]\nlong_messages = \"wrap\"",
            "unknown variant `wrap`",
        ),
        (
            "[twitch]\nmax_parts = 0",
            "twitch.max_parts: must be at least 1",
        ),
        ("[twitch]\nplatform = \"slack\"", "twitch.platform"),
        (
            "[twitch]\nemotes = [\"bttv\", \"7tvv\"]",
            "unknown variant `7tvv`, expected one of `bttv`, `ffz`, `7tv`",
        ),
        (
            "[twitch]\nemote_api = { 7tv = \"7tv.io/v3\" }",
            "twitch.emote_api.7tv: \"7tv.io/v3\" is not an http(s) URL",
        ),
        (
            "[[rooms]]\nname = \"a\"\nhold = \"11m\"",
            "rooms[0].hold: at most 10m",
        ),
        (
            "[[rooms]]\nname = \"a\"\nhold = \"soon\"",
            "rooms[0].hold: invalid duration \"soon\"",
        ),
        (
            "[[rooms]]\nname = \"a\"\nmirror_deletes = \"yes\"",
            "rooms[0].mirror_deletes: expected true or false",
        ),
        ("[bridges.x]\nlogin = \"a\"", "bridges.x.platform: missing"),
        (
            "[bridges.x]\nplatform = \"irc\"",
            "bridges.x.platform: unknown platform \"irc\"",
        ),
        (
            "[bridges.web]\nplatform = \"twitch\"",
            "\"web\" is reserved",
        ),
        (
            r##"[discord]
enabled = false
[[rooms]]
name = "a"
channels = ["discord:general"]"##,
            "is not a Discord channel (expected a channel id of digits",
        ),
        (
            r##"[[rooms]]
name = "a"
channels = ["web:api"]"##,
            "the web surface is part of every room",
        ),
    ];
    for (toml, needle) in cases {
        assert_problem(toml, needle);
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let p = problems(
        r##"
[nats]
queue_size = 0
[[rooms]]
name = "bad name"
channels = ["nope:#x", "twitch"]
"##,
    );
    assert_eq!(p.len(), 4, "{p:#?}");
}

#[test]
fn check_exits_2_listing_every_problem_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[twitch]\nlogin = \"bot\"\ntoken = \"oauth:hunter2\"\nserver = \"x\"\n[[rooms]]\nname = \"a\"\nchannels = [\"slak:1\"]\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("rooms[0].channels[0]: unknown bridge \"slak\""),
        "{err}"
    );
    assert!(err.contains("is not host:port"), "{err}");
    assert!(!format!("{out}{err}").contains("hunter2"));
}

#[test]
fn check_redacts_secrets_from_file_and_env_and_strict_fails_on_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.toml");
    std::fs::write(
        &path,
        "[nats]\ntoken = \"natssecret\"\n[http]\napi_token = \"httpsecret\"\n[twitch]\nlogin = \"bot\"\ntoken = \"filesecret\"\n[slack]\nenabled = false\n[[rooms]]\nname = \"a\"\nchannels = [\"twitch:#a\", \"slack:C1\"]\n",
    )
    .unwrap();
    let cfg = path.to_str().unwrap();
    let env = [
        ("JETBRIDGE_SLACK__BOT_TOKEN", "xoxb-envsecret"),
        ("JETBRIDGE_TWITCH__TOKEN", "envsecret2"),
    ];
    let (code, out, err) = run_cli(&["check", "--config", cfg], &env);
    assert_eq!(code, 0, "{out}{err}");
    for secret in [
        "natssecret",
        "httpsecret",
        "filesecret",
        "envsecret",
        "xoxb-envsecret",
    ] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} leaked:\n{out}{err}"
        );
    }
    assert!(out.contains("<redacted>"), "{out}");
    assert!(out.contains("chat.a.twitch.a"), "{out}");
    assert!(out.contains("warning: rooms[0].channels[1]"), "{out}");
    let (code, _, err) = run_cli(&["check", "--strict", "--config", cfg], &env);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn env_overrides_the_file_with_double_underscore_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[nats]\nurl = \"nats://file:4222\"\n[[rooms]]\nname = \"a\"\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &["check"],
        &[
            ("JETBRIDGE_CONFIG", path.to_str().unwrap()),
            ("JETBRIDGE_NATS__URL", "nats://env:4222"),
            ("JETBRIDGE_NATS__MAX_AGE", "1h"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nats://env:4222"), "{out}");
    assert!(out.contains("max_age 1h"), "{out}");
    let (code, _, err) = run_cli(
        &["check"],
        &[
            ("JETBRIDGE_CONFIG", path.to_str().unwrap()),
            ("JETBRIDGE_NATS__MAX_AGE", "soon"),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("invalid duration \"soon\""), "{err}");
}

#[test]
fn a_missing_file_says_how_to_point_at_one() {
    let (code, _, err) = run_cli(&["check", "--config", "/nonexistent/bridges.toml"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("file not found (pass --config PATH or set JETBRIDGE_CONFIG)"),
        "{err}"
    );
}
