//! Per-message costs on the hot path: a Twitch IRC line normalized into an event
//! and serialized, one event rendered for each platform, a subject built.
//!
//!     cargo bench --bench hotpath

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use jetbridge::bridge::Bridge;
use jetbridge::platforms as registry;

use jetbridge::event::{self, Author, ChatEvent};

const LINE: &str = "@badge-info=;badges=broadcaster/1;color=#0000FF;display-name=Ronni;emotes=25:6-10;first-msg=0;flags=;id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=0;returning-chatter=0;room-id=1337;subscriber=0;tmi-sent-ts=1700000000123;turbo=0;user-id=1337;user-type= :ronni!ronni@ronni.tmi.twitch.tv PRIVMSG #streamer :hello Kappa this is **chat** with a link https://example.org/x";

fn bridges() -> Vec<Arc<dyn Bridge>> {
    let cfg = registry::from_toml_str(
        "[twitch]\nlogin = \"bot\"\ntoken = \"t\"\n[discord]\ntoken = \"d\"\n[slack]\napp_token = \"xapp\"\nbot_token = \"xoxb\"\n",
    )
    .expect("config");
    cfg.bridges
        .values()
        .map(|b| registry::build(b, &cfg).expect("bridge"))
        .collect()
}

fn normalize(c: &mut Criterion) {
    c.bench_function("twitch PRIVMSG line -> event -> JSON", |b| {
        b.iter(|| {
            let irc = twitch_irc::message::IRCMessage::parse(black_box(LINE)).expect("irc");
            let Ok(twitch_irc::message::ServerMessage::Privmsg(m)) =
                twitch_irc::message::ServerMessage::try_from(irc)
            else {
                unreachable!("a PRIVMSG")
            };
            let mut ev = jetbridge::platforms::twitch::privmsg_to_event("twitch", &m);
            ev.room = "lobby".into();
            black_box(ev.to_json())
        })
    });
}

fn render(c: &mut Criterion) {
    let mut ev = ChatEvent::message(
        "twitch",
        "#streamer",
        "b34ccfc7",
        Author {
            id: "1337".into(),
            name: "Ronni".into(),
            ..Default::default()
        },
        "hello \\*\\*world\\*\\* and @everyone, see [docs](https://example.org/docs) <3".into(),
    );
    ev.room = "lobby".into();
    for bridge in bridges() {
        c.bench_function(&format!("render one event for {}", bridge.name()), |b| {
            b.iter(|| black_box(bridge.render(black_box(&ev), "chan")))
        });
    }
}

fn subject(c: &mut Criterion) {
    c.bench_function("subject for a channel", |b| {
        b.iter(|| {
            black_box(event::subject(
                "lobby",
                "twitch",
                black_box("#Some.Streamer*"),
            ))
        })
    });
}

criterion_group!(benches, normalize, render, subject);
criterion_main!(benches);
