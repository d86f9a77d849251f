//! The audit trail on the stream: what a Twitch moderator does (CLEARMSG,
//! CLEARCHAT as a timeout, a ban or a cleared chat) is one `moderation` event
//! beside the deletes it causes, stored once also with two instances reading.

use jetbridge::event::{EventKind, ModAction, ModOrigin};

use crate::support::fake_twitch::room_id;
use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle};

#[tokio::test]
async fn twitch_moderation_is_one_moderation_event_each_also_with_two_instances() {
    let (nats, fake, config) = crate::support::twitch_src_dst().await;
    let _a = Jetbridge::start(&config);
    let _b = Jetbridge::start(&config);
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.joined_connections("#src").await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two instances never joined"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let js = js(&nats.url()).await;

    let spam = fake
        .privmsg("#src", "spammer", "Spammer", "buy followers")
        .await;
    fake.privmsg("#src", "troll", "Troll", "rude").await;
    fake.wait_for_line("#dst", "rude", WAIT).await;
    fake.clearmsg("#src", "spammer", &spam, "buy followers")
        .await;
    fake.clearchat("#src", "troll").await;
    let ban = format!(
        "@room-id={};target-user-id=4242;tmi-sent-ts=1726118378465 :tmi.twitch.tv CLEARCHAT #src :spammer",
        room_id("#src")
    );
    fake.raw("#src", ban).await;
    let clear = format!(
        "@room-id={};tmi-sent-ts=1726118379465 :tmi.twitch.tv CLEARCHAT #src",
        room_id("#src")
    );
    fake.raw("#src", clear).await;
    fake.privmsg("#src", "ann", "Ann", "marker").await;
    fake.wait_for_line("#dst", "marker", WAIT).await;
    wait_outbound_idle(&js, "twitch").await;

    let evs = stored(&js, "chat.lobby.twitch.src").await;
    let mods: Vec<_> = evs
        .iter()
        .filter(|e| e.kind == EventKind::Moderation)
        .collect();
    assert_eq!(mods.len(), 4, "once each: {mods:#?}");
    let m: Vec<_> = mods
        .iter()
        .map(|e| e.moderation.as_ref().unwrap())
        .collect();
    assert_eq!(m[0].action, ModAction::Delete);
    assert_eq!(
        m[0].target.as_deref(),
        Some(format!("twitch:src:{spam}").as_str())
    );
    assert_eq!(m[0].user.as_ref().unwrap().name, "spammer");
    assert_eq!(m[1].action, ModAction::Timeout);
    assert_eq!(m[1].duration_s, Some(600));
    assert_eq!(m[1].user.as_ref().unwrap().name, "troll");
    assert_eq!(m[2].action, ModAction::Ban);
    assert_eq!(m[2].user.as_ref().unwrap().id, "4242");
    assert_eq!(m[3].action, ModAction::Clear);
    assert!(
        m.iter()
            .all(|m| m.origin == ModOrigin::Platform && m.results.is_empty())
    );
    assert!(m.iter().all(|m| m.actor.is_none()), "IRC does not say who");
    // The deletes are there too, once each: the spam and the troll's line.
    let deletes = evs.iter().filter(|e| e.kind == EventKind::Delete).count();
    assert_eq!(deletes, 2, "{evs:#?}");
    // Nothing of it is posted anywhere.
    assert_eq!(
        fake.sent("#dst").await,
        [
            "[twitch] Spammer: buy followers",
            "[twitch] Troll: rude",
            "[twitch] Ann: marker"
        ]
    );
}
