//! The chat page in a real headless Chromium (driven over the DevTools protocol):
//! messages from the send API and from Twitch appear in order, Twitch deletions
//! remove them, HTML in chat text renders as text. Screenshots are saved under
//! `target/screenshots/` to look at.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::fake_twitch::FakeTwitch;
use support::http::{get, request};
use support::nats::{NatsServer, free_port};
use support::{Jetbridge, WAIT};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "browser-token";

fn chromium() -> PathBuf {
    if let Ok(p) = std::env::var("CHROMIUM_BIN") {
        return p.into();
    }
    for p in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("no Chromium: scripts/test installs it (apt-get install chromium), or set CHROMIUM_BIN");
}

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Browser {
    async fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=520,640",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Chromium writes its DevTools port to this file once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        support::wait_until("chromium DevTools port", WAIT, || {
            std::fs::read_to_string(&port_file).is_ok_and(|s| s.lines().count() >= 2)
        })
        .await
        .unwrap();
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        let list = get(&format!("127.0.0.1:{port}"), "/json/list").await;
        let targets: Vec<Value> = serde_json::from_str(&list.body).unwrap();
        let page = targets
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("devtools websocket");
        Browser {
            child,
            _profile: profile,
            ws,
            next_id: 1,
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::text(msg)).await.unwrap();
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("devtools answer")
                .expect("devtools open")
                .unwrap();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// The rendered messages, as `[author, text]` pairs, top to bottom.
    async fn rows(&mut self) -> Vec<(String, String)> {
        let v = self
            .eval("JSON.stringify([...document.querySelectorAll('.msg')].map(r => [r.querySelector('.name').textContent, r.querySelector('.text').textContent]))")
            .await;
        serde_json::from_str(v.as_str().unwrap_or("[]")).unwrap()
    }

    async fn wait_rows<F: Fn(&[(String, String)]) -> bool>(
        &mut self,
        what: &str,
        cond: F,
    ) -> Vec<(String, String)> {
        let deadline = support::Deadline::after(WAIT);
        loop {
            let rows = self.rows().await;
            if cond(&rows) {
                return rows;
            }
            deadline
                .step(|| format!("timed out waiting for {what}; page shows {rows:#?}"))
                .await;
        }
    }

    async fn screenshot(&mut self, name: &str) -> PathBuf {
        // Let fade-in animations finish: the picture is for a person to judge.
        let deadline = support::Deadline::after(WAIT);
        while self
            .eval("document.getAnimations().every(a => a.playState === 'finished')")
            .await
            != json!(true)
        {
            deadline
                .step(|| "animations never finished".to_string())
                .await;
        }
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(addr: &str, author: &str, text: &str) {
    let body = json!({ "text": text, "author": author }).to_string();
    let r = request(
        addr,
        "POST",
        "/rooms/lobby/messages",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn overlay_shows_messages_in_order_applies_deletes_and_never_runs_chat_html() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let port = free_port();
    let jb = Jetbridge::start(&format!(
        r##"
[nats]
url = "{nats}"
[http]
listen = "127.0.0.1:{port}"
api_token = "{TOKEN}"
[twitch]
server = "{server}"
tls = false
emotes = []
[[rooms]]
name = "lobby"
channels = [{{ bridge = "twitch", channel = "#alpha", direction = "in" }}]
"##,
        nats = nats.url(),
        server = fake.server()
    ));
    let addr = format!("127.0.0.1:{port}");
    fake.wait_joined(&["#alpha"], WAIT).await;
    support::wait_until("http up", WAIT, || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));

    let mut browser = Browser::launch().await;
    browser
        .call(
            "Page.navigate",
            json!({ "url": format!("http://{addr}/rooms/lobby?overlay=1") }),
        )
        .await;
    browser.wait_rows("the page to connect", |_| true).await;
    let connected = async {
        let deadline = support::Deadline::after(WAIT);
        loop {
            let on = browser
                .eval("document.getElementById('dot').classList.contains('on')")
                .await;
            if on == json!(true) {
                break;
            }
            deadline.step(|| "page never connected".to_string()).await;
        }
    };
    connected.await;

    // The web API and Twitch are two paths into the stream: wait for each row
    // so that the stream order is the order sent here.
    send(&addr, "Ann", "hello from the **web**").await;
    browser.wait_rows("row 1", |r| r.len() == 1).await;
    fake.privmsg("#alpha", "ronni", "Ronni", "hi from twitch")
        .await;
    let doomed = fake
        .privmsg("#alpha", "ronni", "Ronni", "this gets deleted")
        .await;
    browser.wait_rows("row 3", |r| r.len() == 3).await;
    let xss = r#"<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"#;
    send(&addr, "Mallory", xss).await;
    browser.wait_rows("row 4", |r| r.len() == 4).await;
    fake.privmsg("#alpha", "spammer", "Spammer", "buy followers")
        .await;
    fake.privmsg("#alpha", "spammer", "Spammer", "cheap").await;
    browser.wait_rows("row 6", |r| r.len() == 6).await;
    send(
        &addr,
        "Zoe",
        "see [the docs](https://example.org/docs) and javascript:alert(1)",
    )
    .await;

    let rows = browser.wait_rows("7 messages", |r| r.len() == 7).await;
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "hello from the web",
            "hi from twitch",
            "this gets deleted",
            "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>",
            "buy followers",
            "cheap",
            "see the docs and javascript:alert(1)",
        ]
    );
    assert_eq!(rows[0].0, "Ann");
    assert_eq!(rows[1].0, "Ronni");
    // Chat HTML is text: no element, no script ran.
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.text img, .text script').length")
            .await,
        json!(0)
    );
    assert_eq!(
        browser.eval("window.__xss === undefined").await,
        json!(true)
    );
    // Only http(s) links become links.
    assert_eq!(
        browser
            .eval("JSON.stringify([...document.querySelectorAll('.text a')].map(a => a.href))")
            .await,
        json!("[\"https://example.org/docs\"]")
    );
    browser.screenshot("overlay-before-deletes.png").await;

    // A moderator deletes one message, then bans the spammer.
    fake.clearmsg("#alpha", "ronni", &doomed, "this gets deleted")
        .await;
    fake.clearchat("#alpha", "spammer").await;
    let rows = browser
        .wait_rows("the deleted and banned messages to go", |r| r.len() == 4)
        .await;
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts[0], "hello from the web");
    assert_eq!(texts[1], "hi from twitch");
    assert!(
        !texts.contains(&"this gets deleted") && !texts.contains(&"cheap"),
        "{texts:?}"
    );
    let shot = browser.screenshot("overlay.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // The full page (not overlay) for a look too.
    browser
        .call(
            "Page.navigate",
            json!({ "url": format!("http://{addr}/rooms/lobby") }),
        )
        .await;
    browser
        .wait_rows("history on reload", |r| r.len() == 4)
        .await;
    browser.screenshot("chat.png").await;
}
