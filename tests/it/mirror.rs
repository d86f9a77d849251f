//! Mirrored deletes end to end against the three fakes: a copy deleted by a
//! moderator on its platform removes the original (with the rights each
//! platform asks for) and every other copy, and one `moderation` event says
//! what each platform answered. jetbridge's own deletions coming back are
//! not taken for a moderator's; `mirror_deletes = false` only stores; two
//! instances act and record once.

use jetbridge::event::ModResult;
use jetbridge::event::{ChatEvent, EventKind, ModAction, ModOrigin};

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::{FakeSlack, USER_TOKEN};
use crate::support::fake_twitch::FakeTwitch;
use crate::support::fake_twitch_api::FakeTwitchApi;
use crate::support::nats::NatsServer;
use crate::support::platform::{Change, FakePlatform};
use crate::support::{Deadline, Jetbridge, WAIT, js, stored, wait_outbound_idle};

const D1: &str = "111111111111111111";
const D2: &str = "222222222222222222";

/// NATS, the three fakes and Twitch's API, and the config of room `lobby`
/// (Slack C0001, Discord D1, Twitch #alpha) and room `quiet` (C0002, D2,
/// #beta, with `mirror_deletes = false`).
struct Three {
    nats: NatsServer,
    slack: FakeSlack,
    discord: FakeDiscord,
    twitch: FakeTwitch,
    api: FakeTwitchApi,
}

impl Three {
    async fn start() -> Three {
        Three {
            nats: NatsServer::start(),
            slack: <FakeSlack as FakePlatform>::start().await,
            discord: <FakeDiscord as FakePlatform>::start().await,
            twitch: <FakeTwitch as FakePlatform>::start().await,
            api: FakeTwitchApi::start().await,
        }
    }

    /// The config; Twitch sends over IRC, or through its API with `api`.
    fn config(&self, slack_extra: &str, api: bool) -> String {
        let keys = self.api.api_keys();
        let keys = if api {
            keys
        } else {
            keys.replace("send = \"api\"", "send = \"irc\"")
        };
        ConfigBuilder::new(&self.nats)
            .section("slack", &format!("{}\n{slack_extra}", self.slack.section()))
            .section("discord", &self.discord.section())
            .section("twitch", &format!("{}\n{keys}", self.twitch.section()))
            .room(
                "lobby",
                &["slack:C0001", &format!("discord:{D1}"), "twitch:#alpha"],
            )
            .room_with(
                "quiet",
                &["slack:C0002", &format!("discord:{D2}"), "twitch:#beta"],
                "mirror_deletes = false",
            )
            .build()
    }

    async fn connected(&self) {
        FakePlatform::wait_connected(&self.slack, WAIT).await;
        FakePlatform::wait_connected(&self.discord, WAIT).await;
        FakePlatform::wait_connected(&self.twitch, WAIT).await;
    }

    /// Wait until every bridge handled everything stored.
    async fn idle(&self) {
        let js = js(&self.nats.url()).await;
        for bridge in ["slack", "discord", "twitch"] {
            wait_outbound_idle(&js, bridge).await;
        }
    }

    /// The moderation events of `room`.
    async fn moderations(&self, room: &str) -> Vec<ChatEvent> {
        let js = js(&self.nats.url()).await;
        stored(&js, &format!("chat.{room}.>"))
            .await
            .into_iter()
            .filter(|e| e.kind == EventKind::Moderation)
            .collect()
    }

    /// Wait for the first moderation event of `room`.
    async fn wait_moderation(&self, room: &str) -> ChatEvent {
        let deadline = Deadline::after(WAIT + WAIT);
        loop {
            if let Some(m) = self.moderations(room).await.into_iter().next() {
                return m;
            }
            deadline
                .step(|| format!("a moderation event in {room}"))
                .await;
        }
    }

    /// Wait until Twitch's API was asked to delete message `id`.
    async fn wait_helix_delete(&self, id: &str) {
        let deadline = Deadline::after(WAIT);
        while !self.api.deleted().iter().any(|d| d == id) {
            deadline
                .step(|| format!("a Helix delete of {id}: {:?}", self.api.deleted()))
                .await;
        }
    }

    /// Slack's `chat.delete` calls of `ts`, each by the token used.
    async fn slack_deletes(&self, ts: &str) -> Vec<String> {
        self.slack
            .calls()
            .await
            .into_iter()
            .filter(|c| c.method == "chat.delete" && c.params["ts"] == ts)
            .map(|c| c.params["_token"].as_str().unwrap_or("bot").to_string())
            .collect()
    }
}

/// The id of jetbridge's first post in Discord channel `channel`.
async fn copy_in(discord: &FakeDiscord, channel: &str) -> String {
    FakePlatform::wait_posts(discord, channel, 1, WAIT).await[0]
        .id
        .clone()
        .expect("a webhook post has an id")
}

fn result<'a>(results: &'a [ModResult], bridge: &str, channel: &str) -> &'a ModResult {
    results
        .iter()
        .find(|r| r.bridge == bridge && r.channel == channel)
        .unwrap_or_else(|| panic!("no result for {bridge}:{channel} in {results:#?}"))
}

#[tokio::test]
async fn a_discord_copy_deleted_by_a_moderator_removes_the_slack_original_and_the_twitch_copy() {
    let t = Three::start().await;
    let _jb = Jetbridge::start(&t.config(&format!("user_token = \"{USER_TOKEN}\""), false));
    t.connected().await;

    let ts = t.slack.say("C0001", "ann", "spam from slack").await;
    let copy = copy_in(&t.discord, D1).await;
    t.twitch
        .wait_for_line("#alpha", "spam from slack", WAIT)
        .await;
    let line = t.twitch.id_of("#alpha", "spam from slack");

    // A Discord moderator deletes the copy (once it is there for everyone).
    t.idle().await;
    t.discord.delete(D1, "mod", &copy).await;

    // The Slack original goes, with the admin's token (the bot's may not).
    t.slack
        .wait_for("the slack original deleted", WAIT, |calls| {
            calls.iter().any(|c| {
                c.method == "chat.delete" && c.params["ts"] == ts && c.params["_token"] == "user"
            })
        })
        .await;
    // The Twitch copy goes through Helix.
    t.wait_helix_delete(&line).await;

    let m = t.wait_moderation("lobby").await;
    let md = m.moderation.as_ref().unwrap();
    assert_eq!(md.action, ModAction::Delete);
    assert_eq!(md.origin, ModOrigin::Mirror);
    assert_eq!(
        md.target.as_deref(),
        Some(format!("slack:C0001:{ts}").as_str())
    );
    assert_eq!(m.source.bridge, "discord");
    assert_eq!(md.results.len(), 3, "{:#?}", md.results);
    assert!(md.results.iter().all(|r| r.ok), "{:#?}", md.results);
    result(&md.results, "slack", "C0001");
    result(&md.results, "twitch", "#alpha");
    result(&md.results, "discord", D1);

    // Twitch tells everyone the bot's line is gone: that is jetbridge's own
    // deletion, not another moderator's.
    t.twitch
        .clearmsg("#alpha", "relaybot", &line, "[slack] ann: spam from slack")
        .await;
    t.idle().await;
    let js = js(&t.nats.url()).await;
    let lobby = stored(&js, "chat.lobby.>").await;
    assert_eq!(
        lobby
            .iter()
            .filter(|e| e.kind == EventKind::Moderation)
            .count(),
        1,
        "one record, and none for our own deletion: {lobby:#?}"
    );
    assert_eq!(t.api.deleted().iter().filter(|d| **d == line).count(), 1);
    assert_eq!(
        t.slack_deletes(&ts).await,
        ["bot", "user"],
        "the bot is refused, the admin's token deletes"
    );

    // With mirror_deletes = false the deletion is stored, and that is all.
    let ts2 = t.slack.say("C0002", "bob", "stays in quiet").await;
    let copy2 = copy_in(&t.discord, D2).await;
    t.twitch
        .wait_for_line("#beta", "stays in quiet", WAIT)
        .await;
    let line2 = t.twitch.id_of("#beta", "stays in quiet");
    t.idle().await;
    t.discord.delete(D2, "mod", &copy2).await;
    let deadline = Deadline::after(WAIT);
    while !stored(&js, &format!("chat.quiet.discord.{D2}"))
        .await
        .iter()
        .any(|e| e.kind == EventKind::Delete)
    {
        deadline
            .step(|| "the deletion in quiet stored".into())
            .await;
    }
    t.idle().await;
    assert!(t.slack_deletes(&ts2).await.is_empty());
    assert!(!t.api.deleted().contains(&line2));
    assert!(t.moderations("quiet").await.is_empty());
}

#[tokio::test]
async fn without_an_admin_token_slack_says_why_and_a_twitch_moderation_reaches_discord_twice_over()
{
    let t = Three::start().await;
    // Twitch sends through its API here: the copies' ids are Helix's.
    let config = t.config("", true);
    // Two instances: each action happens once, and is recorded once.
    let _a = Jetbridge::start(&config);
    let _b = Jetbridge::start(&config);
    t.connected().await;

    // A copy of a Slack message deleted on Discord: the bot token cannot
    // remove the Slack original, and the record says so.
    t.slack.say("C0001", "ann", "from slack").await;
    let copy = copy_in(&t.discord, D1).await;
    t.api.wait_sent(1, WAIT).await;
    let line = t.api.id_of("from slack");
    t.idle().await;
    t.discord.delete(D1, "mod", &copy).await;
    let m = t.wait_moderation("lobby").await;
    let md = m.moderation.unwrap();
    let slack = result(&md.results, "slack", "C0001");
    assert!(!slack.ok);
    assert!(
        slack.error.as_deref().unwrap_or("").contains("user_token"),
        "{slack:?}"
    );
    assert!(result(&md.results, "twitch", "#alpha").ok);
    t.wait_helix_delete(&line).await;

    // A Discord message's Twitch copy removed by a Twitch moderator: the
    // Discord original (the bot's Manage Messages) and the Slack copy go.
    let original = t.discord.say(D1, "dan", "from discord").await;
    let slack_copy = t.slack.wait_posts("C0001", 1, WAIT).await[0]["_ts"]
        .as_str()
        .unwrap()
        .to_string();
    t.api.wait_sent(2, WAIT).await;
    let line2 = t.api.id_of("from discord");
    t.idle().await;
    t.twitch
        .clearmsg("#alpha", "relaybot", &line2, "[discord] dan: from discord")
        .await;
    let deadline = Deadline::after(WAIT + WAIT);
    while !t.discord.changes(D1).await.contains(&Change::Delete {
        id: original.clone(),
    }) {
        deadline
            .step(|| "the discord original deleted".into())
            .await;
    }
    t.slack
        .wait_for("the slack copy deleted", WAIT, |calls| {
            calls
                .iter()
                .any(|c| c.method == "chat.delete" && c.params["ts"] == slack_copy.as_str())
        })
        .await;
    let deadline = Deadline::after(WAIT + WAIT);
    while t.moderations("lobby").await.len() < 2 {
        deadline.step(|| "the second record".into()).await;
    }
    t.idle().await;

    let mods = t.moderations("lobby").await;
    assert_eq!(mods.len(), 2, "once each: {mods:#?}");
    let second = mods[1].moderation.as_ref().unwrap();
    assert_eq!(mods[1].source.bridge, "twitch");
    assert_eq!(
        second.target.as_deref(),
        Some(format!("discord:{D1}:{original}").as_str())
    );
    assert!(second.results.iter().all(|r| r.ok), "{:#?}", second.results);
    assert!(result(&second.results, "discord", D1).ok);
    assert!(result(&second.results, "slack", "C0001").ok);
    // Once each, with two instances running.
    let discord_deletes = t
        .discord
        .changes(D1)
        .await
        .into_iter()
        .filter(|c| {
            *c == Change::Delete {
                id: original.clone(),
            }
        })
        .count();
    assert_eq!(discord_deletes, 1);
    assert_eq!(t.slack_deletes(&slack_copy).await.len(), 1);
    assert_eq!(t.api.deleted().iter().filter(|d| **d == line).count(), 1);
}
