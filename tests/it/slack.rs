//! End to end: fake Slack (Web API + Socket Mode), fake Twitch and fake Discord
//! ↔ jetbridge ↔ real nats-server.

use crate::support;
use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::{BOT_TOKEN, FakeSlack, message};
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, wait_stored};
use serde_json::json;

const C1: &str = "C0001";
const C2: &str = "C0002";
const DCH: &str = "333333333333333333";

struct Setup {
    nats: NatsServer,
    slack: FakeSlack,
    twitch: FakeTwitch,
    discord: FakeDiscord,
    jb: Jetbridge,
}

async fn setup(slack_extra: &str, bot_token: &str) -> Setup {
    let nats = NatsServer::start();
    let slack = FakeSlack::start().await;
    let twitch = FakeTwitch::start().await;
    let discord = FakeDiscord::start("dtoken").await;
    let slack_keys = slack.section().replace(BOT_TOKEN, bot_token);
    let cfg = ConfigBuilder::new(&nats)
        .section("twitch", &twitch.section())
        .section("discord", &discord.section())
        .section("slack", &format!("{slack_keys}\n{slack_extra}"))
        .room(
            "lobby",
            &[
                "twitch:#alpha",
                &format!("slack:{C1}"),
                &format!("slack:{C2}"),
                &format!("discord:{DCH}"),
            ],
        )
        .build();
    let jb = Jetbridge::start(&cfg);
    twitch.wait_joined(&["#alpha"], WAIT).await;
    discord.wait_identified(WAIT).await;
    Setup {
        nats,
        slack,
        twitch,
        discord,
        jb,
    }
}

async fn ready(s: &Setup) {
    s.slack.wait_connected(0, WAIT).await;
    s.jb.wait_log("discord ready", WAIT).await;
}

#[tokio::test]
async fn slack_relays_both_ways_with_twitch_and_discord_and_nothing_pings() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    let ts = s.slack.next_ts();
    s.slack
        .send_event(message(
            C1,
            "U0001",
            "hi *all* <@U0002> in <#C0009|random>, see <https://x.y/z|the docs> &amp; &lt;3",
            &ts,
        ))
        .await;
    let got = s.twitch.wait_sent("#alpha", 1, WAIT).await;
    assert_eq!(
        got,
        vec!["[slack] Ann: hi all @Zoe in #random, see the docs (https://x.y/z) & <3"]
    );
    let d = s.discord.wait_posts(DCH, 1, WAIT).await;
    assert_eq!(d[0]["username"], "Ann (slack)");
    assert_eq!(
        d[0]["content"],
        "hi **all** @Zoe in #random, see [the docs](https://x.y/z) & \\<3"
    );
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.slack.{C1}"), 1).await;
    assert_eq!(evs[0].id, format!("slack:{C1}:{ts}"));
    assert_eq!(
        evs[0].author.as_ref().unwrap().avatar_url.as_deref(),
        Some("https://avatars.example/U0001-48.png")
    );

    // From Twitch: <!channel> and friends arrive escaped, with name and text.
    s.twitch
        .privmsg(
            "#alpha",
            "ronni",
            "Ronni",
            "<!channel> <!here> <@U0001> & **bold**",
        )
        .await;
    let posts = s.slack.wait_posts(C1, 1, WAIT).await;
    assert_eq!(posts[0]["username"], "Ronni (twitch)");
    assert_eq!(
        posts[0]["text"],
        "&lt;!channel&gt; &lt;!here&gt; &lt;@U0001&gt; &amp; **bold**"
    );
    // From Discord.
    s.discord
        .user_message(DCH, "444", "Dee", "from **discord** @everyone", json!({}))
        .await;
    let posts = s.slack.wait_posts(C1, 2, WAIT).await;
    assert_eq!(posts[1]["username"], "Dee (discord)");
    assert_eq!(posts[1]["text"], "from *discord* @everyone");
}

#[tokio::test]
async fn workspace_admins_carry_the_moderator_badge_bots_the_bot_badge_and_members_none() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    let member = s.slack.next_ts();
    s.slack
        .send_event(message(C1, "U0001", "from a member", &member))
        .await;
    let admin = s.slack.next_ts();
    s.slack
        .send_event(message(C1, "U0002", "from an admin", &admin))
        .await;
    // Another app posting as that admin: both badges.
    let mut app = message(C1, "U0002", "from an app", &s.slack.next_ts());
    app["subtype"] = json!("bot_message");
    app["bot_id"] = json!("B0OTHER");
    s.slack.send_event(app).await;
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.slack.{C1}"), 3).await;
    let badges = |i: usize| evs[i].author.as_ref().unwrap().badges.clone();
    assert_eq!(evs[0].source.message_id, member);
    assert!(badges(0).is_empty(), "{:?}", badges(0));
    assert_eq!(badges(1), vec!["moderator".to_string()]);
    assert!(!evs[1].author.as_ref().unwrap().bot);
    assert_eq!(badges(2), vec!["moderator".to_string(), "bot".to_string()]);
    assert!(evs[2].author.as_ref().unwrap().bot);
}

#[tokio::test]
async fn edits_deletes_and_threads_reach_the_copies() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    let parent = s.slack.next_ts();
    s.slack
        .send_event(message(C1, "U0001", "parent", &parent))
        .await;
    let copies = s.slack.wait_posts(C2, 1, WAIT).await;
    assert!(copies[0].get("thread_ts").is_none());
    // A reply in C1's thread is threaded under the copy in C2.
    let reply = s.slack.next_ts();
    let mut r = message(C1, "U0002", "in thread", &reply);
    r["thread_ts"] = json!(parent);
    s.slack.send_event(r).await;
    let copies = s.slack.wait_posts(C2, 2, WAIT).await;
    // Under the copy of the parent in C2, not the parent itself.
    assert_eq!(copies[1]["thread_ts"], copies[0]["_ts"], "{}", copies[1]);

    // An edit on Slack updates the copies; a delete deletes them.
    s.slack
        .send_event(json!({"type": "message", "subtype": "message_changed", "channel": C1, "ts": s.slack.next_ts(),
            "hidden": true, "channel_type": "channel",
            "message": {"type": "message", "user": "U0001", "text": "parent, edited", "ts": parent,
                        "edited": {"user": "U0001", "ts": "1700000099.000001"}}}))
        .await;
    let calls = s
        .slack
        .wait_for("chat.update in C2", WAIT, |cs| {
            cs.iter().any(|c| c.method == "chat.update")
        })
        .await;
    let upd = calls.iter().find(|c| c.method == "chat.update").unwrap();
    assert_eq!(upd.params["channel"], C2);
    assert_eq!(upd.params["text"], "parent, edited");
    let patch = s
        .discord
        .wait_for("discord PATCH", WAIT, |rs| {
            rs.iter().any(|r| r.method == "PATCH")
        })
        .await;
    assert!(
        patch
            .iter()
            .any(|r| r.method == "PATCH" && r.body["content"] == "parent, edited")
    );

    s.slack
        .send_event(json!({"type": "message", "subtype": "message_deleted", "channel": C1, "ts": s.slack.next_ts(),
            "hidden": true, "deleted_ts": parent, "channel_type": "channel",
            "previous_message": {"type": "message", "user": "U0001", "text": "parent, edited", "ts": parent}}))
        .await;
    s.slack
        .wait_for("chat.delete in C2", WAIT, |cs| {
            cs.iter()
                .any(|c| c.method == "chat.delete" && c.params["channel"] == C2)
        })
        .await;
    s.discord
        .wait_for("discord DELETE", WAIT, |rs| {
            rs.iter().any(|r| r.method == "DELETE")
        })
        .await;
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.slack.{C1}"), 4).await;
    let kinds: Vec<_> = evs.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["message", "message", "edit", "delete"]);
    assert_eq!(
        evs[1].reply_to.as_deref(),
        Some(format!("slack:{C1}:{parent}").as_str())
    );
    assert_eq!(
        evs[2].id,
        format!("slack:{C1}:{parent}:edit:1700000099.000001")
    );
}

#[tokio::test]
async fn redelivered_envelopes_and_own_posts_are_stored_once_and_disconnect_loses_nothing() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    let ts = s.slack.next_ts();
    let ev = message(C1, "U0001", "once", &ts);
    // Slack resends an envelope whose ack it did not see.
    s.slack.send_envelope("env-a", "Ev-a", ev.clone()).await;
    s.slack.send_envelope("env-b", "Ev-a", ev).await;
    // Our own bot's post, seen inbound.
    let mut own = message(C1, "", "copy", &s.slack.next_ts());
    own["bot_id"] = json!(support::fake_slack::BOT_ID);
    own["subtype"] = json!("bot_message");
    own.as_object_mut().unwrap().remove("user");
    s.slack.send_event(own).await;
    s.slack
        .wait_for("both envelopes acked", WAIT, |_| true)
        .await;
    let acked = async {
        let deadline = support::Deadline::after(WAIT);
        while !(s.slack.acks().await.contains(&"env-a".to_string())
            && s.slack.acks().await.contains(&"env-b".to_string()))
        {
            deadline.step(|| "envelopes not acked".to_string()).await;
        }
    };
    acked.await;

    // Slack rotates the connection mid-stream.
    let before = s.slack.connections();
    s.slack.send_disconnect().await;
    s.slack.wait_connected(before, WAIT).await;
    s.slack
        .send_event(message(C1, "U0002", "after reconnect", &s.slack.next_ts()))
        .await;
    let got = s.twitch.wait_sent("#alpha", 2, WAIT).await;
    assert_eq!(
        got,
        vec!["[slack] Ann: once", "[slack] Zoe: after reconnect"]
    );
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.slack.{C1}"), 2).await;
    assert_eq!(evs.len(), 2, "{evs:#?}");
}

#[tokio::test]
async fn without_chat_write_customize_it_falls_back_to_the_template() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    s.slack.refuse_customize();
    s.twitch
        .privmsg("#alpha", "ronni", "Ronni", "plain please")
        .await;
    let posts = s.slack.wait_posts(C1, 1, WAIT).await;
    assert_eq!(posts[0]["text"], "*Ronni* (twitch): plain please");
    assert!(posts[0].get("username").is_none());
    s.jb.wait_log("chat:write.customize", WAIT).await;
}

#[tokio::test]
async fn a_wrong_bot_token_fails_clearly_and_the_others_run() {
    let s = setup("", "xoxb-wrong").await;
    s.jb.wait_log("Slack refused the bot token: invalid_auth", WAIT)
        .await;
    s.jb.wait_log("discord ready", WAIT).await;
    s.twitch
        .privmsg("#alpha", "ronni", "Ronni", "still relayed")
        .await;
    let d = s.discord.wait_posts(DCH, 1, WAIT).await;
    assert_eq!(d[0]["content"], "still relayed");
    assert!(!s.jb.logs().contains("xoxb-wrong"), "token in logs");
}

#[tokio::test]
async fn a_file_slack_morphism_cannot_read_does_not_cost_the_message_its_text() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    // One bad field in a file made slack-morphism read the whole content as
    // nothing (text included), without an error.
    let ts = s.slack.next_ts();
    let mut ev = message(C1, "U0001", "the words survive", &ts);
    ev["subtype"] = json!("file_share");
    ev["files"] =
        json!([{"id": "F9", "name": "odd.bin", "created": "notanumber", "url_private": ""}]);
    s.slack.send_event(ev).await;
    let posts = s.slack.wait_posts(C2, 1, WAIT).await;
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("the words survive"),
        "{}",
        posts[0]
    );
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.slack.{C1}"), 1).await;
    assert_eq!(evs[0].text, "the words survive");
    assert_eq!(evs[0].attachments.len(), 1);
    assert_eq!(evs[0].attachments[0].name, "odd.bin");
}

#[tokio::test]
async fn a_failed_users_info_is_said_and_not_remembered() {
    let s = setup("", BOT_TOKEN).await;
    ready(&s).await;
    s.slack
        .fail_method(
            "users.info",
            1,
            200,
            json!({"ok": false, "error": "internal_error"}),
        )
        .await;
    for text in ["first", "second"] {
        let ts = s.slack.next_ts();
        s.slack.send_event(message(C1, "U0001", text, &ts)).await;
    }
    let lines = s.twitch.wait_sent("#alpha", 2, WAIT).await;
    // The first shows the stand-in (the user id); the second asks again.
    assert!(
        lines[0].contains("U0001") && lines[0].contains("first"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("Ann") && lines[1].contains("second"),
        "{lines:?}"
    );
    s.jb.wait_log("slack lookup failed", WAIT).await;
}
