//! The chat page in a real headless Chromium (driven over the DevTools protocol):
//! messages from the send API and from Twitch appear in order, Twitch deletions
//! remove them, HTML in chat text renders as text. Screenshots are saved under
//! `target/screenshots/` to look at.

use crate::support;
use crate::support::browser::Browser;
use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::http::request;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT};
use serde_json::json;

const TOKEN: &str = "browser-token";

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
    let addr = format!("127.0.0.1:{port}");
    let jb = Jetbridge::start(
        &ConfigBuilder::new(&nats)
            .http(&addr, TOKEN)
            .section("twitch", &fake.section())
            .room(
                "lobby",
                &[r##"{ bridge = "twitch", channel = "#alpha", direction = "in" }"##],
            )
            .build(),
    );
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
