//! The HTTP surface against the real binary and a real nats-server: every status
//! code of the send API (and nothing published on a rejection), SSE replay and
//! resume, many concurrent viewers, health, readiness and metrics.

use crate::support;
use std::time::Duration;

use crate::support::http::{Sse, get, request};
use crate::support::nats::{NatsServer, free_port};
use crate::support::{Jetbridge, WAIT, js, stored, wait_stored};

const TOKEN: &str = "t0ken-for-tests";

fn config(nats_url: &str, port: u16, token: &str, extra: &str) -> String {
    format!(
        r#"
[nats]
url = "{nats_url}"
{extra}
[http]
listen = "127.0.0.1:{port}"
api_token = "{token}"
[[rooms]]
name = "lobby"
[[rooms]]
name = "other"
"#
    )
}

async fn start(nats: &NatsServer, token: &str) -> (Jetbridge, String) {
    let port = free_port();
    let jb = Jetbridge::start(&config(&nats.url(), port, token, ""));
    let addr = format!("127.0.0.1:{port}");
    jb.wait_ready(&addr).await;
    (jb, addr)
}

async fn post(addr: &str, room: &str, auth: Option<&str>, body: &str) -> support::http::Response {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    request(
        addr,
        "POST",
        &format!("/rooms/{room}/messages"),
        &headers,
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn send_api_status_codes_and_nothing_published_on_rejection() {
    let nats = NatsServer::start();
    let (_jb, addr) = start(&nats, TOKEN).await;
    let long = format!(r#"{{"text": "{}"}}"#, "é".repeat(4001));
    let huge = format!(r#"{{"text": "{}"}}"#, "x".repeat(5 * 1024 * 1024));
    let cases: Vec<(Option<&str>, &str, &str, u16)> = vec![
        (None, "lobby", r#"{"text":"hi"}"#, 401),
        (Some("wrong"), "lobby", r#"{"text":"hi"}"#, 401),
        (Some(TOKEN), "nowhere", r#"{"text":"hi"}"#, 404),
        (Some(TOKEN), "lobby", "{not json", 400),
        (Some(TOKEN), "lobby", r#"{"author":"ann"}"#, 400),
        (Some(TOKEN), "lobby", r#"{"text":"  \n\t "}"#, 400),
        (Some(TOKEN), "lobby", r#"{"text": 5}"#, 400),
        (Some(TOKEN), "lobby", &long, 413),
        // A JSON object only: serde would read a struct from a list by position.
        (Some(TOKEN), "lobby", r#"["hello", "Ann"]"#, 400),
        (Some(TOKEN), "lobby", "42", 400),
        (Some(TOKEN), "lobby", r#""hello""#, 400),
        (
            Some(TOKEN),
            "lobby",
            r#"{"text": "hi", "colour": "red"}"#,
            400,
        ),
        (Some(TOKEN), "lobby", &huge, 413),
    ];
    for (auth, room, body, want) in &cases {
        let r = post(&addr, room, *auth, body).await;
        assert_eq!(r.status, *want, "{auth:?} {room} {body:.60}: {}", r.body);
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            r.body
        );
    }
    // Every refusal of the HTTP surface is JSON, query strings included.
    for path in [
        "/rooms/lobby/events?last=abc",
        "/rooms/lobby/events?since=-1",
        "/no/such/page",
    ] {
        let r = get(&addr, path).await;
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert!(r.json()["error"].is_string(), "{path}: {}", r.body);
    }
    let r = request(&addr, "DELETE", "/rooms/lobby/messages", &[], b"").await;
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string(), "{}", r.body);
    let js = js(&nats.url()).await;
    assert!(
        stored(&js, "chat.>").await.is_empty(),
        "a rejected request published something"
    );

    // Exactly 4,000 characters is accepted, and the auth scheme's case does not
    // matter.
    let ok = format!(
        r#"{{"text": "{}", "author": "Ann\r\nBob"}}"#,
        "é".repeat(4000)
    );
    let auth = format!("bearer {TOKEN}");
    let r = request(
        &addr,
        "POST",
        "/rooms/lobby/messages",
        &[
            ("Content-Type", "application/json"),
            ("authorization", &auth),
        ],
        ok.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("web:api:"));
    assert_eq!(v["seq"].as_u64(), Some(1));
    let evs = wait_stored(&js, "chat.lobby.web.api", 1).await;
    assert_eq!(evs[0].id, id);
    assert_eq!(evs[0].author.as_ref().unwrap().name, "Ann Bob");
}

#[tokio::test]
async fn sending_disabled_is_403_whatever_the_token() {
    let nats = NatsServer::start();
    let (_jb, addr) = start(&nats, "").await;
    for auth in [None, Some(""), Some("anything")] {
        let r = post(&addr, "lobby", auth, r#"{"text":"hi"}"#).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains("api_token"));
    }
    // The page knows, and offers no message box.
    let page = get(&addr, "/rooms/lobby").await;
    assert!(page.body.contains("data-send=\"0\""), "{}", page.body);
}

#[tokio::test]
async fn sse_replays_last_n_then_live_and_resumes_after_last_event_id() {
    let nats = NatsServer::start();
    let (_jb, addr) = start(&nats, TOKEN).await;
    let mut seqs = Vec::new();
    for i in 1..=5 {
        let r = post(
            &addr,
            "lobby",
            Some(TOKEN),
            &format!(r#"{{"text":"m{i}"}}"#),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        seqs.push(r.json()["seq"].as_u64().unwrap());
        // Another room's events never show in lobby's stream.
        post(&addr, "other", Some(TOKEN), r#"{"text":"elsewhere"}"#).await;
    }
    let text = |e: &support::http::SseEvent| -> String {
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        v["text"].as_str().unwrap().to_string()
    };

    let mut sse = Sse::open(&addr, "/rooms/lobby/events?last=2", &[]).await;
    assert_eq!(sse.status, 200);
    let a = sse.next(WAIT).await.unwrap();
    let b = sse.next(WAIT).await.unwrap();
    assert_eq!((text(&a), text(&b)), ("m4".into(), "m5".into()));
    assert_eq!(a.id.as_deref(), Some(seqs[3].to_string().as_str()));
    assert_eq!(a.event, "message");
    // Then live.
    post(&addr, "lobby", Some(TOKEN), r#"{"text":"live"}"#).await;
    let c = sse.next(WAIT).await.unwrap();
    assert_eq!(text(&c), "live");

    // Resume after the third: exactly the later ones, in order.
    let third = seqs[2].to_string();
    let mut resumed = Sse::open(&addr, "/rooms/lobby/events", &[("Last-Event-ID", &third)]).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(text(&resumed.next(WAIT).await.unwrap()));
    }
    assert_eq!(got, vec!["m4", "m5", "live"]);
    let mut since = Sse::open(
        &addr,
        &format!("/rooms/lobby/events?since={}", seqs[3]),
        &[],
    )
    .await;
    assert_eq!(text(&since.next(WAIT).await.unwrap()), "m5");

    let missing = Sse::open(&addr, "/rooms/nowhere/events", &[]).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn sse_says_gap_when_the_resume_point_aged_out() {
    let nats = NatsServer::start();
    let port = free_port();
    let jb = Jetbridge::start(&config(
        &nats.url(),
        port,
        TOKEN,
        "max_age = \"1s\"\nduplicate_window = \"500ms\"",
    ));
    let addr = format!("127.0.0.1:{port}");
    jb.wait_ready(&addr).await;
    for i in 0..3 {
        post(
            &addr,
            "lobby",
            Some(TOKEN),
            &format!(r#"{{"text":"old{i}"}}"#),
        )
        .await;
    }
    let js = js(&nats.url()).await;
    let deadline = support::Deadline::after(WAIT);
    while !stored(&js, "chat.>").await.is_empty() {
        deadline.step(|| "events never aged out".to_string()).await;
    }
    let r = post(&addr, "lobby", Some(TOKEN), r#"{"text":"new"}"#).await;
    assert_eq!(r.json()["seq"].as_u64(), Some(4));
    let mut sse = Sse::open(&addr, "/rooms/lobby/events?since=1", &[]).await;
    let gap = sse.next(WAIT).await.unwrap();
    assert_eq!(gap.event, "gap", "{gap:?}");
    let v: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(v["after"], 1);
    let next = sse.next(WAIT).await.unwrap();
    assert_eq!(next.id.as_deref(), Some("4"));
}

#[tokio::test]
async fn two_hundred_viewers_get_a_burst_of_1000_in_order() {
    let nats = NatsServer::start();
    let (jb, addr) = start(&nats, TOKEN).await;
    let mut viewers = Vec::new();
    for _ in 0..200 {
        viewers.push(Sse::open(&addr, "/rooms/lobby/events?last=0", &[]).await);
    }
    // Publish straight to JetStream, as fast as it takes them.
    let js = js(&nats.url()).await;
    let mut acks = Vec::new();
    for i in 0..1000 {
        let ev = jetbridge::event::ChatEvent::web("lobby", "load", format!("burst {i}"));
        acks.push(js.publish(ev.subject(), ev.to_json().into()).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    let mut tasks = Vec::new();
    for mut v in viewers {
        tasks.push(tokio::spawn(async move {
            let mut last = 0u64;
            for i in 0..1000 {
                let e = v.next(Duration::from_secs(60)).await.expect("event");
                let seq: u64 = e.id.unwrap().parse().unwrap();
                assert!(seq > last, "out of order: {seq} after {last}");
                last = seq;
                assert!(e.data.contains(&format!("\"burst {i}\"")), "{}", e.data);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    }
}

#[tokio::test]
async fn health_readiness_metrics_and_pages() {
    let nats = NatsServer::start();
    let (jb, addr) = start(&nats, TOKEN).await;
    assert_eq!(get(&addr, "/healthz").await.status, 200);
    let ready = get(&addr, "/readyz").await;
    assert_eq!(ready.status, 200);
    let body = ready.json();
    assert_eq!(body["nats"], "connected");
    assert_eq!(body["bridges"], serde_json::json!({"web": "connected"}));
    assert!(body["silent_s"]["web"].is_u64(), "{body}");

    for i in 0..3 {
        assert_eq!(
            post(
                &addr,
                "lobby",
                Some(TOKEN),
                &format!(r#"{{"text":"n{i}"}}"#)
            )
            .await
            .status,
            201
        );
    }
    let metrics = get(&addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let samples = parse_prometheus(&metrics.body);
    let sent = samples
        .iter()
        .find(|(name, labels, _)| {
            name == "jetbridge_messages_in_total"
                && labels.contains("bridge=\"web\"")
                && labels.contains("room=\"lobby\"")
        })
        .unwrap_or_else(|| panic!("no web counter in\n{}", metrics.body));
    assert_eq!(sent.2, 3.0);
    assert!(
        samples.iter().any(
            |(name, labels, _)| name == "jetbridge_bridge_silent_seconds"
                && labels.contains("bridge=\"web\"")
        ),
        "no silence gauge in\n{}",
        metrics.body
    );

    // The container health check command.
    let cfg = jb.config.to_str().unwrap().to_string();
    let (code, _, err) = support::run_cli(&["health", "--config", &cfg], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = support::run_cli(
        &["health", "--addr", &format!("127.0.0.1:{}", free_port())],
        &[("JETBRIDGE_CONFIG", &cfg)],
    );
    assert_eq!(code, 1);
    assert!(err.contains("unhealthy"), "{err}");

    let index = get(&addr, "/").await;
    assert!(
        index.body.contains("href=\"/rooms/lobby\"")
            && index.body.contains("href=\"/rooms/other\"")
    );
    let page = get(&addr, "/rooms/lobby").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-room=\"lobby\""));
    assert!(page.body.contains("data-send=\"1\""));
    assert!(page.body.contains("data-hold=\"0\""));
    // No inline script or style can run: the page's own come from /assets.
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(!page.body.contains("<script>") && !page.body.contains("<style"));
    for (asset, kind) in [("chat.js", "text/javascript"), ("chat.css", "text/css")] {
        let r = get(&addr, &format!("/assets/{asset}")).await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.header("content-type").unwrap().starts_with(kind));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    assert_eq!(get(&addr, "/assets/../Cargo.toml").await.status, 404);
    assert_eq!(get(&addr, "/assets/secret.js").await.status, 404);
    let missing = get(&addr, "/rooms/%3Cscript%3E").await;
    assert_eq!(missing.status, 404);
    assert!(!missing.body.contains("<script>"), "{}", missing.body);
}

#[tokio::test]
async fn readyz_is_503_naming_nats_while_it_is_down() {
    let port = free_port();
    let dead_nats = format!("nats://127.0.0.1:{}", free_port());
    let jb = Jetbridge::start(&config(&dead_nats, port, TOKEN, ""));
    let addr = format!("127.0.0.1:{port}");
    support::wait_until("http up", WAIT, || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    let r = get(&addr, "/readyz").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["nats"].as_str().unwrap().starts_with("connecting"),
        "{}",
        r.body
    );
    // Sending while NATS is away is refused, not silently lost.
    let s = post(&addr, "lobby", Some(TOKEN), r#"{"text":"x"}"#).await;
    assert_eq!(s.status, 503, "{}", s.body);
}

/// Prometheus text → (name, labels, value); panics on a malformed line.
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                assert!(l.ends_with('}'), "bad labels in {line:?}");
                (n.to_string(), l.to_string())
            }
            None => (series.to_string(), String::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name {name:?}"
        );
        out.push((name, labels, value));
    }
    out
}
