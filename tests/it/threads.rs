//! Threads across Discord and Slack against the fakes: a Slack thread on a
//! bridged message is one Discord thread on its copy (started once, then
//! posted into with the webhook's `thread_id`), a reply in that Discord
//! thread lands in the Slack thread, a Discord forum post is a Slack thread
//! led by its title, and Twitch gets the replies as reply lines.

use serde_json::json;

use jetbridge::event::EventKind;

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::{self, FakeSlack};
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Deadline, Jetbridge, WAIT, js, stored, wait_outbound_idle};

const D1: &str = "111111111111111111";
const FORUM: &str = "222222222222222222";

/// A Slack message from `user` in the thread of `root`.
async fn slack_reply(slack: &FakeSlack, root: &str, user: &str, text: &str) -> String {
    let ts = slack.next_ts();
    let mut m = fake_slack::message("C0001", fake_slack::user_id(user), text, &ts);
    m["thread_ts"] = json!(root);
    slack.send_event(m).await;
    ts
}

#[tokio::test]
async fn slack_threads_are_discord_threads_and_back_and_a_forum_post_is_a_slack_thread() {
    let nats = NatsServer::start();
    let slack = <FakeSlack as FakePlatform>::start().await;
    let discord = <FakeDiscord as FakePlatform>::start().await;
    let twitch = <FakeTwitch as FakePlatform>::start().await;
    discord.forum(FORUM);
    let _jb = Jetbridge::start(
        &ConfigBuilder::new(&nats)
            .section("slack", &slack.section())
            .section("discord", &discord.section())
            .section("twitch", &twitch.section())
            .room(
                "lobby",
                &["slack:C0001", &format!("discord:{D1}"), "twitch:#alpha"],
            )
            .room("forum", &["slack:C0002", &format!("discord:{FORUM}")])
            .build(),
    );
    FakePlatform::wait_connected(&slack, WAIT).await;
    FakePlatform::wait_connected(&discord, WAIT).await;
    twitch.wait_joined(&["#alpha"], WAIT).await;
    let js = js(&nats.url()).await;

    // A Slack message and a thread of three replies under it.
    let root = FakePlatform::say(&slack, "C0001", "ann", "who is in?").await;
    let copy = FakePlatform::wait_posts(&discord, D1, 1, WAIT).await[0]
        .id
        .clone()
        .unwrap();
    for (who, text) in [("bob", "me"), ("cat", "me too"), ("bob", "count me twice")] {
        slack_reply(&slack, &root, who, text).await;
    }
    // On Discord: one thread started on the copy, the three in it.
    let posts = FakePlatform::wait_posts(&discord, D1, 4, WAIT).await;
    let in_thread: Vec<(String, String)> = posts[1..]
        .iter()
        .map(|p| {
            (
                p.raw["_thread"].as_str().unwrap_or("-").to_string(),
                p.text.clone(),
            )
        })
        .collect();
    assert_eq!(
        in_thread,
        [
            (copy.clone(), "me".to_string()),
            (copy.clone(), "me too".to_string()),
            (copy.clone(), "count me twice".to_string()),
        ]
    );
    let started: Vec<_> = discord
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/threads"))
        .collect();
    assert_eq!(started.len(), 1, "one thread, started once");
    assert!(
        started[0]
            .path
            .contains(&format!("/channels/{D1}/messages/{copy}/threads"))
    );
    assert_eq!(discord.thread_of(&copy).unwrap()["parent_id"], D1);
    // Twitch has no threads: reply lines.
    let lines = twitch.wait_for_line("#alpha", "count me twice", WAIT).await;
    assert_eq!(lines.len(), 4, "{lines:?}");

    // A reply in that Discord thread lands in the Slack thread.
    discord
        .say_in_thread(&copy, "dan", "from the discord thread")
        .await;
    let calls = slack
        .wait_for("the reply in the slack thread", WAIT, |calls| {
            calls.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.params["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("from the discord thread"))
            })
        })
        .await;
    let reply = calls
        .iter()
        .find(|c| {
            c.params["text"]
                .as_str()
                .is_some_and(|t| t.contains("from the discord thread"))
        })
        .unwrap();
    assert_eq!(reply.params["thread_ts"], root.as_str());
    let evs = stored(&js, &format!("chat.lobby.discord.{D1}")).await;
    let ev = evs
        .iter()
        .find(|e| e.kind == EventKind::Message && e.text == "from the discord thread")
        .expect("stored under the thread's parent channel");
    let thread_root = format!("slack:C0001:{root}");
    assert_eq!(
        ev.thread.as_deref(),
        Some(thread_root.as_str()),
        "the original is the thread"
    );
    let slack_side = stored(&js, "chat.lobby.slack.C0001").await;
    assert!(
        slack_side
            .iter()
            .filter(|e| e.text.starts_with("me") || e.text.starts_with("count"))
            .all(|e| e.thread.as_deref() == Some(thread_root.as_str()))
    );

    // A forum post: a Slack thread led by its title, its replies under it.
    let post = discord
        .forum_post(FORUM, "fay", "Patch notes", "v2 is out")
        .await;
    let first = slack.wait_posts("C0002", 1, WAIT).await;
    let text = first[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Patch notes") && text.contains("v2 is out"),
        "{text}"
    );
    assert!(first[0].get("thread_ts").is_none_or(|t| t.is_null()));
    let first_ts = first[0]["_ts"].as_str().unwrap().to_string();
    discord.say_in_thread(&post, "gus", "nice").await;
    discord.say_in_thread(&post, "fay", "thanks").await;
    let all = slack.wait_posts("C0002", 3, WAIT).await;
    for reply in &all[1..] {
        assert_eq!(reply["thread_ts"], first_ts.as_str(), "{reply}");
    }
    wait_outbound_idle(&js, "slack").await;
    let deadline = Deadline::after(WAIT);
    loop {
        let forum = stored(&js, "chat.forum.>").await;
        if forum.len() >= 3 {
            let threads: Vec<Option<String>> = forum.iter().map(|e| e.thread.clone()).collect();
            let root_id = format!("discord:{FORUM}:{post}");
            assert_eq!(threads, [None, Some(root_id.clone()), Some(root_id)]);
            break;
        }
        deadline.step(|| "the forum's three events".into()).await;
    }
}
