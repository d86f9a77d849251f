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

    // Discord threads started without a message (a private one, and one of
    // an announcement channel): each title leads a Slack thread, once.
    for (kind, title) in [(12, "Lunch?"), (10, "Release day")] {
        let before = slack_posts_in(&slack, "C0001").await.len();
        let thread = discord.thread_without_message(D1, kind, "eve", title).await;
        discord.say_in_thread(&thread, "eve", "who is in").await;
        discord.say_in_thread(&thread, "dan", "me").await;
        let deadline = Deadline::after(WAIT);
        while slack_posts_in(&slack, "C0001").await.len() < before + 3 {
            deadline
                .step(|| format!("the {title} thread on Slack"))
                .await;
        }
        let posts = slack_posts_in(&slack, "C0001").await;
        let title_post = &posts[before];
        assert!(
            title_post["text"].as_str().unwrap().contains(title),
            "{title_post}"
        );
        assert!(title_post.get("thread_ts").is_none_or(|t| t.is_null()));
        for reply in &posts[before + 1..] {
            assert_eq!(reply["thread_ts"], title_post["_ts"], "{reply}");
        }
    }

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

/// Slack's accepted posts in `channel`, in order (their parameters).
async fn slack_posts_in(slack: &FakeSlack, channel: &str) -> Vec<serde_json::Value> {
    slack
        .calls()
        .await
        .into_iter()
        .filter(|c| c.method == "chat.postMessage" && c.params["channel"] == channel)
        .filter(|c| c.params.get("_ts").is_some())
        .map(|c| c.params)
        .collect()
}

/// Slack's posts in channel `channel` whose text contains `needle`: (thread_ts, text).
async fn slack_posts_with(slack: &FakeSlack, channel: &str, needle: &str) -> Vec<(String, String)> {
    slack
        .calls()
        .await
        .into_iter()
        .filter(|c| c.method == "chat.postMessage" && c.params["channel"] == channel)
        .filter_map(|c| {
            let text = c.params["text"].as_str()?.to_string();
            text.contains(needle).then(|| {
                let thread = c.params["thread_ts"].as_str().unwrap_or("-").to_string();
                (thread, text)
            })
        })
        .collect()
}

#[tokio::test]
async fn thread_replies_said_while_jetbridge_was_away_are_caught_up_once() {
    let nats = NatsServer::start();
    let slack = <FakeSlack as FakePlatform>::start().await;
    let discord = <FakeDiscord as FakePlatform>::start().await;
    discord.forum(FORUM);
    let config = ConfigBuilder::new(&nats)
        .section("slack", &slack.section())
        .section("discord", &discord.section())
        .room("lobby", &["slack:C0001", &format!("discord:{D1}")])
        .room("forum", &["slack:C0002", &format!("discord:{FORUM}")])
        .build();
    let mut jb = Jetbridge::start(&config);
    FakePlatform::wait_connected(&slack, WAIT).await;
    FakePlatform::wait_connected(&discord, WAIT).await;
    let js = js(&nats.url()).await;

    // A Slack thread on Discord, and a forum post on Slack, each with a reply.
    let root = FakePlatform::say(&slack, "C0001", "ann", "plans?").await;
    let copy = FakePlatform::wait_posts(&discord, D1, 1, WAIT).await[0]
        .id
        .clone()
        .unwrap();
    slack_reply(&slack, &root, "bob", "pizza").await;
    FakePlatform::wait_posts(&discord, D1, 2, WAIT).await;
    // (A channel with nothing of its own stored is not caught up.)
    discord.say_in_thread(&copy, "dan", "pasta").await;
    slack.wait_posts("C0001", 1, WAIT).await;
    let post = discord
        .forum_post(FORUM, "fay", "Roadmap", "what next")
        .await;
    discord.say_in_thread(&post, "gus", "more maps").await;
    let forum_root = slack.wait_posts("C0002", 2, WAIT).await[0]["_ts"]
        .as_str()
        .unwrap()
        .to_string();
    wait_outbound_idle(&js, "slack").await;
    wait_outbound_idle(&js, "discord").await;

    // Away: a reply in each thread, on both platforms.
    jb.terminate().await;
    slack.reply_while_away("C0001", &root, "bob", "said on slack while away");
    discord.message_while_away(&copy, "dan", "said on discord while away");
    discord.message_while_away(&post, "gus", "said in the forum while away");

    jb.restart();
    FakePlatform::wait_connected(&slack, WAIT).await;
    // The Slack reply, in the Discord thread on the copy.
    let deadline = Deadline::after(WAIT + WAIT);
    loop {
        let posts = FakePlatform::posts(&discord, D1).await;
        if let Some(p) = posts
            .iter()
            .find(|p| p.text.contains("said on slack while away"))
        {
            assert_eq!(p.raw["_thread"], copy.as_str());
            break;
        }
        deadline.step(|| "the Slack reply caught up".into()).await;
    }
    // The Discord replies, in the Slack threads.
    let deadline = Deadline::after(WAIT + WAIT);
    while slack_posts_with(&slack, "C0001", "said on discord while away")
        .await
        .is_empty()
        || slack_posts_with(&slack, "C0002", "said in the forum while away")
            .await
            .is_empty()
    {
        deadline
            .step(|| "the Discord replies caught up".into())
            .await;
    }
    wait_outbound_idle(&js, "slack").await;
    wait_outbound_idle(&js, "discord").await;
    let caught = slack_posts_with(&slack, "C0001", "said on discord while away").await;
    assert_eq!(caught.len(), 1, "once: {caught:?}");
    assert_eq!(caught[0].0, root, "in the thread");
    let forum_reply = slack_posts_with(&slack, "C0002", "said in the forum while away").await;
    assert_eq!(forum_reply.len(), 1, "once: {forum_reply:?}");
    assert_eq!(forum_reply[0].0, forum_root);
    let on_discord: Vec<_> = FakePlatform::posts(&discord, D1)
        .await
        .into_iter()
        .filter(|p| p.text.contains("said on slack while away"))
        .collect();
    assert_eq!(on_discord.len(), 1, "once");
    // Stored once each, in their threads.
    let lobby = stored(&js, "chat.lobby.>").await;
    for text in ["said on slack while away", "said on discord while away"] {
        let evs: Vec<_> = lobby.iter().filter(|e| e.text == text).collect();
        assert_eq!(evs.len(), 1, "{text}: {evs:#?}");
        assert_eq!(
            evs[0].thread.as_deref(),
            Some(format!("slack:C0001:{root}").as_str())
        );
    }
}
