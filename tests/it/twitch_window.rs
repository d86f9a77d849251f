//! Twitch lines go out on a connection jetbridge owns, with a window of
//! unconfirmed lines per channel; when that connection dies with the window
//! in flight, the window goes out again, in order, before anything new.

use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, wait_outbound_idle, wait_stored, wait_until};

/// jetbridge's window per channel (`twitch::outbox::WINDOW`).
const WINDOW: usize = 32;

#[tokio::test]
async fn a_dropped_connection_with_a_full_window_sends_it_again_in_order() {
    let nats = NatsServer::start();
    let fake = FakeTwitch::start().await;
    // Coalescing would join the lines held behind the window into one.
    let config = ConfigBuilder::new(&nats)
        .section(
            "twitch",
            &format!(
                "{}\ncoalesce_after = \"1h\"\nformat = \"{{text}}\"",
                fake.section()
            ),
        )
        .room("lobby", &["twitch:#src", "twitch:#dst"])
        .build();
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let js = js(&nats.url()).await;

    // The writing connection is up and answered.
    fake.privmsg("#src", "ann", "Ann", "warm-up").await;
    fake.wait_sent("#dst", 1, WAIT).await;

    // Twitch stops answering: it takes the first 10 lines it sees, and the
    // rest are lost on the way.
    const TAKEN: usize = 10;
    const SAID: usize = 40;
    fake.hold_answers(TAKEN);
    for i in 1..=SAID {
        fake.privmsg("#src", "ann", "Ann", &format!("m{i}")).await;
    }
    // Every line is stored before the connections go (reading is not what
    // is tested here).
    wait_stored(&js, "chat.lobby.twitch.src", SAID + 1).await;
    wait_until("a full window in flight", WAIT, || fake.held() >= WINDOW)
        .await
        .unwrap();
    assert_eq!(
        fake.held(),
        WINDOW,
        "no more than the window goes out unanswered"
    );
    fake.release_and_drop().await;

    let want = format!("m{SAID}");
    let got = fake.wait_for_line("#dst", &want, WAIT * 2).await;
    let said: Vec<String> = (1..=SAID).map(|i| format!("m{i}")).collect();
    let mut expected = vec!["warm-up".to_string()];
    // What the dead socket delivered, then everything again, in order.
    expected.extend(said[..TAKEN].iter().cloned());
    expected.extend(said.iter().cloned());
    assert_eq!(got, expected, "{}", jb.logs());

    // Everything was answered and recorded: nothing is left to deliver, and
    // nothing more is sent.
    wait_outbound_idle(&js, "twitch").await;
    assert_eq!(fake.sent("#dst").await, expected);
    assert!(
        jb.logs()
            .contains("sending again the lines twitch did not confirm"),
        "{}",
        jb.logs()
    );
}

#[tokio::test]
async fn a_line_twitch_refuses_is_dropped_with_its_notice_and_the_next_ones_go() {
    let (nats, fake, config) = crate::support::twitch_src_dst().await;
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let js = js(&nats.url()).await;

    fake.refuse_next(1, "msg_duplicate");
    for text in ["first", "second", "third"] {
        fake.privmsg("#src", "ann", "Ann", text).await;
    }
    let got = fake.wait_for_line("#dst", "third", WAIT).await;
    wait_outbound_idle(&js, "twitch").await;
    // The refused line is not taken, not sent again, and holds nothing up.
    assert_eq!(got.len(), 2, "{got:?}\n{}", jb.logs());
    assert!(
        got[0].ends_with("second") && got[1].ends_with("third"),
        "{got:?}"
    );
    assert_eq!(fake.privmsg_count().await, 2, "{}", jb.logs());
    let logs = jb.logs();
    assert!(logs.contains("twitch refused a line"), "{logs}");
    assert!(logs.contains("msg_duplicate"), "{logs}");
}
