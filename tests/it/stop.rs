//! A stop (SIGTERM, as every rolling deploy sends) loses nothing it
//! acknowledged: Slack forgets an envelope once it is acknowledged, so an
//! instance may acknowledge one only once its event is queued, and a stop
//! queues what it read before it goes. What it never acknowledged, Slack hands
//! to another connection.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::config::ConfigBuilder;
use crate::support::fake_slack::{FakeSlack, message};
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Deadline, Jetbridge, WAIT, js, stored};

const SCH: &str = "C0001";

#[tokio::test]
async fn stopping_an_instance_mid_stream_loses_no_acknowledged_slack_envelope() {
    let nats = NatsServer::start();
    let slack = <FakeSlack as FakePlatform>::start().await;
    // Catch-up would hide a loss (it reads the history): off.
    let config = ConfigBuilder::new(&nats)
        .section("slack", &format!("{}\nbackfill = false", slack.section()))
        .room("lobby", &[&format!("slack:{SCH}")])
        .build();
    let _steady = Jetbridge::start(&config);
    slack.wait_open_sockets(1, WAIT).await;
    // A new instance knows no user yet and each lookup is slow: events wait
    // in it while the stop comes.
    slack.slow_users_info(Duration::from_millis(500));

    let mut sent = Vec::new();
    let mut user = 1000;
    for round in 0..5 {
        let mut rolling = Jetbridge::start(&config);
        slack.wait_open_sockets(2, WAIT).await;
        for i in 0..16 {
            user += 1;
            let ts = slack.next_ts();
            let text = format!("round {round} line {i}");
            slack
                .send_event(message(SCH, &format!("U{user}"), &text, &ts))
                .await;
            sent.push(ts);
        }
        let status = rolling.terminate().await;
        assert!(status.success(), "{status:?}\n{}", rolling.logs());
        slack.wait_open_sockets(1, WAIT).await;
    }

    // Everything acknowledged (by either instance, or handed again to the
    // one left) is on the stream, once.
    let js = js(&nats.url()).await;
    let deadline = Deadline::after(WAIT * 3);
    loop {
        // Cheap reads while waiting: the fake's count and the stream's.
        let unacked = slack.unacked().await;
        let count = match js.get_stream("CHAT").await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        if unacked == 0 && count >= sent.len() as u64 {
            break;
        }
        deadline
            .step(|| {
                format!(
                    "every envelope acknowledged and stored: {unacked} unacknowledged, {count} of {} stored",
                    sent.len()
                )
            })
            .await;
    }
    let ids: Vec<String> = stored(&js, "chat.>")
        .await
        .iter()
        .map(|e| e.source.message_id.clone())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "stored twice: {ids:?}");
    let missing: Vec<&String> = sent.iter().filter(|ts| !unique.contains(ts)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never stored: {missing:?}"
    );
    // How often a stop left work for Slack to hand out again (information:
    // how much a stop gets done in its time is the machine's business).
    eprintln!(
        "{} envelopes, {} handed out again after a stop",
        sent.len(),
        slack.redelivered()
    );
}
