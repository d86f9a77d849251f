//! Past one machine: jetbridge on a three-node NATS cluster, given the seed
//! list, with `replicas = 3`. Losing the node that leads the chat stream in
//! the middle of traffic loses nothing and keeps order, and inbound keeps
//! working after it.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::FakeTwitch;
use crate::support::nats::NatsCluster;
use crate::support::platform::FakePlatform;
use crate::support::{Deadline, Jetbridge, WAIT};
use async_nats::jetstream;

/// What the chat stream's (or a bucket's) JetStream reports: replicas and leader.
async fn replicas_and_leader(js: &jetstream::Context, stream: &str) -> (usize, Option<String>) {
    let mut s = js.get_stream(stream).await.expect("stream exists");
    let info = s.info().await.expect("stream info");
    let leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
    (info.config.num_replicas, leader)
}

#[tokio::test]
async fn losing_the_stream_leader_loses_nothing_keeps_order_and_inbound_goes_on() {
    let mut cluster = NatsCluster::start(3);
    let fake = <FakeTwitch as FakePlatform>::start().await;
    let config = ConfigBuilder::with_url(&cluster.seeds())
        .nats("replicas = 3")
        .nats("ack_wait = \"5s\"")
        .section(
            "twitch",
            &format!(
                "{}\ncoalesce_after = \"1h\"\nformat = \"[{{name}}] {{text}}\"",
                fake.section()
            ),
        )
        .room(
            "lobby",
            &[
                "{ bridge = \"twitch\", channel = \"#alpha\", direction = \"in\" }",
                "{ bridge = \"twitch\", channel = \"#beta\", direction = \"out\" }",
            ],
        )
        .build();
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#alpha", "#beta"], WAIT).await;
    // A cluster elects its JetStream leaders first: give it longer.
    jb.wait_log("stream ready", WAIT + WAIT).await;
    // Logged once the outbound consumer is open (the lease comes before it).
    jb.wait_log("reading the stream", WAIT).await;

    let node = cluster.alive();
    let client = async_nats::connect(format!("nats://127.0.0.1:{}", node.port))
        .await
        .expect("connect to the cluster");
    let js = jetstream::new(client);
    // Everything jetbridge creates has the configured replicas.
    for stream in ["CHAT", "KV_jetbridge-leases", "KV_jetbridge-ids-twitch"] {
        let (replicas, _) = replicas_and_leader(&js, stream).await;
        assert_eq!(replicas, 3, "{stream}");
    }
    let consumer = js
        .get_stream("CHAT")
        .await
        .unwrap()
        .consumer_info("jetbridge-out-twitch")
        .await
        .expect("the outbound consumer");
    assert_eq!(consumer.config.num_replicas, 3);

    // Traffic at 100 messages a second; the stream's leader is killed after 60.
    let total = 200;
    let sender = {
        let fake = std::sync::Arc::new(fake);
        let f = fake.clone();
        let task = tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(10));
            for i in 0..total {
                pace.tick().await;
                f.privmsg("#alpha", "ann", "Ann", &format!("m{i}")).await;
            }
        });
        (fake, task)
    };
    let (fake, traffic) = sender;
    fake.wait_sent("#beta", 60, WAIT).await;
    let (_, leader) = replicas_and_leader(&js, "CHAT").await;
    let leader = leader.expect("the stream has a leader");
    cluster.kill(&leader);
    traffic.await.unwrap();

    // Every message arrives in #beta, in order (a repeat is allowed: the
    // guarantee is at least once).
    let want: Vec<String> = (0..total).map(|i| format!("[Ann] m{i}")).collect();
    let deadline = Deadline::after(WAIT + WAIT + WAIT);
    let got = loop {
        let got = fake.sent("#beta").await;
        let seen: HashSet<&String> = got.iter().collect();
        if want.iter().all(|w| seen.contains(w)) {
            break got;
        }
        deadline
            .step(|| {
                let missing: Vec<&String> = want.iter().filter(|w| !seen.contains(w)).collect();
                format!(
                    "killed {leader}; missing {} of {total}: {missing:?}\n{}",
                    missing.len(),
                    jb.logs()
                )
            })
            .await;
    };
    let mut firsts = Vec::new();
    let mut seen = HashSet::new();
    for line in &got {
        if seen.insert(line.clone()) {
            firsts.push(line.clone());
        }
    }
    assert_eq!(firsts, want, "order changed after losing {leader}");
    let repeats = got.len() - firsts.len();
    eprintln!("killed stream leader {leader}; {total} delivered, {repeats} repeated");
    assert!(
        repeats <= jetbridge::router::RECORDING_DEPTH,
        "{repeats} repeats"
    );

    // Inbound still works afterwards.
    fake.privmsg("#alpha", "ann", "Ann", "after the loss").await;
    fake.wait_for("the message after the loss", WAIT, |lines| {
        lines.iter().any(|l| l.ends_with("[Ann] after the loss"))
    })
    .await;
}
