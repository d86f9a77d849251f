//! The moderation hold (`hold` on a room), end to end across the three
//! platforms: a message removed within the hold (CLEARMSG, a CLEARCHAT ban, a
//! deletion on Discord or Slack) never reaches any platform but stays on the
//! stream with its delete; one that is kept arrives after the hold, not before.

use crate::support;
use std::time::{Duration, Instant};

use crate::support::config::ConfigBuilder;
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_slack::FakeSlack;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, stored};
use jetbridge::event::EventKind;

const HOLD: Duration = Duration::from_secs(2);

#[tokio::test]
async fn removed_within_the_hold_never_reaches_any_platform_and_kept_ones_wait_it_out() {
    let nats = NatsServer::start();
    let (tw, dc, sl) = (
        FakeTwitch::start().await,
        <FakeDiscord as FakePlatform>::start().await,
        <FakeSlack as FakePlatform>::start().await,
    );
    let (twc, dcc, slc) = (
        tw.channels()[0].clone(),
        dc.channels()[0].clone(),
        sl.channels()[0].clone(),
    );
    let http = format!("127.0.0.1:{}", free_port());
    let config = ConfigBuilder::new(&nats)
        .http(&http, "")
        .section("twitch", &tw.section())
        .section("discord", &dc.section())
        .section("slack", &sl.section())
        .room_with(
            "stage",
            &[
                &format!("twitch:{twc}"),
                &format!("discord:{dcc}"),
                &format!("slack:{slc}"),
            ],
            &format!("hold = \"{}s\"", HOLD.as_secs()),
        )
        .build();
    let jb = Jetbridge::start(&config);
    jb.wait_ready(&http).await;
    let js = js(&nats.url()).await;

    // Spam, removed by moderators within the hold: a CLEARMSG, a ban of a
    // raider who said two things, a Discord and a Slack deletion.
    let spam = FakePlatform::say(&tw, &twc, "spammer", "buy followers").await;
    FakePlatform::delete(&tw, &twc, "spammer", &spam).await;
    FakePlatform::say(&tw, &twc, "raider", "raid line one").await;
    FakePlatform::say(&tw, &twc, "raider", "raid line two").await;
    tw.clearchat(&twc, "raider").await;
    let d = FakePlatform::say(&dc, &dcc, "Troll", "discord spam").await;
    FakePlatform::delete(&dc, &dcc, "Troll", &d).await;
    let s = FakePlatform::say(&sl, &slc, "Troll", "slack spam").await;
    FakePlatform::delete(&sl, &slc, "Troll", &s).await;

    // What is kept, said after the spam: it arrives everywhere else, after
    // the hold.
    let said = Instant::now();
    FakePlatform::say(&tw, &twc, "ann", "kept from twitch").await;
    FakePlatform::say(&dc, &dcc, "Bea", "kept from discord").await;
    FakePlatform::say(&sl, &slc, "Cy", "kept from slack").await;

    let tw_posts = FakePlatform::wait_posts(&tw, &twc, 2, WAIT).await;
    let dc_posts = FakePlatform::wait_posts(&dc, &dcc, 2, WAIT).await;
    let sl_posts = FakePlatform::wait_posts(&sl, &slc, 2, WAIT).await;
    let all: Vec<&str> = tw_posts
        .iter()
        .chain(&dc_posts)
        .chain(&sl_posts)
        .map(|p| p.text.as_str())
        .collect();
    for kept in ["kept from twitch", "kept from discord", "kept from slack"] {
        assert_eq!(
            all.iter().filter(|t| t.contains(kept)).count(),
            2,
            "{kept:?} in {all:?}"
        );
    }
    // Posts keep order, and the spam came first: had any been posted, it
    // would be here by now.
    for spam in ["followers", "raid line", "spam"] {
        assert!(
            !all.iter().any(|t| t.contains(spam)),
            "{spam:?} posted: {all:?}"
        );
    }
    // Not before the hold: a message's hold counts from its own time, which
    // is after `said` (less a millisecond of rounding).
    for (name, attempts) in [
        ("twitch", FakePlatform::attempts(&tw, &twc).await),
        ("discord", FakePlatform::attempts(&dc, &dcc).await),
        ("slack", FakePlatform::attempts(&sl, &slc).await),
    ] {
        for (at, _) in attempts {
            let waited = at.duration_since(said);
            assert!(
                waited + Duration::from_millis(2) >= HOLD,
                "{name}: posted {waited:?} after it was said, within the hold of {HOLD:?}"
            );
        }
    }

    // The stream keeps everything that was said, and each removal.
    let evs = stored(&js, "chat.stage.>").await;
    let messages = evs.iter().filter(|e| e.kind == EventKind::Message).count();
    let deletes: Vec<&str> = evs
        .iter()
        .filter(|e| e.kind == EventKind::Delete)
        .filter_map(|e| e.target.as_deref())
        .collect();
    assert_eq!(messages, 8, "{evs:#?}");
    assert_eq!(deletes.len(), 5, "{deletes:?}");
    let held_back = support::http::get(&http, "/metrics").await.body;
    assert!(
        held_back
            .lines()
            .any(|l| l.starts_with("jetbridge_held_back_total")),
        "{held_back}"
    );
}
