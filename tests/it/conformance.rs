//! The cases every platform passes, generic over its fake (`FakePlatform` in
//! `tests/support/platform.rs`), each run end to end: a real nats-server, the
//! real jetbridge binary, the fake speaking the platform's protocol. A room
//! holds two channels of the platform; the send API is a second source.
//!
//! Adding a platform: write its fake, implement `FakePlatform`, add one
//! `conformance!` line at the bottom. Test names carry the platform
//! (`discord::echo_is_suppressed`).

use crate::support;
use std::time::Duration;

use crate::support::config::ConfigBuilder;
use crate::support::nats::{NatsServer, free_port};
use crate::support::platform::{Change, FakePlatform, Post};
use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle, wait_stored};
use jetbridge::event::{self, EventKind};

const API_TOKEN: &str = "conformance-api-token";

struct Harness<P> {
    nats: NatsServer,
    fake: P,
    // Kept alive (and its logs printed on failure) for the test's length.
    _jb: Jetbridge,
    http: String,
    ch: [String; 2],
}

impl<P: FakePlatform> Harness<P> {
    async fn start() -> Harness<P> {
        let nats = NatsServer::start();
        let fake = P::start().await;
        let http = format!("127.0.0.1:{}", free_port());
        let ch = fake.channels();
        let refs: Vec<String> = ch.iter().map(|c| format!("{}:{c}", P::NAME)).collect();
        let config = ConfigBuilder::new(&nats)
            .nats("ack_wait = \"3s\"")
            .http(&http, API_TOKEN)
            .section(P::NAME, &fake.section())
            .room("lobby", &[&refs[0], &refs[1]])
            .build();
        let jb = Jetbridge::start(&config);
        fake.wait_connected(WAIT).await;
        jb.wait_ready(&http).await;
        Harness {
            nats,
            fake,
            _jb: jb,
            http,
            ch,
        }
    }

    /// Post through the send API as `author`.
    async fn send(&self, author: &str, text: &str) {
        let body = serde_json::json!({ "text": text, "author": author }).to_string();
        let auth = format!("Bearer {API_TOKEN}");
        let r = support::http::request(
            &self.http,
            "POST",
            "/rooms/lobby/messages",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 201, "send API: {}", r.body);
    }

    fn subject(&self, channel: &str) -> String {
        event::subject("lobby", P::NAME, channel)
    }

    async fn js(&self) -> async_nats::jetstream::Context {
        js(&self.nats.url()).await
    }
}

fn texts(posts: &[Post]) -> Vec<&str> {
    posts.iter().map(|p| p.text.as_str()).collect()
}

async fn inbound_becomes_the_right_event_on_the_right_subject<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    let id = h.fake.say(&h.ch[0], "Ann", "hello there").await;
    let js = h.js().await;
    let evs = wait_stored(&js, &h.subject(&h.ch[0]), 1).await;
    let ev = &evs[0];
    assert_eq!(ev.kind, EventKind::Message);
    assert_eq!(ev.room, "lobby");
    assert_eq!(ev.source.bridge, P::NAME);
    assert_eq!(ev.source.channel, h.ch[0]);
    assert_eq!(ev.source.message_id, id);
    assert_eq!(ev.id, event::message_id(P::NAME, &h.ch[0], &id));
    assert_eq!(ev.author_name(), "Ann");
    assert_eq!(ev.text, "hello there");
    // Relayed to the room's other channel, not back to where it came from.
    h.fake.wait_posts(&h.ch[1], 1, WAIT).await;
    wait_outbound_idle(&js, P::NAME).await;
    assert!(
        h.fake.posts(&h.ch[0]).await.is_empty(),
        "echoed to its source"
    );
}

async fn outbound_keeps_the_authors_name<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    h.send("Ann", "from the web").await;
    for ch in &h.ch {
        let posts = h.fake.wait_posts(ch, 1, WAIT).await;
        assert!(posts[0].shows("Ann"), "author lost in {ch}: {posts:?}");
        assert!(posts[0].text.contains("from the web"), "{posts:?}");
    }
    // Relayed from one channel of the platform to the other, too.
    h.fake.say(&h.ch[0], "Zoe", "hi from zoe").await;
    let posts = h.fake.wait_posts(&h.ch[1], 2, WAIT).await;
    assert!(
        posts[1].shows("Zoe") && posts[1].text.contains("hi from zoe"),
        "{posts:?}"
    );
}

async fn echo_is_suppressed<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    // What jetbridge posted, seen coming in (from another instance, say).
    h.fake.echo(&h.ch[0], "Ann: already relayed").await;
    h.fake.say(&h.ch[0], "Ann", "a real message").await;
    let js = h.js().await;
    let evs = wait_stored(&js, &h.subject(&h.ch[0]), 1).await;
    wait_outbound_idle(&js, P::NAME).await;
    let evs_now = stored(&js, "chat.>").await;
    assert_eq!(evs.len(), 1, "{evs:#?}");
    assert_eq!(evs_now.len(), 1, "our own post was stored: {evs_now:#?}");
    // Only the real message is relayed; the echo is not posted again.
    let relayed = h.fake.wait_posts(&h.ch[1], 1, WAIT).await;
    assert!(relayed[0].text.contains("a real message"), "{relayed:?}");
    let all = h.fake.posts(&h.ch[1]).await;
    let posts = texts(&all);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(!posts[0].contains("already relayed"), "{posts:?}");
}

async fn mentions_and_commands_are_defused<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    let hostile = [
        "/ban ronni",
        ".clear",
        "@everyone free stuff",
        "@here look",
        "<!channel> <!here> <@U0123> <#C0123>",
        "<@123456789012345678> <@&42> <#111>",
        "line one\r\nPRIVMSG #beta :/ban ann",
    ];
    for text in hostile {
        h.send("Mallory", text).await;
    }
    for ch in &h.ch {
        let posts = h.fake.wait_posts(ch, hostile.len(), WAIT).await;
        for p in &posts {
            if let Some(why) = P::live(p) {
                panic!("a post in {ch} {why}: {p:?}");
            }
        }
    }
}

async fn edits_and_deletes_reach_the_copies<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    let id = h.fake.say(&h.ch[0], "Ann", "original").await;
    let copy = h.fake.wait_posts(&h.ch[1], 1, WAIT).await.remove(0);
    let copy_id = copy.id.clone().expect("the platform gives post ids");
    h.fake.edit(&h.ch[0], "Ann", &id, "edited text").await;
    h.fake.delete(&h.ch[0], "Ann", &id).await;
    let js = h.js().await;
    let evs = wait_stored(&js, &h.subject(&h.ch[0]), 3).await;
    let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Message, EventKind::Edit, EventKind::Delete]
    );
    let original = event::message_id(P::NAME, &h.ch[0], &id);
    assert_eq!(evs[1].target.as_deref(), Some(original.as_str()));
    assert_eq!(evs[2].target.as_deref(), Some(original.as_str()));
    wait_outbound_idle(&js, P::NAME).await;
    let changes = h.fake.changes(&h.ch[1]).await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    match &changes[0] {
        Change::Edit { id, text } => {
            assert_eq!(id, &copy_id);
            assert!(text.contains("edited text"), "{text}");
        }
        other => panic!("expected an edit first: {changes:?} ({other:?})"),
    }
    assert_eq!(changes[1], Change::Delete { id: copy_id });
    // The source message itself is left alone.
    assert!(h.fake.changes(&h.ch[0]).await.is_empty());
}

async fn inbound_deletes_become_delete_events<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    let id = h.fake.say(&h.ch[0], "Ann", "delete me").await;
    h.fake.delete(&h.ch[0], "Ann", &id).await;
    let js = h.js().await;
    let original = event::message_id(P::NAME, &h.ch[0], &id);
    let deadline = support::Deadline::after(WAIT);
    let evs = loop {
        let evs = stored(&js, &h.subject(&h.ch[0])).await;
        if evs.iter().any(|e| e.kind == EventKind::Delete) {
            break evs;
        }
        deadline
            .step(|| format!("no delete stored: {evs:#?}"))
            .await;
    };
    // Where a moderator deleted it (Twitch), the audit trail's record of that
    // may come with it; nothing else.
    let (deletes, rest): (Vec<_>, Vec<_>) =
        evs[1..].iter().partition(|e| e.kind == EventKind::Delete);
    assert!(
        rest.iter().all(|e| e.kind == EventKind::Moderation),
        "{rest:#?}"
    );
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].target.as_deref(), Some(original.as_str()));
    assert_eq!(deletes[0].id, event::delete_id(&original));
}

async fn a_429_is_waited_out<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    let after = Duration::from_secs(2);
    h.fake.rate_limit(1, after).await;
    h.send("Ann", "patience").await;
    let mut refused = 0;
    for ch in &h.ch {
        h.fake.wait_posts(ch, 1, WAIT).await;
        let attempts = h.fake.attempts(ch).await;
        if attempts.len() == 1 {
            assert!(attempts[0].1, "{ch}: {attempts:?}");
            continue;
        }
        assert_eq!(
            attempts.len(),
            2,
            "{ch}: one refusal, one retry: {attempts:?}"
        );
        assert!(!attempts[0].1 && attempts[1].1, "{ch}: {attempts:?}");
        let waited = attempts[1].0 - attempts[0].0;
        assert!(
            waited >= after - Duration::from_millis(50),
            "{ch}: retried after {waited:?}"
        );
        refused += 1;
    }
    assert_eq!(refused, 1, "the 429 was never met");
}

/// Wait until the posts in `channel`, read in order, hold each of `lines`
/// (a backlog may have been coalesced into fewer posts), first seen in that
/// order; returns how many were posted again.
///
/// A repeat is within the guarantee (at least once): a connection that drops
/// just after a line was written leaves it unknown whether the platform got it
/// (IRC has no acknowledgement to lose with it), so it is sent again.
async fn wait_lines<P: FakePlatform>(fake: &P, channel: &str, lines: &[String]) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT + WAIT;
    loop {
        let all: Vec<String> = fake
            .posts(channel)
            .await
            .into_iter()
            .map(|p| p.text)
            .collect();
        let joined = all.join("\n");
        if lines.iter().all(|l| joined.contains(l.as_str())) {
            let mut at = 0;
            let mut repeats = 0;
            for l in lines {
                repeats += joined.matches(l.as_str()).count() - 1;
                let pos = joined.find(l.as_str()).unwrap_or_default();
                assert!(pos >= at, "{channel}: {l:?} out of order: {all:?}");
                at = pos;
            }
            return repeats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel}: waited for {lines:?}, have {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_outage_loses_nothing_and_keeps_order<P: FakePlatform>() {
    let h = Harness::<P>::start().await;
    h.send("Ann", "before").await;
    for ch in &h.ch {
        h.fake.wait_posts(ch, 1, WAIT).await;
    }
    h.fake.outage(Duration::from_secs(3)).await;
    let mut lines = vec!["before".to_string()];
    for i in 1..=5 {
        let t = format!("during {i}");
        h.send("Ann", &t).await;
        lines.push(t);
    }
    for ch in &h.ch {
        wait_lines(&h.fake, ch, &lines).await;
    }
    let js = h.js().await;
    wait_outbound_idle(&js, P::NAME).await;
    for ch in &h.ch {
        // Once everything was handled: nothing lost, first seen in order, and
        // at most the line in flight when it went down posted again.
        let repeats = wait_lines(&h.fake, ch, &lines).await;
        assert!(repeats <= 1, "{ch}: {repeats} lines posted again");
    }
}

macro_rules! case {
    ($case:ident) => {
        #[tokio::test]
        async fn $case() {
            super::$case::<P>().await;
        }
    };
}

/// The suite for one platform: its module name, its fake, and the cases that
/// apply to it (every case, less what the platform does not have).
macro_rules! conformance {
    ($platform:ident, $fake:ty, [$($case:ident),* $(,)?]) => {
        mod $platform {
            type P = $fake;
            $(case!($case);)*
        }
    };
}

conformance!(
    twitch,
    crate::support::fake_twitch::FakeTwitch,
    [
        inbound_becomes_the_right_event_on_the_right_subject,
        outbound_keeps_the_authors_name,
        echo_is_suppressed,
        mentions_and_commands_are_defused,
        inbound_deletes_become_delete_events,
        an_outage_loses_nothing_and_keeps_order,
        // Twitch has no edits, gives no ids of our posts to delete, and says
        // "slow down" with a NOTICE, not a 429.
    ]
);
conformance!(
    discord,
    crate::support::fake_discord::FakeDiscord,
    [
        inbound_becomes_the_right_event_on_the_right_subject,
        outbound_keeps_the_authors_name,
        echo_is_suppressed,
        mentions_and_commands_are_defused,
        inbound_deletes_become_delete_events,
        edits_and_deletes_reach_the_copies,
        a_429_is_waited_out,
        an_outage_loses_nothing_and_keeps_order,
    ]
);
conformance!(
    slack,
    crate::support::fake_slack::FakeSlack,
    [
        inbound_becomes_the_right_event_on_the_right_subject,
        outbound_keeps_the_authors_name,
        echo_is_suppressed,
        mentions_and_commands_are_defused,
        inbound_deletes_become_delete_events,
        edits_and_deletes_reach_the_copies,
        a_429_is_waited_out,
        an_outage_loses_nothing_and_keeps_order,
    ]
);
