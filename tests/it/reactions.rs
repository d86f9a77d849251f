//! Reactions across Discord and Slack against the fakes: the bot reacts once
//! per emoji on the other side however many people reacted, and takes it
//! back when the last of them did; a guild's own emoji is stored and not
//! relayed; fifty reactions at once all land through Discord's 429s; the
//! chat page counts them per platform, live.

use std::time::Duration;

use serde_json::{Value, json};

use jetbridge::event::{EventKind, ReactionOp};

use crate::support::browser::Browser;
use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::{FakeDiscord, GUILD_ID};
use crate::support::fake_slack::FakeSlack;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Deadline, Jetbridge, WAIT, js, stored, wait_outbound_idle};

const D1: &str = "111111111111111111";
const THUMBS: &str = "%F0%9F%91%8D";

/// A Slack reaction to message `ts` of C0001 (written by someone else).
async fn slack_reaction(slack: &FakeSlack, kind: &str, user: &str, name: &str, ts: &str) {
    slack_reaction_to(slack, kind, user, name, ts, "U0001").await
}

/// A Slack reaction to message `ts` of C0001, written by `item_user`.
async fn slack_reaction_to(
    slack: &FakeSlack,
    kind: &str,
    user: &str,
    name: &str,
    ts: &str,
    item_user: &str,
) {
    let event_ts = slack.next_ts();
    slack
        .send_event(
            json!({"type": kind, "user": user, "reaction": name, "item_user": item_user,
            "item": {"type": "message", "channel": "C0001", "ts": ts}, "event_ts": event_ts}),
        )
        .await;
}

async fn discord_reaction(
    discord: &FakeDiscord,
    kind: &str,
    user: &str,
    message: &str,
    emoji: Value,
) {
    discord
        .dispatch(
            kind,
            json!({"user_id": user, "channel_id": D1, "message_id": message, "guild_id": GUILD_ID,
                   "emoji": emoji, "burst": false, "type": 0}),
        )
        .await;
}

/// The bot's reaction calls on Discord message `id` that were accepted: (method, emoji).
async fn bot_reactions(discord: &FakeDiscord, id: &str) -> Vec<(String, String)> {
    discord
        .requests()
        .await
        .into_iter()
        .filter(|r| r.body.get("_status").is_none())
        .filter_map(|r| {
            let rest = r.path.split(&format!("/messages/{id}/reactions/")).nth(1)?;
            let emoji = rest.trim_end_matches("/@me").to_string();
            Some((r.method, emoji))
        })
        .collect()
}

#[tokio::test]
async fn reactions_cross_once_per_emoji_and_the_page_counts_them_live() {
    let nats = NatsServer::start();
    let slack = <FakeSlack as FakePlatform>::start().await;
    let discord = <FakeDiscord as FakePlatform>::start().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let jb = Jetbridge::start(
        &ConfigBuilder::new(&nats)
            .http(&addr, "")
            .section("slack", &slack.section())
            .section("discord", &discord.section())
            .room("lobby", &["slack:C0001", &format!("discord:{D1}")])
            .build(),
    );
    FakePlatform::wait_connected(&slack, WAIT).await;
    FakePlatform::wait_connected(&discord, WAIT).await;
    crate::support::wait_until("http up", WAIT, || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", jb.logs()));
    let js = js(&nats.url()).await;

    let ts = FakePlatform::say(&slack, "C0001", "ann", "react to me").await;
    let copy = FakePlatform::wait_posts(&discord, D1, 1, WAIT).await[0]
        .id
        .clone()
        .unwrap();
    let mut page = Browser::launch().await;
    page.open(&format!("http://{addr}/rooms/lobby")).await;
    page.wait_live().await;
    page.wait_rows("the message", |r| r.len() == 1).await;
    let chips =
        "Array.from(document.querySelectorAll('.reaction')).map(c => c.textContent).join('|')";

    // Two Slack users give 👍 (one with a skin tone): the bot reacts once.
    slack_reaction(&slack, "reaction_added", "U0002", "+1", &ts).await;
    slack_reaction(
        &slack,
        "reaction_added",
        "U0003",
        "thumbsup::skin-tone-2",
        &ts,
    )
    .await;
    page.wait_true("👍 2 from slack", &format!("{chips} === '👍2slack 2'"))
        .await;
    // One takes theirs back: the bot's stays.
    slack_reaction(&slack, "reaction_removed", "U0002", "+1", &ts).await;
    page.wait_true("👍 1 from slack", &format!("{chips} === '👍1slack 1'"))
        .await;
    wait_outbound_idle(&js, "discord").await;
    assert_eq!(
        bot_reactions(&discord, &copy).await,
        [("PUT".to_string(), THUMBS.to_string())]
    );
    // The last one takes theirs back: so does the bot.
    slack_reaction(
        &slack,
        "reaction_removed",
        "U0003",
        "thumbsup::skin-tone-2",
        &ts,
    )
    .await;
    page.wait_true("no reaction left", &format!("{chips} === ''"))
        .await;
    wait_outbound_idle(&js, "discord").await;
    assert_eq!(
        bot_reactions(&discord, &copy).await,
        [
            ("PUT".to_string(), THUMBS.to_string()),
            ("DELETE".to_string(), THUMBS.to_string())
        ]
    );

    // A Discord message: a reaction on Slack's copy reaches the original,
    // counted on the page under the original.
    let original = FakePlatform::say(&discord, D1, "dan", "from discord").await;
    let slack_copy = slack.wait_posts("C0001", 1, WAIT).await[0]["_ts"]
        .as_str()
        .unwrap()
        .to_string();
    page.wait_rows("the second message", |r| r.len() == 2).await;
    // (Reacted to right after it was posted: on the bot's own post.)
    slack_reaction_to(
        &slack,
        "reaction_added",
        "U0002",
        "tada",
        &slack_copy,
        crate::support::fake_slack::BOT_USER,
    )
    .await;
    discord_reaction(
        &discord,
        "MESSAGE_REACTION_ADD",
        "42",
        &original,
        json!({"id": null, "name": "🎉"}),
    )
    .await;
    page.wait_true(
        "🎉 from both platforms",
        &format!("{chips} === '🎉2slack 1 · discord 1' || {chips} === '🎉2discord 1 · slack 1'"),
    )
    .await;
    // A guild's own emoji: stored, not relayed.
    discord_reaction(
        &discord,
        "MESSAGE_REACTION_ADD",
        "42",
        &original,
        json!({"id": "1234", "name": "blobcat", "animated": false}),
    )
    .await;
    // Someone takes theirs back; a moderator clears another emoji: the
    // bot's go on Slack too.
    discord_reaction(
        &discord,
        "MESSAGE_REACTION_ADD",
        "43",
        &original,
        json!({"id": null, "name": "👀"}),
    )
    .await;
    discord_reaction(
        &discord,
        "MESSAGE_REACTION_REMOVE",
        "43",
        &original,
        json!({"id": null, "name": "👀"}),
    )
    .await;
    discord_reaction(
        &discord,
        "MESSAGE_REACTION_ADD",
        "44",
        &original,
        json!({"id": null, "name": "🔥"}),
    )
    .await;
    discord
        .dispatch(
            "MESSAGE_REACTION_REMOVE_EMOJI",
            json!({"channel_id": D1, "message_id": original, "guild_id": GUILD_ID,
                   "emoji": {"id": null, "name": "🔥"}}),
        )
        .await;
    // A Discord moderator removes every reaction of the original: the
    // bot's 🎉 on the Slack copy goes (no one on Discord reacts any more);
    // the Slack side's stays counted.
    discord
        .dispatch(
            "MESSAGE_REACTION_REMOVE_ALL",
            json!({"channel_id": D1, "message_id": original, "guild_id": GUILD_ID}),
        )
        .await;
    page.wait_true("only Slack's 🎉 left", &format!("{chips} === '🎉1slack 1'"))
        .await;
    // The bot's own reaction coming back is not someone's.
    discord_reaction(
        &discord,
        "MESSAGE_REACTION_ADD",
        crate::support::fake_discord::BOT_ID,
        &original,
        json!({"id": null, "name": "🎉"}),
    )
    .await;

    // Fifty people, fifty emoji, in a burst on Slack: all reach the Discord
    // copy through Discord's one-per-250-ms bucket, each 429 waited out.
    let fifty: Vec<&str> = emojis::iter()
        .filter_map(|e| e.shortcode())
        .filter(|s| !s.contains(['+', '-']))
        .take(50)
        .collect();
    for (i, name) in fifty.iter().enumerate() {
        slack_reaction(&slack, "reaction_added", &format!("U1{i:03}"), name, &ts).await;
    }
    let deadline = Deadline::after(Duration::from_secs(60));
    loop {
        let have = bot_reactions(&discord, &copy).await.len() - 2;
        if have == 50 {
            break;
        }
        deadline.step(|| format!("50 reactions; have {have}")).await;
    }
    let attempts: Vec<_> = discord
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path.contains(&format!("/messages/{copy}/reactions/")))
        .collect();
    let refused: Vec<_> = attempts
        .iter()
        .filter(|r| r.body["_status"] == 429)
        .collect();
    assert!(!refused.is_empty(), "the burst met Discord's bucket");
    for r in &refused {
        // The next attempt came after the 250 ms Discord asked for.
        let next = attempts.iter().find(|a| a.at > r.at).unwrap();
        assert!(
            next.at - r.at >= Duration::from_millis(240),
            "{:?}",
            next.at - r.at
        );
    }
    wait_outbound_idle(&js, "discord").await;
    wait_outbound_idle(&js, "slack").await;

    // On the stream: each reaction once, with its emoji as Unicode (or
    // the guild's own name), and nothing relayed for the custom one.
    let evs: Vec<_> = stored(&js, "chat.lobby.>")
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Reaction)
        .collect();
    // Slack's four 👍, its 🎉, Discord's 🎉, 👀 twice, 🔥 twice, blobcat and
    // remove-all (not the bot's), the fifty.
    assert_eq!(evs.len(), 4 + 1 + 1 + 4 + 2 + 50, "{evs:#?}");
    let custom = evs
        .iter()
        .find(|e| e.reaction.as_ref().unwrap().emoji == ":blobcat:")
        .expect("the custom emoji is stored");
    assert_eq!(
        custom.target.as_deref(),
        Some(format!("discord:{D1}:{original}").as_str())
    );
    let tada = evs
        .iter()
        .find(|e| e.source.bridge == "slack" && e.reaction.as_ref().unwrap().emoji == "🎉")
        .unwrap();
    assert_eq!(
        tada.target.as_deref(),
        Some(format!("discord:{D1}:{original}").as_str()),
        "a reaction to a copy is one to its original"
    );
    assert_eq!(tada.reaction.as_ref().unwrap().op, ReactionOp::Add);
    let adds: Vec<String> = slack
        .calls()
        .await
        .into_iter()
        .filter(|c| c.method.starts_with("reactions."))
        .map(|c| format!("{} {}", c.method, c.params["name"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        adds,
        [
            "reactions.add tada",
            "reactions.add eyes",
            "reactions.remove eyes",
            "reactions.add fire",
            "reactions.remove fire",
            "reactions.remove tada"
        ],
        "each once on the Slack copy and taken back, no blobcat"
    );
    page.screenshot("chat-reactions.png").await;
}
