//! Twitch catch-up through a recent-messages service (`history_url`): lines
//! said while jetbridge was stopped, or while its connection was down, are
//! read from the service on the next join and relayed once each, in order;
//! lines the service marks deleted are not, and a stored message deleted
//! meanwhile is deleted. Without `history_url` nothing is asked for.

use crate::support::config::ConfigBuilder;
use crate::support::fake_twitch::{FakeTwitch, privmsg_line};
use crate::support::fake_twitch_api::FakeTwitchApi;
use crate::support::nats::NatsServer;
use crate::support::platform::FakePlatform;
use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle};

fn config(nats: &NatsServer, fake: &FakeTwitch, history: Option<&FakeTwitchApi>) -> String {
    let mut section = fake.section();
    if let Some(h) = history {
        section.push_str(&format!("\nhistory_url = \"{}\"", h.history_url()));
    }
    ConfigBuilder::new(nats)
        .section("twitch", &section)
        .room("lobby", &["twitch:#src", "twitch:#dst"])
        .build()
}

/// NATS, fake Twitch and the history service, and jetbridge relaying #src
/// to #dst on them (catching up from the service when `history` is set).
struct Setup {
    _nats: NatsServer,
    fake: FakeTwitch,
    history: FakeTwitchApi,
    js: async_nats::jetstream::Context,
    jb: Jetbridge,
}

impl Setup {
    async fn start(history: bool) -> Setup {
        let nats = NatsServer::start();
        let fake = FakeTwitch::start().await;
        let service = FakeTwitchApi::start().await;
        let js = js(&nats.url()).await;
        let jb = Jetbridge::start(&config(&nats, &fake, history.then_some(&service)));
        fake.wait_joined(&["#src", "#dst"], WAIT).await;
        Setup {
            _nats: nats,
            fake,
            history: service,
            js,
            jb,
        }
    }
}

/// A line said in #src: seen live when jetbridge is there, and always kept
/// by the history service.
struct Chat<'a> {
    fake: &'a FakeTwitch,
    history: &'a FakeTwitchApi,
    n: usize,
}

impl<'a> Chat<'a> {
    fn new(fake: &'a FakeTwitch, history: &'a FakeTwitchApi) -> Self {
        Chat {
            fake,
            history,
            n: 0,
        }
    }

    fn line(&mut self, text: &str) -> (String, String) {
        self.n += 1;
        let id = format!("00000000-aaaa-4000-8000-{:012}", self.n);
        let line = privmsg_line("#src", "ann", "Ann", &id, text, "");
        self.history.saw("#src", &line);
        (id, line)
    }

    /// Said while jetbridge listens.
    async fn live(&mut self, text: &str) -> String {
        let (id, line) = self.line(text);
        self.fake.raw("#src", line).await;
        id
    }

    /// Said while jetbridge is away.
    fn away(&mut self, text: &str) -> String {
        self.line(text).0
    }
}

#[tokio::test]
async fn a_restart_relays_the_lines_said_meanwhile_once_each_in_order() {
    let mut s = Setup::start(true).await;
    let (fake, history, js) = (&s.fake, &s.history, &s.js);
    let mut chat = Chat::new(fake, history);
    chat.live("one").await;
    let deleted_later = chat.live("two").await;
    fake.wait_for_line("#dst", "two", WAIT).await;
    wait_outbound_idle(js, "twitch").await;
    s.jb.terminate().await;

    chat.away("three");
    let removed = chat.away("four");
    history.deleted_in_history("#src", &removed);
    history.deleted_in_history("#src", &deleted_later);
    chat.away("five");

    s.jb.restart();
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    chat.live("six").await;
    let dst = fake.wait_for_line("#dst", "six", WAIT).await;
    assert_eq!(
        dst,
        vec![
            "[twitch] Ann: one",
            "[twitch] Ann: two",
            "[twitch] Ann: three",
            "[twitch] Ann: five",
            "[twitch] Ann: six",
        ],
        "{}",
        s.jb.logs()
    );
    wait_outbound_idle(js, "twitch").await;
    let evs = stored(js, "chat.lobby.twitch.src").await;
    let texts: Vec<&str> = evs.iter().map(|e| e.text.as_str()).collect();
    // "two" was deleted on Twitch while jetbridge was away: its delete is
    // stored (with the id a live CLEARMSG gives).
    assert_eq!(
        texts,
        ["one", "two", "", "three", "five", "six"],
        "{evs:#?}"
    );
    assert_eq!(
        evs[2].id,
        format!("twitch:src:{deleted_later}:delete"),
        "{evs:#?}"
    );
    // Asked once: for #src at the restart. Nothing of #dst is stored, and
    // nothing was at the first start (a new channel is not backfilled).
    assert_eq!(history.history_requests(), 1);
}

#[tokio::test]
async fn a_lost_connection_catches_up_on_the_next_join() {
    let s = Setup::start(true).await;
    let (fake, history, js) = (&s.fake, &s.history, &s.js);
    let mut chat = Chat::new(fake, history);
    chat.live("before").await;
    fake.wait_for_line("#dst", "before", WAIT).await;

    // Twitch goes away; chat goes on without us.
    fake.down_for(std::time::Duration::from_secs(3600)).await;
    chat.away("while down 1");
    chat.away("while down 2");
    fake.up();
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    chat.live("after").await;
    let dst = fake.wait_for_line("#dst", "after", WAIT).await;
    assert_eq!(
        dst,
        vec![
            "[twitch] Ann: before",
            "[twitch] Ann: while down 1",
            "[twitch] Ann: while down 2",
            "[twitch] Ann: after",
        ],
        "{}",
        s.jb.logs()
    );
    wait_outbound_idle(js, "twitch").await;
    assert_eq!(stored(js, "chat.lobby.twitch.src").await.len(), 4);
}

#[tokio::test]
async fn without_history_url_nothing_is_asked_and_nothing_said_meanwhile_comes() {
    let mut s = Setup::start(false).await;
    let (fake, history, js) = (&s.fake, &s.history, &s.js);
    let mut chat = Chat::new(fake, history);
    chat.live("one").await;
    fake.wait_for_line("#dst", "one", WAIT).await;
    wait_outbound_idle(js, "twitch").await;
    s.jb.terminate().await;
    chat.away("said while away");
    s.jb.restart();
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    chat.live("two").await;
    let dst = fake.wait_for_line("#dst", "two", WAIT).await;
    assert_eq!(dst, vec!["[twitch] Ann: one", "[twitch] Ann: two"]);
    assert_eq!(history.history_requests(), 0);
}
