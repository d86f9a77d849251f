//! End to end: fake Discord (Gateway v10 + REST) and fake Twitch ↔ jetbridge ↔
//! real nats-server.

use crate::support;
use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::{APP_ID, FakeDiscord};
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, wait_outbound_idle, wait_stored};
use serde_json::json;

const TOKEN: &str = "discord-bot-token-sekrit";
const CH: &str = "111111111111111111";
const CH2: &str = "222222222222222222";

fn config(
    nats: &NatsServer,
    discord: &FakeDiscord,
    twitch: &FakeTwitch,
    discord_extra: &str,
) -> String {
    ConfigBuilder::new(nats)
        .section("twitch", &twitch.section())
        .section(
            "discord",
            &format!("{}\n{discord_extra}", discord.section()),
        )
        .room(
            "lobby",
            &[
                "twitch:#alpha",
                &format!("discord:{CH}"),
                &format!("discord:{CH2}"),
            ],
        )
        .build()
}

struct Setup {
    nats: NatsServer,
    discord: FakeDiscord,
    twitch: FakeTwitch,
    _jb: Jetbridge,
}

async fn setup(discord_extra: &str) -> Setup {
    let nats = NatsServer::start();
    let discord = FakeDiscord::start(TOKEN).await;
    let twitch = FakeTwitch::start().await;
    let jb = Jetbridge::start(&config(&nats, &discord, &twitch, discord_extra));
    let identify = discord.wait_identified(WAIT).await;
    // GUILD_MODERATION (1 << 2, the audit log), GUILD_MESSAGES (1 << 9),
    // GUILD_MESSAGE_REACTIONS (1 << 10) and MESSAGE_CONTENT (1 << 15), no DMs.
    assert_eq!(
        identify["intents"].as_u64(),
        Some((1 << 2) | (1 << 9) | (1 << 10) | (1 << 15)),
        "{identify}"
    );
    twitch.wait_joined(&["#alpha"], WAIT).await;
    jb.wait_log("discord ready", WAIT).await;
    Setup {
        nats,
        discord,
        twitch,
        _jb: jb,
    }
}

#[tokio::test]
async fn relays_both_ways_with_webhook_names_and_no_pings() {
    let s = setup("").await;
    s.twitch
        .privmsg(
            "#alpha",
            "ronni",
            "Ronni",
            "hello @everyone and @here, <@123>",
        )
        .await;
    let posts = s.discord.wait_posts(CH, 1, WAIT).await;
    let p = &posts[0];
    assert_eq!(p["username"], "Ronni (twitch)");
    assert_eq!(p["allowed_mentions"], json!({"parse": []}));
    assert_eq!(
        p["content"],
        "hello @\u{200B}everyone and @\u{200B}here, \\<@123>"
    );
    // Both Discord channels of the room got it, through webhooks we created.
    s.discord.wait_posts(CH2, 1, WAIT).await;
    assert!(s.discord.webhook_for(CH).await.is_some());

    // Discord → Twitch (and the other Discord channel), with mentions resolved.
    let mention = json!({"mentions": [{"id": "555", "username": "zoe", "global_name": "Zoe", "discriminator": "0", "avatar": null}]});
    s.discord
        .user_message(
            CH,
            "444",
            "Ann",
            "hi <@555> in <#333333333333333333> <@&777> <:blob:42>",
            mention,
        )
        .await;
    let got = s.twitch.wait_sent("#alpha", 1, WAIT).await;
    assert_eq!(
        got,
        vec!["[discord] Ann: hi @Zoe in #chan-333 @Moderators :blob:"]
    );
    let other = s.discord.wait_posts(CH2, 2, WAIT).await;
    assert_eq!(other[1]["username"], "Ann (disc\u{03bf}rd)");
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.discord.{CH}"), 1).await;
    let ev = &evs[0];
    assert_eq!(ev.author.as_ref().unwrap().name, "Ann");
    assert!(
        ev.author
            .as_ref()
            .unwrap()
            .avatar_url
            .as_deref()
            .unwrap()
            .contains("cdn.discordapp.com")
    );
    assert_eq!(ev.emotes[0].name, ":blob:");
    assert_eq!(ev.emotes[0].url, "https://cdn.discordapp.com/emojis/42.png");
}

#[tokio::test]
async fn our_own_webhook_and_bot_echoes_are_never_republished() {
    let s = setup("").await;
    s.twitch.privmsg("#alpha", "ronni", "Ronni", "first").await;
    s.discord.wait_posts(CH, 1, WAIT).await;
    let (hook, _) = s.discord.webhook_for(CH).await.unwrap();
    // Discord echoes what our webhook and our bot posted.
    let hook_author = json!({"id": hook, "username": "Ronni (twitch)", "discriminator": "0000", "avatar": null, "bot": true});
    let mut echo =
        support::fake_discord::message_json(&s.discord.snowflake(), CH, hook_author, "first");
    echo["webhook_id"] = json!(hook);
    echo["application_id"] = json!(APP_ID);
    s.discord.dispatch("MESSAGE_CREATE", echo).await;
    let bot = json!({"id": support::fake_discord::BOT_ID, "username": "jetbridge-bot", "discriminator": "0", "avatar": null, "bot": true});
    let own = support::fake_discord::message_json(
        &s.discord.snowflake(),
        CH,
        bot,
        "**Ronni** (twitch): x",
    );
    s.discord.dispatch("MESSAGE_CREATE", own).await;
    // A real user after them: once it is stored, the echoes would be too.
    s.discord
        .user_message(CH, "444", "Ann", "real", json!({}))
        .await;
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, "chat.lobby.discord.>", 1).await;
    assert_eq!(evs.len(), 1, "echo stored: {evs:#?}");
    assert_eq!(evs[0].text, "real");
}

#[tokio::test]
async fn edits_and_deletes_reach_copies_and_are_noops_on_twitch() {
    let s = setup("").await;
    let id = s
        .discord
        .user_message(CH, "444", "Ann", "original", json!({}))
        .await;
    s.discord.wait_posts(CH2, 1, WAIT).await;
    s.twitch.wait_sent("#alpha", 1, WAIT).await;
    s.discord
        .dispatch("MESSAGE_UPDATE", json!({"id": id, "channel_id": CH, "guild_id": support::fake_discord::GUILD_ID,
            "content": "edited text", "edited_timestamp": "2026-11-23T10:05:00.000000+00:00",
            "author": {"id": "444", "username": "ann", "global_name": "Ann", "discriminator": "0", "avatar": null}}))
        .await;
    let reqs = s
        .discord
        .wait_for("a PATCH of the copy", WAIT, |rs| {
            rs.iter().any(|r| r.method == "PATCH")
        })
        .await;
    let patch = reqs.iter().find(|r| r.method == "PATCH").unwrap();
    assert!(
        patch.path.contains("/webhooks/") && patch.path.contains("/messages/"),
        "{}",
        patch.path
    );
    assert_eq!(patch.body["content"], "edited text");
    assert_eq!(patch.body["allowed_mentions"], json!({"parse": []}));

    s.discord
        .dispatch(
            "MESSAGE_DELETE",
            json!({"id": id, "channel_id": CH, "guild_id": support::fake_discord::GUILD_ID}),
        )
        .await;
    s.discord
        .wait_for("a DELETE of the copy", WAIT, |rs| {
            rs.iter().any(|r| r.method == "DELETE")
        })
        .await;
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.discord.{CH}"), 3).await;
    assert_eq!(evs[1].kind, jetbridge::event::EventKind::Edit);
    assert_eq!(
        evs[1].target.as_deref(),
        Some(format!("discord:{CH}:{id}").as_str())
    );
    assert_eq!(evs[2].kind, jetbridge::event::EventKind::Delete);
    wait_outbound_idle(&js, "twitch").await;
    wait_outbound_idle(&js, "discord").await;
    // Twitch got the message once and nothing for the edit or the delete.
    assert_eq!(
        s.twitch.sent("#alpha").await,
        vec!["[discord] Ann: original"]
    );
    // Deleting on Discord does not touch the source message.
    let reqs = s.discord.requests().await;
    assert!(
        !reqs
            .iter()
            .any(|r| r.method == "DELETE"
                && r.path.contains(&format!("/channels/{CH}/messages/{id}")))
    );
}

#[tokio::test]
async fn bot_mode_uses_the_template_and_message_references_for_replies() {
    let s = setup("webhooks = false").await;
    let parent = s
        .discord
        .user_message(CH, "444", "Ann", "question?", json!({}))
        .await;
    let copies = s.discord.wait_posts(CH2, 1, WAIT).await;
    assert_eq!(
        copies[0]["content"],
        "**Ann** (disc\u{03bf}rd): question?".replace("disc\u{03bf}rd", "discord")
    );
    s.discord
        .user_message(
            CH,
            "555",
            "Zoe",
            "answer",
            json!({"message_reference": {"message_id": parent, "channel_id": CH}}),
        )
        .await;
    let copies = s.discord.wait_posts(CH2, 2, WAIT).await;
    assert_eq!(copies[1]["content"], "**Zoe** (discord): answer");
    assert!(
        copies[1]["message_reference"]["message_id"].is_string(),
        "{}",
        copies[1]
    );
    assert_eq!(copies[1]["allowed_mentions"], json!({"parse": []}));
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.discord.{CH}"), 2).await;
    assert_eq!(
        evs[1].reply_to.as_deref(),
        Some(format!("discord:{CH}:{parent}").as_str())
    );
}

#[tokio::test]
async fn a_wrong_token_fails_clearly_and_twitch_keeps_working() {
    let nats = NatsServer::start();
    let discord = FakeDiscord::start("the-real-token").await;
    let twitch = FakeTwitch::start().await;
    let cfg = config(&nats, &discord, &twitch, "").replace("the-real-token", "a-wrong-token");
    let jb = Jetbridge::start(&cfg.replace(
        &format!("\"discord:{CH}\", \"discord:{CH2}\""),
        &format!("\"discord:{CH}\", \"twitch:#beta\""),
    ));
    twitch.wait_joined(&["#alpha", "#beta"], WAIT).await;
    jb.wait_log("Discord refused the bot token", WAIT).await;
    twitch
        .privmsg("#alpha", "ronni", "Ronni", "still here")
        .await;
    assert_eq!(
        twitch.wait_sent("#beta", 1, WAIT).await,
        vec!["[twitch] Ronni: still here"]
    );
    assert!(!jb.logs().contains("a-wrong-token"), "token in logs");
}

#[tokio::test]
async fn forwards_components_v2_polls_and_embeds_arrive_as_text() {
    let s = setup("").await;
    let snapshot_file = s.discord.attachment(CH, "map.png", b"MAP", false);
    // A forward: no content of its own; the words are in the snapshot.
    s.discord
        .user_message(CH, "444", "Ann", "", json!({
            "flags": 1 << 14,
            "message_reference": {"type": 1, "channel_id": "555", "message_id": "556", "guild_id": "557"},
            "message_snapshots": [{"message": {
                "type": 0, "content": "the **original** words", "embeds": [], "attachments": [snapshot_file],
                "timestamp": "2026-11-29T10:00:00.000000+00:00", "edited_timestamp": null, "flags": 0,
                "mentions": [], "mention_roles": [], "components": []}}]
        }))
        .await;
    // Components V2 from another bot: no content; serenity drops the components.
    let bot = json!({"id": "888", "username": "notifier", "global_name": "Notifier", "discriminator": "0",
                     "avatar": null, "bot": true});
    let mut v2 = support::fake_discord::message_json(&s.discord.snowflake(), CH, bot.clone(), "");
    v2["flags"] = json!(1 << 15);
    v2["components"] = json!([{"type": 17, "id": 1, "components": [
        {"type": 10, "id": 2, "content": "We are **live**"},
        {"type": 9, "id": 3, "components": [{"type": 10, "id": 4, "content": "Playing chess"}],
         "accessory": {"type": 2, "id": 5, "style": 5, "label": "Watch", "url": "https://twitch.tv/x"}}]}]);
    s.discord.dispatch("MESSAGE_CREATE", v2).await;
    // An unknown component inside an action row: serenity cannot read the
    // message at all.
    let mut odd = support::fake_discord::message_json(&s.discord.snowflake(), CH, bot.clone(), "");
    odd["components"] = json!([{"type": 1, "components": [{"type": 99, "id": 1}]},
                               {"type": 10, "id": 2, "content": "from the future"}]);
    s.discord.dispatch("MESSAGE_CREATE", odd).await;
    // A poll, and an embed-only announcement.
    s.discord
        .user_message(CH, "444", "Ann", "", json!({"poll": {
            "question": {"text": "Lunch?"},
            "answers": [{"answer_id": 1, "poll_media": {"text": "Pizza"}}, {"answer_id": 2, "poll_media": {"text": "Sushi"}}],
            "expiry": null, "allow_multiselect": false, "layout_type": 1}}))
        .await;
    let mut embed = support::fake_discord::message_json(&s.discord.snowflake(), CH, bot, "");
    embed["embeds"] =
        json!([{"type": "rich", "title": "New video", "description": "Watch it now"}]);
    s.discord.dispatch("MESSAGE_CREATE", embed).await;

    let got = s.twitch.wait_sent("#alpha", 5, WAIT).await;
    assert!(
        got[0].contains("Forwarded: the original words") && got[0].contains("/attachments/"),
        "{got:?}"
    );
    assert!(
        got[1].contains("We are live")
            && got[1].contains("Playing chess")
            && got[1].contains("https://twitch.tv/x"),
        "{got:?}"
    );
    assert!(got[2].contains("from the future"), "{got:?}");
    assert!(
        got[3].contains("Poll: Lunch?")
            && got[3].contains("1. Pizza")
            && got[3].contains("2. Sushi"),
        "{got:?}"
    );
    assert!(
        got[4].contains("New video") && got[4].contains("Watch it now"),
        "{got:?}"
    );
    // What serenity could not read is counted, not dropped in silence.
    s._jb
        .wait_log("inbound message could not be read", WAIT)
        .await;
    let js = js(&s.nats.url()).await;
    let evs = wait_stored(&js, &format!("chat.lobby.discord.{CH}"), 5).await;
    assert!(evs.iter().all(|e| !e.text.is_empty()), "{evs:#?}");
    assert!(evs[0].reply_to.is_none(), "a forward is not a reply");
    assert_eq!(evs[0].attachments.len(), 1);
}
