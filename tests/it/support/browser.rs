//! A real headless Chromium driven over the DevTools protocol, for tests of
//! the chat page: navigate, evaluate, wait for what the page shows, type,
//! take screenshots (kept under `target/screenshots/` to look at).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::WAIT;

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

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Browser {
    pub async fn launch() -> Browser {
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
        super::wait_until("chromium DevTools port", WAIT, || {
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
        let list = super::http::get(&format!("127.0.0.1:{port}"), "/json/list").await;
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

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// The rendered messages, as `[author, text]` pairs, top to bottom.
    pub async fn rows(&mut self) -> Vec<(String, String)> {
        let v = self
            .eval("JSON.stringify([...document.querySelectorAll('.msg')].map(r => [(r.querySelector('.name') || {}).textContent || '', (r.querySelector('.text') || {}).textContent || '']))")
            .await;
        serde_json::from_str(v.as_str().unwrap_or("[]")).unwrap()
    }

    pub async fn wait_rows<F: Fn(&[(String, String)]) -> bool>(
        &mut self,
        what: &str,
        cond: F,
    ) -> Vec<(String, String)> {
        let deadline = super::Deadline::after(WAIT);
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

    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        // Let fade-in animations finish: the picture is for a person to judge.
        let deadline = super::Deadline::after(WAIT);
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

impl Browser {
    /// Open `url` in the page.
    pub async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Wait until `js` evaluates to `true`.
    pub async fn wait_true(&mut self, what: &str, js: &str) {
        let deadline = super::Deadline::after(WAIT);
        while self.eval(js).await != json!(true) {
            deadline
                .step(|| format!("timed out waiting for {what} ({js})"))
                .await;
        }
    }

    /// Wait until the page's event stream is open.
    pub async fn wait_live(&mut self) {
        self.wait_true(
            "the page to connect",
            "!!document.getElementById('dot') && document.getElementById('dot').classList.contains('on')",
        )
        .await;
    }

    /// Type `text` into the element `selector`, as a keyboard would.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.focus(); return true; }})()"
            ))
            .await;
        assert_eq!(found, json!(true), "no {selector} to type into");
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Click the element `selector`.
    pub async fn click(&mut self, selector: &str) {
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.click(); return true; }})()"
            ))
            .await;
        assert_eq!(found, json!(true), "no {selector} to click");
    }

    /// Put a busy, high-contrast picture behind the (transparent) overlay, as
    /// a stream would be: what it shows must stay readable over it.
    pub async fn busy_background(&mut self) {
        self.eval(
            "document.documentElement.style.background = 'repeating-linear-gradient(135deg, #f4d03f 0 38px, #1d1d1d 38px 70px, #ffffff 70px 104px, #2e86c1 104px 140px, #c0392b 140px 176px)'",
        )
        .await;
    }
}
