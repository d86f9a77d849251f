//! What the chat page and overlay show, each feature in a real headless
//! Chromium: the moderation hold (and `?hold=`), badges and first messages,
//! third-party emotes with zero-width ones stacked, the overlay options
//! (`size`, `font`, `theme`, `animate`, `badges`) and the message box.
//! Screenshots go to `target/screenshots/`, the overlay's over a busy picture.

use crate::support;
use crate::support::browser::Browser;
use crate::support::config::ConfigBuilder;
use crate::support::fake_emotes::FakeEmotes;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::http::request;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT};
use serde_json::{Value, json};

const TOKEN: &str = "page-token";

pub(crate) struct Page {
    _nats: NatsServer,
    pub(crate) fake: FakeTwitch,
    pub(crate) jb: Jetbridge,
    addr: String,
    pub(crate) browser: Browser,
}

/// jetbridge reading Twitch `#alpha` (room `lobby`, with `lobby_keys`) and
/// `#beta` (room `other`, with `other_keys`), sending with [`TOKEN`];
/// `twitch_keys` adds to the Twitch account.
pub(crate) async fn setup(lobby_keys: &str, other_keys: &str, twitch_keys: &str) -> Page {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // The fake's account, with the test's emote settings in place of none.
    let mut twitch = fake.section();
    if !twitch_keys.is_empty() {
        twitch = twitch.replace("emotes = []", twitch_keys);
    }
    let reads = |channel: &str| {
        format!(r#"{{ bridge = "twitch", channel = "{channel}", direction = "in" }}"#)
    };
    let jb = Jetbridge::start(
        &ConfigBuilder::new(&nats)
            .http(&addr, TOKEN)
            .section("twitch", &twitch)
            .room_with("lobby", &[&reads("#alpha")], lobby_keys)
            .room_with("other", &[&reads("#beta")], other_keys)
            .build(),
    );
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    support::wait_until("http up", WAIT, || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    let browser = Browser::launch().await;
    Page {
        _nats: nats,
        fake,
        jb,
        addr,
        browser,
    }
}

impl Page {
    /// Open room `room` with the URL options `query` and wait until it is live.
    pub(crate) async fn open(&mut self, room: &str, query: &str) {
        let url = format!("http://{}/rooms/{room}{query}", self.addr);
        self.browser.open(&url).await;
        self.browser.wait_live().await;
    }

    async fn send(&self, author: &str, text: &str) {
        let body = json!({ "text": text, "author": author }).to_string();
        let r = request(
            &self.addr,
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

    /// Press Send and wait for the page to show an error starting with `prefix`.
    async fn send_and_expect_error(&mut self, prefix: &str) {
        self.browser.click("#send-form button").await;
        self.browser
            .wait_true("the error", "!document.getElementById('send-error').hidden")
            .await;
        let error = self
            .browser
            .eval("document.getElementById('send-error').textContent")
            .await;
        assert!(error.as_str().unwrap().starts_with(prefix), "{error}");
    }

    pub(crate) async fn json(&mut self, js: &str) -> Value {
        let v = self.browser.eval(&format!("JSON.stringify({js})")).await;
        serde_json::from_str(v.as_str().unwrap_or("null")).unwrap()
    }
}

#[tokio::test]
async fn the_page_waits_out_the_hold_and_never_shows_what_was_removed_meanwhile() {
    let mut p = setup("hold = \"2s\"", "hold = \"10m\"", "").await;
    p.open("lobby", "?overlay=1").await;
    // Every row the page ever adds, with when.
    p.browser
        .eval(
            "window.__shown = []; new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes) \
             if (n.classList && n.classList.contains('msg')) window.__shown.push([n.querySelector('.text').textContent, Date.now()]); })\
             .observe(document.getElementById('log'), { childList: true })",
        )
        .await;
    let before = p.browser.eval("Date.now()").await.as_f64().unwrap();

    // Removed within the hold: a CLEARMSG, and a ban of a raider.
    let spam = p
        .fake
        .privmsg("#alpha", "spammer", "Spammer", "buy followers")
        .await;
    p.fake
        .clearmsg("#alpha", "spammer", &spam, "buy followers")
        .await;
    p.fake
        .privmsg("#alpha", "raider", "Raider", "raid line one")
        .await;
    p.fake
        .privmsg("#alpha", "raider", "Raider", "raid line two")
        .await;
    p.fake.clearchat("#alpha", "raider").await;
    p.send("Ann", "this one stays").await;

    p.browser
        .wait_true(
            "the kept message",
            "window.__shown.some(s => s[0] === 'this one stays')",
        )
        .await;
    let shown = p.json("window.__shown").await;
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), 1, "shown: {shown:?}");
    // Counted from the message's own time, which is after `before` (to the
    // millisecond).
    let at = shown[0][1].as_f64().unwrap();
    assert!(
        at + 1.0 >= before + 2000.0,
        "shown {} ms after it was sent, within the 2 s hold",
        at - before
    );
    // History on a reload is past its hold: at once, without the removed ones.
    p.open("lobby", "?overlay=1").await;
    let rows = p.browser.wait_rows("history", |r| !r.is_empty()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");

    // `?hold=0` on one overlay: a room held for 10 minutes shows at once.
    // (A room with nothing yet, in a stream with other rooms' events, is
    // live at once too.)
    p.open("other", "?overlay=1&hold=0").await;
    assert_eq!(
        p.browser.eval("document.body.dataset.hold").await,
        json!("600000")
    );
    p.fake
        .privmsg("#beta", "ann", "Ann", "no waiting on this overlay")
        .await;
    let rows = p
        .browser
        .wait_rows("the message, unheld", |r| r.len() == 1)
        .await;
    assert_eq!(rows[0].1, "no waiting on this overlay");
}

#[tokio::test]
async fn badges_and_first_messages_show_and_badges_0_hides_them() {
    let mut p = setup("", "", "").await;
    p.open("lobby", "?overlay=1").await;
    let lines = [
        (
            "streamer",
            "Streamer",
            "badges=broadcaster/1,subscriber/3012",
            "welcome in, everyone!",
        ),
        (
            "modjane",
            "ModJane",
            "badges=moderator/1,subscriber/6;color=#1E90FF",
            "keep it civil please",
        ),
        (
            "vipvic",
            "VipVic",
            "badges=vip/1,founder/0;color=#FF69B4",
            "let's go",
        ),
        (
            "newbie",
            "Newbie",
            "first-msg=1;color=#2E8B57",
            "hi, first time here!",
        ),
        (
            "helper",
            "Helper",
            "badges=bot-badge/1;color=#808080",
            "!commands lists the commands",
        ),
        (
            "tw_staff",
            "TwStaff",
            "badges=staff/1;color=#FFD700",
            "just passing by",
        ),
    ];
    for (i, (login, name, tags, text)) in lines.iter().enumerate() {
        let id = format!("b0000000-0000-4000-8000-{i:012}");
        p.fake
            .privmsg_with("#alpha", login, name, &id, text, tags)
            .await;
    }
    p.browser
        .wait_rows("six rows", |r| r.len() == lines.len())
        .await;
    let badges = p
        .json("[...document.querySelectorAll('.msg')].map(r => [...r.querySelectorAll('.badges svg')].map(s => s.dataset.badge))")
        .await;
    assert_eq!(
        badges,
        json!([
            ["broadcaster", "subscriber"],
            ["moderator", "subscriber"],
            ["vip", "founder"],
            [],
            ["bot"],
            ["staff"]
        ])
    );
    // Each badge is a drawn icon with a name, nothing loaded.
    assert_eq!(
        p.json("[...document.querySelectorAll('.badges svg')].every(s => s.querySelector('title').textContent === s.dataset.badge && s.querySelector('path'))")
            .await,
        json!(true)
    );
    let first = p
        .json("[...document.querySelectorAll('.msg.first')].map(r => [r.querySelector('.first-tag').textContent, r.querySelector('.name').textContent])")
        .await;
    assert_eq!(first, json!([["First message", "Newbie"]]));
    p.browser.busy_background().await;
    p.browser.screenshot("overlay-badges.png").await;

    p.open("lobby", "?overlay=1&badges=0").await;
    p.browser
        .wait_rows("history", |r| r.len() == lines.len())
        .await;
    assert_eq!(
        p.json("document.querySelectorAll('.badges, .msg svg').length")
            .await,
        json!(0)
    );
    assert_eq!(
        p.json("document.querySelectorAll('.msg.first').length")
            .await,
        json!(1)
    );
}

#[tokio::test]
async fn third_party_emotes_show_as_images_with_zero_width_ones_stacked() {
    let emotes = FakeEmotes::serving_images().await;
    let mut p = setup("", "", &emotes.emote_api()).await;
    p.open("lobby", "?overlay=1").await;
    // The sets arrive in the background: say their names until they show.
    let images =
        "[...document.querySelectorAll('.msg')].pop()?.querySelectorAll('img.emote').length === 3";
    let deadline = support::Deadline::after(WAIT);
    loop {
        // Counted before the probe is said: it may show before a count after.
        let shown = p.browser.rows().await.len();
        p.fake
            .privmsg("#alpha", "probe", "Probe", "monkaS peepoHey RainTime")
            .await;
        p.browser
            .wait_true(
                "the probe",
                &format!("document.querySelectorAll('.msg').length > {shown}"),
            )
            .await;
        if p.browser.eval(images).await == json!(true) {
            break;
        }
        deadline.step(|| "emotes never showed".to_string()).await;
    }

    p.fake
        .privmsg_with(
            "#alpha",
            "ronni",
            "Ronni",
            "e0000000-0000-4000-8000-000000000001",
            "good morning peepoHey RainTime and monkaS too",
            "color=#FF4500",
        )
        .await;
    p.browser
        .wait_true(
            "the message",
            "[...document.querySelectorAll('.msg .text')].some(t => t.textContent.startsWith('good morning'))",
        )
        .await;
    let last = "[...document.querySelectorAll('.msg')].pop()";
    // RainTime (zero-width) sits on peepoHey in one stack; monkaS stands alone.
    let stacks = p
        .json(&format!(
            "[...{last}.querySelectorAll('.stack')].map(s => [...s.children].map(i => i.alt))"
        ))
        .await;
    assert_eq!(stacks, json!([["peepoHey", "RainTime"]]));
    let alone = p
        .json(&format!(
            "[...{last}.querySelectorAll('.text > img.emote')].map(i => i.alt)"
        ))
        .await;
    assert_eq!(alone, json!(["monkaS"]));
    // The words around them stay text.
    assert_eq!(
        p.json(&format!("{last}.querySelector('.text').textContent"))
            .await,
        json!("good morning  and  too")
    );
    p.browser
        .wait_true(
            "the images to load",
            &format!(
                "[...{last}.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)"
            ),
        )
        .await;
    p.browser.busy_background().await;
    p.browser.screenshot("overlay-emotes.png").await;
    drop(emotes);
}

#[tokio::test]
async fn overlay_options_size_font_theme_and_animate() {
    let mut p = setup("", "", "").await;
    p.send("Ann", "plain text, default look").await;
    p.fake
        .privmsg_with(
            "#alpha",
            "ronni",
            "Ronni",
            "c0000000-0000-4000-8000-000000000001",
            "names keep their colour on either theme",
            "badges=subscriber/1;color=#DAA520",
        )
        .await;
    p.send("Zoe", "**bold** and `code` too").await;

    let font_px = "parseFloat(getComputedStyle(document.querySelector('.msg')).fontSize)";
    p.open("lobby", "?overlay=1").await;
    p.browser.wait_rows("history", |r| r.len() == 3).await;
    let normal = p.json(font_px).await.as_f64().unwrap();
    assert!(
        normal >= 19.0,
        "overlay text of {normal}px is small at 1080p"
    );
    assert_eq!(
        p.json("getComputedStyle(document.querySelector('.msg')).animationName")
            .await,
        json!("in")
    );

    p.open("lobby", "?overlay=1&size=2&font=Georgia&animate=0")
        .await;
    p.browser.wait_rows("history", |r| r.len() == 3).await;
    let big = p.json(font_px).await.as_f64().unwrap();
    assert!((big - 2.0 * normal).abs() < 0.5, "{normal} → {big}");
    assert_eq!(
        p.json("document.body.style.fontFamily").await,
        json!("Georgia, system-ui, sans-serif")
    );
    // Nothing moves: no animation ran, even for a new row.
    p.send("Ann", "and one more").await;
    p.browser.wait_rows("row 4", |r| r.len() == 4).await;
    assert_eq!(p.json("document.getAnimations().length").await, json!(0));
    p.browser.busy_background().await;
    p.browser.screenshot("overlay-size-2.png").await;

    // A font is a name, never CSS; out-of-range sizes are ignored.
    p.open(
        "lobby",
        "?overlay=1&size=40&font=x%22%3Bcolor%3Ared%3Bx%3A%22&theme=light",
    )
    .await;
    p.browser.wait_rows("history", |r| r.len() == 4).await;
    assert_eq!(p.json("document.body.style.fontFamily").await, json!(""));
    assert_eq!(p.json(font_px).await.as_f64().unwrap(), normal);
    // The light theme: dark text on light bubbles.
    assert_eq!(
        p.json("getComputedStyle(document.querySelector('.msg')).backgroundColor")
            .await,
        json!("rgba(255, 255, 255, 0.9)")
    );
    assert_eq!(
        p.json("getComputedStyle(document.querySelector('.msg .text')).color")
            .await,
        json!("rgb(14, 14, 16)")
    );
    p.browser.busy_background().await;
    p.browser.screenshot("overlay-light.png").await;
}

#[tokio::test]
async fn the_chat_page_sends_with_a_token_kept_in_the_tab_only() {
    let mut p = setup("", "", "").await;
    // The overlay never offers to send.
    p.open("lobby", "?overlay=1").await;
    assert_eq!(
        p.browser
            .eval("document.getElementById('compose').hidden")
            .await,
        json!(true)
    );

    p.open("lobby", "").await;
    let visible = |id: &str| format!("!document.getElementById('{id}').hidden");
    p.browser
        .wait_true("the token form", &visible("token-form"))
        .await;
    assert_eq!(p.browser.eval(&visible("send-form")).await, json!(false));

    // A wrong token: the API's answer is shown and the token asked again.
    p.browser.type_into("#token", "not-the-token").await;
    p.browser.click("#token-form button").await;
    p.browser
        .wait_true("the message box", &visible("send-form"))
        .await;
    p.browser.type_into("#author", "Pat").await;
    p.browser.type_into("#text", "hello from the page").await;
    p.send_and_expect_error("Not sent (401): ").await;
    assert_eq!(p.browser.eval(&visible("token-form")).await, json!(true));
    assert_eq!(
        p.browser
            .eval("sessionStorage.getItem('jetbridge.token')")
            .await,
        json!(null)
    );

    // The right one: sent, and shown once the stream brings it back.
    p.browser.type_into("#token", TOKEN).await;
    p.browser.click("#token-form button").await;
    p.browser
        .wait_true("the message box", &visible("send-form"))
        .await;
    assert_eq!(
        p.browser
            .eval("document.getElementById('text').value")
            .await,
        json!("hello from the page"),
        "the words typed survive a refused token"
    );
    p.browser.click("#send-form button").await;
    let rows = p.browser.wait_rows("the message", |r| r.len() == 1).await;
    assert_eq!(rows[0], ("Pat".into(), "hello from the page".into()));
    p.browser
        .wait_true(
            "the box to clear",
            "document.getElementById('text').value === ''",
        )
        .await;
    assert_eq!(p.browser.eval(&visible("send-error")).await, json!(false));
    // Kept for this tab only: not in the URL, a cookie or localStorage.
    assert_eq!(
        p.json("[sessionStorage.getItem('jetbridge.token'), document.cookie, location.href.includes('page-token'), Object.values(localStorage).includes('page-token')]")
            .await,
        json!([TOKEN, "", false, false])
    );

    // Too long for the API: its refusal is shown, nothing is posted.
    p.browser
        .eval("document.getElementById('text').value = 'x'.repeat(4001)")
        .await;
    p.send_and_expect_error("Not sent (413): ").await;
    p.browser
        .eval("document.getElementById('text').value = 'and a second one'")
        .await;
    p.browser.click("#send-form button").await;
    p.browser.wait_rows("row 2", |r| r.len() == 2).await;
    p.browser.screenshot("chat-compose.png").await;
    let _ = &p.jb;
}
