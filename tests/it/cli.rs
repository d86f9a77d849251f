//! The command line against a real nats-server: `send` then `tail`, and clear
//! errors when NATS is absent or has no JetStream.

use crate::support;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::nats::NatsServer;
use crate::support::{bin, run_cli};

fn config_for(url: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridges.toml");
    std::fs::write(
        &path,
        format!(
            "[nats]\nurl = \"{url}\"\n[[rooms]]\nname = \"lobby\"\n[[rooms]]\nname = \"other\"\n"
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap().to_string();
    (dir, p)
}

/// Run `tail` until it printed `n` lines, then stop it.
fn tail_lines(args: &[&str], n: usize) -> Vec<String> {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.len() < n {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lines.len(), n, "tail printed {lines:?}");
    lines
}

#[test]
fn send_then_tail_last_shows_the_message() {
    let nats = NatsServer::start();
    let (_dir, cfg) = config_for(&nats.url());
    for (room, text) in [
        ("lobby", "one"),
        ("other", "elsewhere"),
        ("lobby", "two"),
        ("lobby", "hi"),
    ] {
        let (code, out, err) = run_cli(&["send", room, text, "--as", "ann", "--config", &cfg], &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.starts_with("web:api:"), "{out}");
    }
    let lines = tail_lines(&["tail", "lobby", "--last", "1", "--config", &cfg], 1);
    assert!(lines[0].ends_with("[lobby] web/api ann: hi"), "{lines:?}");
    let lines = tail_lines(
        &["tail", "lobby", "--last", "2", "--json", "--config", &cfg],
        2,
    );
    let evs: Vec<jetbridge::event::ChatEvent> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        evs.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        vec!["two", "hi"]
    );
    let lines = tail_lines(&["tail", "--since", "1h", "--config", &cfg], 4);
    assert!(lines[1].contains("[other]"), "{lines:?}");
}

#[test]
fn send_rejects_unknown_rooms_and_empty_text() {
    let nats = NatsServer::start();
    let (_dir, cfg) = config_for(&nats.url());
    let (code, _, err) = run_cli(&["send", "nowhere", "x", "--config", &cfg], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown room \"nowhere\" (known: lobby, other)"),
        "{err}"
    );
    let (code, _, err) = run_cli(&["send", "lobby", "   ", "--config", &cfg], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn a_server_without_jetstream_gets_a_clear_error() {
    let nats = NatsServer::start_without_jetstream();
    let (_dir, cfg) = config_for(&nats.url());
    let (code, _, err) = run_cli(&["send", "lobby", "x", "--config", &cfg], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("nats-server -js"), "{err}");
}

#[test]
fn no_nats_server_is_a_clear_error_for_cli_commands() {
    let port = support::nats::free_port();
    let (_dir, cfg) = config_for(&format!("nats://127.0.0.1:{port}"));
    let (code, _, err) = run_cli(&["send", "lobby", "x", "--config", &cfg], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "cannot connect to NATS at nats://127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[test]
fn json_logs_are_json() {
    let port = support::nats::free_port();
    let (_dir, cfg) = config_for(&format!("nats://127.0.0.1:{port}"));
    let mut child = Command::new(bin())
        .args(["run", "--log-format", "json", "--config", &cfg])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
}

#[tokio::test]
async fn tail_prints_notices_moderation_and_kinds_it_does_not_know_readably() {
    use jetbridge::event::{Author, ChatEvent, ModAction, ModOrigin, Moderation, Notice};
    let nats = NatsServer::start();
    let (_dir, cfg) = config_for(&nats.url());
    // `send` creates the stream.
    let (code, out, err) = run_cli(
        &["send", "lobby", "hi", "--as", "ann", "--config", &cfg],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let js = support::js(&nats.url()).await;
    let ronni = Author {
        id: "1".into(),
        name: "ronni".into(),
        ..Default::default()
    };
    let mut notice = ChatEvent::notice(
        "twitch",
        "#streamer",
        "n1",
        ronni.clone(),
        "Great stream".into(),
        Notice {
            kind: "resub".into(),
            system_text: "ronni has subscribed for 6 months!".into(),
            params: Default::default(),
        },
    );
    let mut timeout = ChatEvent::moderation(
        "twitch",
        "#streamer",
        "timeout:1:1",
        Moderation {
            action: ModAction::Timeout,
            actor: None,
            user: Some(ronni),
            target: None,
            duration_s: Some(600),
            reason: None,
            origin: ModOrigin::Platform,
            results: Vec::new(),
        },
    );
    let mut future = ChatEvent::web("lobby", "bot", "x".into());
    let mut future_json: serde_json::Value = serde_json::from_slice(&future.to_json()).unwrap();
    future_json["kind"] = serde_json::json!("poll");
    for ev in [&mut notice, &mut timeout, &mut future] {
        ev.room = "lobby".into();
    }
    for (subject, payload) in [
        (notice.subject(), notice.to_json()),
        (timeout.subject(), timeout.to_json()),
        (future.subject(), serde_json::to_vec(&future_json).unwrap()),
    ] {
        js.publish(subject, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let lines = tokio::task::spawn_blocking(move || {
        tail_lines(&["tail", "lobby", "--last", "3", "--config", &cfg], 3)
    })
    .await
    .unwrap();
    assert!(
        lines[0].ends_with(
            "[lobby] twitch/#streamer (resub) ronni: ronni has subscribed for 6 months! | Great stream"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with("[lobby] twitch/#streamer moderation: timeout ronni for 600 s"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("a kind this build does not know"),
        "{lines:?}"
    );
}
