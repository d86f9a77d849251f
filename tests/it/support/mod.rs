//! Shared test support: the real `jetbridge` binary as a child process, reads of
//! the chat stream, and condition waits with deadlines (never fixed sleeps).

// A browser for page tests only: the benchmarks (bench/) share this code
// without its dependencies.
#[cfg(test)]
pub mod browser;
pub mod config;
pub mod fake_discord;
pub mod fake_emotes;
pub mod fake_slack;
pub mod fake_twitch;
pub mod fake_twitch_api;
pub mod http;
pub mod nats;
pub mod platform;
pub mod tempdir;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use jetbridge::event::ChatEvent;

pub const WAIT: Duration = Duration::from_secs(20);

/// The jetbridge binary: cargo's for tests; for the benchmarks (bench/), which
/// cargo gives no such path, `JB_BIN` (a wrapper under a profiler; not
/// `JETBRIDGE_…`, which the child would read as config) or
/// the release build.
pub fn bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_jetbridge") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("JB_BIN").map_or_else(
            || {
                // The workspace's target/: the root package's, or bench/'s parent.
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
                let root = if dir.join("src/main.rs").exists() {
                    dir
                } else {
                    dir.parent().map(PathBuf::from).unwrap_or(dir)
                };
                root.join("target/release/jetbridge")
            },
            PathBuf::from,
        ),
    }
}

/// A `jetbridge` process with a config written to a temp file. Its stderr (the
/// logs) is collected; it is killed on drop.
pub struct Jetbridge {
    child: Option<Child>,
    _dir: tempdir::TempDir,
    pub config: PathBuf,
    logs: Arc<Mutex<String>>,
}

impl Jetbridge {
    pub fn start(config: &str) -> Jetbridge {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Jetbridge {
        let dir = tempdir::TempDir::new();
        let path = dir.path().join("bridges.toml");
        std::fs::write(&path, config).expect("write config");
        let mut j = Jetbridge {
            child: None,
            _dir: dir,
            config: path,
            logs: Arc::new(Mutex::new(String::new())),
        };
        j.spawn(env);
        j
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info,jetbridge=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn jetbridge");
        let stderr = child.stderr.take().expect("stderr");
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.child = Some(child);
    }

    /// Start again with the same config (after a kill).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn(&[]);
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Wait until its HTTP server on `addr` says ready (`/readyz` 200).
    pub async fn wait_ready(&self, addr: &str) {
        let deadline = Deadline::after(WAIT);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && http::get(addr, "/readyz").await.status == 200
            {
                return;
            }
            deadline
                .step(|| format!("not ready\n{}", self.logs()))
                .await;
        }
    }

    /// Wait until the logs contain `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_until(&format!("log line containing {needle:?}"), timeout, || {
            self.logs().contains(needle)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", self.logs()));
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.wait_exit(Duration::from_secs(15)).await
    }

    /// SIGKILL (a crash) and wait for the exit.
    pub async fn kill9(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
        self.wait_exit(Duration::from_secs(5)).await;
    }

    async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "jetbridge did not exit\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Jetbridge {
    fn drop(&mut self) {
        // A failing test shows what the process said.
        if std::thread::panicking() {
            eprintln!("--- jetbridge logs ---\n{}", self.logs());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A deadline for polling a condition: `step` waits one poll interval, or fails
/// the test with what was awaited once the deadline has passed.
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(tokio::time::Instant::now() + timeout)
    }

    pub async fn step(&self, what: impl FnOnce() -> String) {
        assert!(
            tokio::time::Instant::now() < self.0,
            "timed out waiting: {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll `cond` until it holds or `timeout` passes.
pub async fn wait_until<F: FnMut() -> bool>(
    what: &str,
    timeout: Duration,
    mut cond: F,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run `jetbridge` with `args` to completion; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jetbridge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub async fn js(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url)
        .await
        .expect("connect to test nats");
    jetstream::new(client)
}

/// Every event stored under `filter`, in stream order.
pub async fn stored(js: &jetstream::Context, filter: &str) -> Vec<ChatEvent> {
    let Ok(stream) = js.get_stream("CHAT").await else {
        return Vec::new();
    };
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut consumer = consumer;
    let pending = consumer.info().await.expect("info").num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return out;
    }
    let mut msgs = consumer.messages().await.expect("messages");
    let mut last_seq = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), msgs.next()).await {
            Ok(Some(m)) => {
                let m = m.expect("message");
                out.push(serde_json::from_slice(&m.payload).expect("chat event"));
                let info = m.info().expect("info");
                last_seq = info.stream_sequence;
                if info.pending == 0 {
                    break;
                }
            }
            Ok(None) => break,
            // Quiet: either slow, or what was pending aged out (`max_age`) before
            // it was read. Only the stream can tell.
            Err(_) => {
                if pending_after(&stream, filter, last_seq).await == 0 {
                    break;
                }
            }
        }
    }
    out
}

/// Messages under `filter` stored after sequence `seq`.
async fn pending_after(stream: &jetstream::stream::Stream, filter: &str, seq: u64) -> u64 {
    let mut probe = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: seq + 1,
            },
            ..Default::default()
        })
        .await
        .expect("probe consumer");
    probe.info().await.expect("info").num_pending
}

/// Wait until at least `n` events are stored under `filter`; returns them all.
pub async fn wait_stored(js: &jetstream::Context, filter: &str, n: usize) -> Vec<ChatEvent> {
    let deadline = Instant::now() + WAIT;
    loop {
        let evs = stored(js, filter).await;
        if evs.len() >= n {
            return evs;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} events on {filter}; have {}: {evs:#?}",
            evs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the bridge's outbound consumer has nothing pending or unacked:
/// every stored event was handled, so anything that would be posted has been.
pub async fn wait_outbound_idle(js: &jetstream::Context, bridge: &str) {
    let name = format!("jetbridge-out-{bridge}");
    let deadline = Instant::now() + WAIT + WAIT;
    loop {
        if let Ok(stream) = js.get_stream("CHAT").await
            && let Ok(info) = stream.consumer_info(&name).await
            && info.num_pending == 0
            && info.num_ack_pending == 0
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "outbound consumer {name} never went idle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reader of `/proc/<pid>/status` fields in KiB (0 when absent).
pub fn proc_status_kib(pid: u32) -> impl Fn(&str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    move |name| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A fresh NATS and fake Twitch, and the config of room `lobby` relaying
/// Twitch `#src` and `#dst` to each other on them.
pub async fn twitch_src_dst() -> (nats::NatsServer, fake_twitch::FakeTwitch, String) {
    use platform::FakePlatform;
    let nats = nats::NatsServer::start();
    let fake = fake_twitch::FakeTwitch::start().await;
    let config = config::ConfigBuilder::new(&nats)
        .section("twitch", &fake.section())
        .room("lobby", &["twitch:#src", "twitch:#dst"])
        .build();
    (nats, fake, config)
}
