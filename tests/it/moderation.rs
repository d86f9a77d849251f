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

/// Discord's audit log as the gateway streams it: a moderator's ban, timeout,
/// lifted timeout and deletion of someone's message are each one
/// `moderation` event with who acted, in the mapped channels of the guild
/// (the channel the deletion names); what the bot itself did is not.
#[tokio::test]
async fn discord_audit_log_entries_are_moderation_events_with_who_acted() {
    use crate::support::config::ConfigBuilder;
    use crate::support::fake_discord::{BOT_ID, FakeDiscord, GUILD_ID};
    use crate::support::nats::NatsServer;
    use crate::support::platform::FakePlatform;
    use serde_json::json;

    let nats = NatsServer::start();
    let fake = <FakeDiscord as FakePlatform>::start().await;
    let [d1, d2] = fake.channels();
    let config = ConfigBuilder::new(&nats)
        .section("discord", &fake.section())
        .room(
            "lobby",
            &[&format!("discord:{d1}"), &format!("discord:{d2}")],
        )
        .build();
    let _jb = Jetbridge::start(&config);
    FakePlatform::wait_connected(&fake, WAIT).await;
    let js = js(&nats.url()).await;

    let until = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let entries = [
        json!({"id": "3001", "action_type": 22, "user_id": "700", "target_id": "800", "reason": "raid"}),
        json!({"id": "3002", "action_type": 24, "user_id": "700", "target_id": "801",
               "changes": [{"key": "communication_disabled_until", "new_value": until}]}),
        json!({"id": "3003", "action_type": 72, "user_id": "700", "target_id": "802",
               "options": {"channel_id": d1, "count": "1"}}),
        // The bot's own deletion (a mirrored delete): recorded elsewhere.
        json!({"id": "3004", "action_type": 72, "user_id": BOT_ID, "target_id": "803",
               "options": {"channel_id": d1, "count": "1"}}),
        // Not moderation.
        json!({"id": "3005", "action_type": 10, "user_id": "700", "target_id": d1}),
    ];
    for mut e in entries {
        e["guild_id"] = json!(GUILD_ID);
        fake.dispatch("GUILD_AUDIT_LOG_ENTRY_CREATE", e).await;
    }
    // A marker after them: once it is stored, they were read.
    let marker = FakePlatform::say(&fake, &d1, "ann", "marker").await;
    let deadline = crate::support::Deadline::after(WAIT);
    loop {
        let evs = stored(&js, "chat.lobby.>").await;
        if evs.iter().any(|e| e.source.message_id == marker) {
            break;
        }
        deadline.step(|| "the marker".into()).await;
    }
    let mods: Vec<_> = stored(&js, "chat.lobby.>")
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Moderation)
        .collect();
    let m: Vec<(String, ModAction, String)> = mods
        .iter()
        .map(|e| {
            let md = e.moderation.as_ref().unwrap();
            (
                e.source.channel.clone(),
                md.action,
                md.user.as_ref().unwrap().id.clone(),
            )
        })
        .collect();
    assert_eq!(
        m,
        [
            (d1.clone(), ModAction::Ban, "800".to_string()),
            (d2.clone(), ModAction::Ban, "800".to_string()),
            (d1.clone(), ModAction::Timeout, "801".to_string()),
            (d2.clone(), ModAction::Timeout, "801".to_string()),
            (d1.clone(), ModAction::Delete, "802".to_string()),
        ],
        "{mods:#?}"
    );
    for e in &mods {
        let md = e.moderation.as_ref().unwrap();
        assert_eq!(md.actor.as_ref().unwrap().id, "700");
        assert_eq!(md.origin, ModOrigin::Platform);
    }
    assert_eq!(
        mods[0].moderation.as_ref().unwrap().reason.as_deref(),
        Some("raid")
    );
    let timeout = mods[2].moderation.as_ref().unwrap().duration_s.unwrap();
    // Measured from when jetbridge read it: at most the ten minutes given.
    assert!((1..=600).contains(&timeout), "{timeout}");
}
