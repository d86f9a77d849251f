//! Edits and deletions made while jetbridge is away are caught up like
//! messages: a catch-up re-reads the messages stored within
//! `backfill_recheck` and turns what changed into the `edit` and `delete`
//! events a live change would have given, so the copies follow. History that
//! cannot be read deletes nothing.

use std::time::Duration;

use serde_json::json;

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::FakeSlack;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::{Change, FakePlatform};
use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle, wait_until};
use jetbridge::event::{ChatEvent, EventKind};

const DCH: &str = "111111111111111111";
const SCH: &str = "C0001";

struct Setup {
    nats: NatsServer,
    discord: FakeDiscord,
    slack: FakeSlack,
}

impl Setup {
    async fn start() -> Setup {
        Setup {
            nats: NatsServer::start(),
            discord: <FakeDiscord as FakePlatform>::start().await,
            slack: <FakeSlack as FakePlatform>::start().await,
        }
    }

    /// A config listening on `http`.
    fn config(&self, http: &str) -> String {
        ConfigBuilder::new(&self.nats)
            .http(http, "")
            .section("discord", &self.discord.section())
            .section("slack", &self.slack.section())
            .room(
                "lobby",
                &[&format!("discord:{DCH}"), &format!("slack:{SCH}")],
            )
            .build()
    }
}

/// An instance and its HTTP address.
struct Instance {
    jb: Jetbridge,
    http: String,
}

async fn instance(s: &Setup) -> Instance {
    let http = format!("127.0.0.1:{}", free_port());
    let jb = Jetbridge::start(&s.config(&http));
    jb.wait_ready(&http).await;
    Instance { jb, http }
}

/// Wait until `fake`'s changes in `channel` include `want` (in any order).
async fn wait_changes<P: FakePlatform>(fake: &P, channel: &str, want: &[Change]) -> Vec<Change> {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let got = fake.changes(channel).await;
        if want.iter().all(|w| got.contains(w)) {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel}: waited for {want:?}, have {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn of_kind(evs: &[ChatEvent], kind: EventKind) -> Vec<&ChatEvent> {
    evs.iter().filter(|e| e.kind == kind).collect()
}

/// Two messages on each side relayed; jetbridge (`n` instances) stops; one of
/// each is edited and one deleted, and one new one said; jetbridge returns.
async fn edits_and_deletions_while_away(n: usize) {
    let s = Setup::start().await;
    let mut instances = Vec::new();
    for _ in 0..n {
        instances.push(instance(&s).await);
    }
    let d1 = FakePlatform::say(&s.discord, DCH, "Ann", "d1 as said").await;
    let d2 = FakePlatform::say(&s.discord, DCH, "Ann", "d2 spam").await;
    let s1 = FakePlatform::say(&s.slack, SCH, "Zoe", "s1 as said").await;
    let s2 = FakePlatform::say(&s.slack, SCH, "Zoe", "s2 spam").await;
    let on_slack = FakePlatform::wait_posts(&s.slack, SCH, 2, WAIT).await;
    let on_discord = FakePlatform::wait_posts(&s.discord, DCH, 2, WAIT).await;
    let js = js(&s.nats.url()).await;
    wait_outbound_idle(&js, "discord").await;
    wait_outbound_idle(&js, "slack").await;
    for i in &mut instances {
        assert!(i.jb.terminate().await.success());
    }

    s.discord.edit_while_away(DCH, &d1, "d1 edited while away");
    s.discord.delete_while_away(DCH, &d2);
    s.discord
        .message_while_away(DCH, "Ann", "d3 said while away");
    let edited = s.slack.next_ts();
    s.slack
        .edit_while_away(SCH, &s1, "s1 edited while away", &edited);
    s.slack.delete_while_away(SCH, &s2);
    s.slack
        .message_while_away(SCH, "U0002", "s3 said while away");

    for i in &mut instances {
        i.jb.restart();
    }
    for i in &instances {
        i.jb.wait_ready(&i.http).await;
    }
    // Copies by what they say: with two instances, each reads some of
    // Slack's envelopes (Slack spreads them), so the order is theirs.
    let copy = |posts: &[crate::support::platform::Post], said: &str| {
        posts
            .iter()
            .find(|p| p.text.contains(said))
            .and_then(|p| p.id.clone())
            .unwrap_or_else(|| panic!("no copy of {said:?} in {posts:?}"))
    };
    let slack_text = |said: &str| {
        on_slack
            .iter()
            .find(|p| p.text.contains(said))
            .map(|p| p.text.clone())
            .unwrap()
    };
    wait_changes(
        &s.slack,
        SCH,
        &[
            Change::Edit {
                id: copy(&on_slack, "d1 as said"),
                text: slack_text("d1 as said").replace("d1 as said", "d1 edited while away"),
            },
            Change::Delete {
                id: copy(&on_slack, "d2 spam"),
            },
        ],
    )
    .await;
    wait_changes(
        &s.discord,
        DCH,
        &[Change::Delete {
            id: copy(&on_discord, "s2 spam"),
        }],
    )
    .await;
    // The Discord copy of s1 was patched to the new text.
    let discord_changes = FakePlatform::changes(&s.discord, DCH).await;
    assert!(
        discord_changes.iter().any(|c| matches!(c,
            Change::Edit { id, text } if *id == copy(&on_discord, "s1 as said") && text.contains("s1 edited while away"))),
        "{discord_changes:?}"
    );
    FakePlatform::wait_posts(&s.slack, SCH, 3, WAIT).await;
    FakePlatform::wait_posts(&s.discord, DCH, 3, WAIT).await;
    wait_outbound_idle(&js, "discord").await;
    wait_outbound_idle(&js, "slack").await;

    // The four changes are on the stream, each once.
    let evs = stored(&js, "chat.>").await;
    let edits = of_kind(&evs, EventKind::Edit);
    let deletes = of_kind(&evs, EventKind::Delete);
    assert_eq!(edits.len(), 2, "{edits:#?}");
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    let targets: Vec<&str> = edits
        .iter()
        .chain(&deletes)
        .filter_map(|e| e.target.as_deref())
        .collect();
    for (bridge, channel, id) in [
        ("discord", DCH, &d1),
        ("discord", DCH, &d2),
        ("slack", SCH, &s1),
        ("slack", SCH, &s2),
    ] {
        let target = jetbridge::event::message_id(bridge, channel, id);
        assert_eq!(
            targets.iter().filter(|t| **t == target).count(),
            1,
            "{target} in {targets:?}"
        );
    }
    assert!(
        edits
            .iter()
            .any(|e| e.id.ends_with(&format!(":edit:{edited}")))
    );
    // Nothing relayed twice: each side got its two, then the new one.
    assert_eq!(FakePlatform::posts(&s.slack, SCH).await.len(), 3);
    assert_eq!(FakePlatform::posts(&s.discord, DCH).await.len(), 3);
}

#[tokio::test]
async fn edits_and_deletions_made_while_away_reach_the_copies_once() {
    edits_and_deletions_while_away(1).await;
}

#[tokio::test]
async fn two_instances_restarting_store_each_change_once() {
    edits_and_deletions_while_away(2).await;
}

#[tokio::test]
async fn a_discord_edit_during_a_lost_session_reaches_the_copies_after_catch_up() {
    let s = Setup::start().await;
    let i = instance(&s).await;
    let d1 = FakePlatform::say(&s.discord, DCH, "Ann", "said before the outage").await;
    let copy = FakePlatform::wait_posts(&s.slack, SCH, 1, WAIT).await[0]
        .id
        .clone()
        .unwrap();
    let identified = s.discord.identifies().await;
    s.discord.gateway_down_for(Duration::from_secs(3600)).await;
    s.discord
        .edit_while_away(DCH, &d1, "edited during the outage");
    s.discord.gateway_up();
    // A new session (the old one cannot be resumed) catches up.
    wait_until("a new gateway session", WAIT, || {
        i.jb.logs()
            .lines()
            .filter(|l| l.contains("catch-up finished") && l.contains("discord"))
            .count()
            >= 2
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", i.jb.logs()));
    assert!(s.discord.identifies().await > identified);
    let got = wait_changes(
        &s.slack,
        SCH,
        &[Change::Edit {
            id: copy.clone(),
            text: FakePlatform::posts(&s.slack, SCH).await[0]
                .text
                .replace("said before the outage", "edited during the outage"),
        }],
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
}

#[tokio::test]
async fn history_that_cannot_be_read_deletes_nothing() {
    let s = Setup::start().await;
    let mut i = instance(&s).await;
    let d1 = FakePlatform::say(&s.discord, DCH, "Ann", "still there?").await;
    let copy = FakePlatform::wait_posts(&s.slack, SCH, 1, WAIT).await[0]
        .id
        .clone()
        .unwrap();
    let js = js(&s.nats.url()).await;
    wait_outbound_idle(&js, "slack").await;
    let discord_catch_ups = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("catch-up finished") && l.contains("discord"))
            .count()
    };

    // A 500, then a storm of 429s longer than catch-up waits out: each time
    // the message is gone from history, and each time nothing is deleted.
    for failure in [
        (1, 500, json!({"message": "Internal Server Error"})),
        (
            11,
            429,
            json!({"message": "You are being rate limited.", "retry_after": 0.01, "global": false}),
        ),
    ] {
        assert!(i.jb.terminate().await.success());
        s.discord.delete_while_away(DCH, &d1);
        s.discord
            .fail_history(failure.0, failure.1, failure.2)
            .await;
        let before = discord_catch_ups(&i.jb.logs());
        i.jb.restart();
        i.jb.wait_ready(&i.http).await;
        wait_until("discord's catch-up", WAIT, || {
            discord_catch_ups(&i.jb.logs()) > before
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", i.jb.logs()));
        assert!(
            i.jb.logs().contains("cannot read the channel's history"),
            "{}",
            i.jb.logs()
        );
        wait_outbound_idle(&js, "slack").await;
        let evs = stored(&js, "chat.>").await;
        assert!(of_kind(&evs, EventKind::Delete).is_empty(), "{evs:#?}");
        assert!(FakePlatform::changes(&s.slack, SCH).await.is_empty());
    }

    // When history answers again, the deletion is caught up.
    assert!(i.jb.terminate().await.success());
    i.jb.restart();
    i.jb.wait_ready(&i.http).await;
    wait_changes(&s.slack, SCH, &[Change::Delete { id: copy }]).await;
}
