//! Attachments that keep working: a Discord file whose signed URL has expired,
//! and a Slack file whose URL needs the bot token, can both be opened by a
//! viewer on the other platform, through the link jetbridge posts.

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::{FakeSlack, message};
use crate::support::http::get;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT};
use serde_json::json;

const DCH: &str = "111111111111111111";
const SCH: &str = "C0001";

struct Setup {
    nats: NatsServer,
    discord: FakeDiscord,
    slack: FakeSlack,
    _jb: Jetbridge,
    http: String,
}

async fn setup() -> Setup {
    let nats = NatsServer::start();
    let discord = <FakeDiscord as FakePlatform>::start().await;
    let slack = <FakeSlack as FakePlatform>::start().await;
    let http = format!("127.0.0.1:{}", free_port());
    let config = ConfigBuilder::new(&nats)
        .http(&http, "")
        .http_key(&format!("public_url = \"http://{http}\""))
        .section("discord", &discord.section())
        .section("slack", &slack.section())
        .room(
            "lobby",
            &[&format!("discord:{DCH}"), &format!("slack:{SCH}")],
        )
        .build();
    let jb = Jetbridge::start(&config);
    jb.wait_ready(&http).await;
    Setup {
        nats,
        discord,
        slack,
        _jb: jb,
        http,
    }
}

/// The first `http://…/media/…` link in `text`, split into address and path.
fn media_link(text: &str, http: &str) -> String {
    let start = text
        .find(&format!("http://{http}/media/"))
        .unwrap_or_else(|| panic!("no media link in {text:?}"));
    let link = text[start..]
        .split(|c: char| c.is_whitespace() || c == '>' || c == '|')
        .next()
        .unwrap();
    link.trim_start_matches(&format!("http://{http}"))
        .to_string()
}

/// `host:port` and path of an absolute http URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    (host.to_string(), path.to_string())
}

#[tokio::test]
async fn a_discord_file_whose_url_expired_opens_for_a_slack_viewer() {
    let s = setup().await;
    let file = s
        .discord
        .attachment(DCH, "cat.png", b"PNG-BYTES-DISCORD", true);
    // Signed and already expired: as a copy linking to it would be tomorrow.
    let (host, path) = split_url(file["url"].as_str().unwrap());
    assert_eq!(get(&host, &path).await.status, 404);
    s.discord
        .user_message(DCH, "444", "Ann", "look", json!({ "attachments": [file] }))
        .await;
    let posts = FakePlatform::wait_posts(&s.slack, SCH, 1, WAIT).await;
    assert!(posts[0].text.contains("look"), "{posts:?}");
    let link = media_link(&posts[0].text, &s.http);
    // The link sends the viewer to a freshly signed URL that works.
    let r = get(&s.http, &link).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let fresh = r.header("location").expect("a location").to_string();
    let (host, path) = split_url(&fresh);
    let file = get(&host, &path).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, "PNG-BYTES-DISCORD");
    // A link nobody was given finds nothing.
    let r = get(&s.http, "/media/01jzzzzzzzzzzzzzzzzzzzzzzz").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn a_media_link_asked_for_while_nats_is_down_is_unavailable_not_missing() {
    let mut s = setup().await;
    let file = s.discord.attachment(DCH, "cat.png", b"PNG-BYTES", false);
    s.discord
        .user_message(DCH, "445", "Ann", "look", json!({ "attachments": [file] }))
        .await;
    let posts = FakePlatform::wait_posts(&s.slack, SCH, 1, WAIT).await;
    let link = media_link(&posts[0].text, &s.http);
    assert_eq!(get(&s.http, &link).await.status, 302);
    s.nats.stop();
    let r = get(&s.http, &link).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("try again"));
    s.nats.restart();
    let deadline = crate::support::Deadline::after(WAIT * 2);
    loop {
        let r = get(&s.http, &link).await;
        if r.status == 302 {
            break;
        }
        deadline
            .step(|| format!("the link to open again once NATS is back; got {}", r.status))
            .await;
    }
}

#[tokio::test]
async fn a_slack_file_opens_for_a_discord_viewer_without_the_token() {
    let s = setup().await;
    let file = s
        .slack
        .add_file("F0001", "cat.png", "image/png", b"PNG-BYTES-SLACK");
    // Without the bot token Slack sends a viewer to its sign-in page.
    let (host, path) = split_url(&s.slack.file_url("F0001", "cat.png"));
    assert_eq!(get(&host, &path).await.status, 302);
    let ts = s.slack.next_ts();
    let mut ev = message(SCH, "U0001", "a cat", &ts);
    ev["subtype"] = json!("file_share");
    ev["files"] = json!([file]);
    s.slack.send_event(ev).await;
    // Socket Mode may list a file without any URL: files.info has them.
    s.slack
        .add_file("F0002", "dog.png", "image/png", b"PNG-BYTES-SLACK-2");
    let ts2 = s.slack.next_ts();
    let mut ev = message(SCH, "U0001", "", &ts2);
    ev["subtype"] = json!("file_share");
    ev["files"] = json!([{"id": "F0002", "mode": "file_access", "file_access": "check_file_info",
                          "created": 0, "timestamp": 0, "user": ""}]);
    s.slack.send_event(ev).await;

    let posts = FakePlatform::wait_posts(&s.discord, DCH, 2, WAIT).await;
    assert!(posts[0].text.contains("a cat"), "{posts:?}");
    for (post, bytes) in posts.iter().zip(["PNG-BYTES-SLACK", "PNG-BYTES-SLACK-2"]) {
        let link = media_link(&post.text, &s.http);
        let r = get(&s.http, &link).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, bytes);
        assert_eq!(r.header("content-type"), Some("image/png"));
        // Served so that nothing in it can run in jetbridge's origin.
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("content-security-policy"), Some("sandbox"));
    }
}
