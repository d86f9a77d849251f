//! Every chat line of the collection (tests/fixtures/twitch/privmsg.txt: real
//! captures, lines with tags twitch-irc refuses, lines with and without the
//! optional tags) replayed into a channel through the fake IRC server is
//! stored once, with its text and its author, and relayed once, in order.

use crate::support::{Jetbridge, WAIT, js, stored, wait_outbound_idle, wait_stored};

const LINES: &str = include_str!("../fixtures/twitch/privmsg.txt");

/// Each line said in `channel`, with an id of its own (some captures share
/// one), and the words it carries.
fn lines_in(channel: &str) -> Vec<(String, String)> {
    LINES
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            let (head, rest) = l.split_once(" PRIVMSG #").unwrap();
            let (_, words) = rest.split_once(" :").unwrap();
            let start = head.find(";id=").expect("an id tag");
            let end = head[start + 1..].find(';').unwrap() + start + 1;
            let head = format!(
                "{};id=c0ffee{i:02}-0000-4000-8000-000000000000{}",
                &head[..start],
                &head[end..]
            );
            let said = words
                .strip_prefix("\u{1}ACTION ")
                .and_then(|w| w.strip_suffix('\u{1}'))
                .unwrap_or(words);
            (
                format!("{head} PRIVMSG {channel} :{words}"),
                said.to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_collected_chat_line_is_stored_once_with_its_text_and_author_and_relayed_once() {
    let (nats, fake, config) = crate::support::twitch_src_dst().await;
    let jb = Jetbridge::start(&config);
    fake.wait_joined(&["#src", "#dst"], WAIT).await;
    let js = js(&nats.url()).await;
    let lines = lines_in("#src");
    assert_eq!(lines.len(), 27);
    for (line, _) in &lines {
        fake.raw("#src", line.clone()).await;
    }
    let evs = wait_stored(&js, "chat.lobby.twitch.src", lines.len()).await;
    let dst = fake.wait_sent("#dst", lines.len(), WAIT).await;
    wait_outbound_idle(&js, "twitch").await;
    assert_eq!(
        stored(&js, "chat.>").await.len(),
        lines.len(),
        "{}",
        jb.logs()
    );
    for (i, ((_, said), ev)) in lines.iter().zip(&evs).enumerate() {
        assert_eq!(
            ev.source.message_id,
            format!("c0ffee{i:02}-0000-4000-8000-000000000000"),
            "stored once each, in order"
        );
        let plain = jetbridge::render::markup_to_plain(&ev.text);
        assert_eq!(plain.trim(), said.trim(), "line {i}");
        let author = ev.author.as_ref().expect("an author");
        assert!(!author.name.trim().is_empty(), "line {i}: {author:?}");
        assert!(!author.id.is_empty(), "line {i}: {author:?}");
        // Relayed once, in order, with who said it.
        assert!(
            dst[i].starts_with(&format!("[twitch] {}: ", author.name.trim())),
            "line {i}: {}",
            dst[i]
        );
    }
    // What the repairs could not keep is left out, not made up.
    let nameless = evs
        .iter()
        .find(|e| e.text == "no display-name tag")
        .unwrap();
    assert_eq!(nameless.author.as_ref().unwrap().name, "nodisplayname");
}
