//! Notices on the chat page and overlay (a real headless Chromium): each
//! shown with its line and styled by type (an announcement in its colour, a
//! sub, a raid), and `?notices=0` hides them. The screenshot is the README's.

use crate::page::setup;

const LINES: &str = include_str!("../fixtures/twitch/usernotice.txt");

/// The collected line whose `id` tag starts with `id`, said in #alpha.
fn line(id: &str) -> String {
    let l = LINES
        .lines()
        .find(|l| l.contains(&format!(";id={id}")))
        .unwrap_or_else(|| panic!("no line {id}"));
    let (head, rest) = l.split_once(" USERNOTICE #").unwrap();
    let words = rest.split_once(' ').map(|(_, w)| format!(" {w}"));
    format!("{head} USERNOTICE #alpha{}", words.unwrap_or_default())
}

#[tokio::test]
async fn notices_show_what_they_are_styled_by_type_and_notices_0_hides_them() {
    let mut p = setup("", "", "").await;
    p.open("lobby", "?overlay=1").await;
    p.browser.busy_background().await;
    p.fake.privmsg("#alpha", "ann", "Ann", "gg everyone").await;
    // A blue announcement, a resub with the subscriber's words, a raid.
    for id in ["2a5c4a3e", "db25007f", "bb99dda7"] {
        p.fake.raw("#alpha", line(id)).await;
    }
    p.fake
        .privmsg("#alpha", "zoe", "Zoe", "welcome raiders")
        .await;
    p.browser
        .wait_rows("five rows", |rows| rows.len() == 5)
        .await;
    let shown = p
        .json(
            "[...document.querySelectorAll('.msg')].map(r => [r.className.replace(/\\s+/g, ' ').trim(), \
             (r.querySelector('.event-line') || {}).textContent || '', [...((r.querySelector('.text') || {}).childNodes || [])].map(n => n.alt || n.textContent).join('')])",
        )
        .await;
    let shown: Vec<(String, String, String)> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown[0], ("msg".into(), "".into(), "gg everyone".into()));
    assert_eq!(
        shown[1],
        (
            "msg event k-announcement c-blue".into(),
            "twitchAnnouncement".into(),
            "Giveaway at 8pm, stay tuned!".into()
        )
    );
    assert_eq!(shown[2].0, "msg event k-sub");
    assert_eq!(shown[2].1, "twitchronni has subscribed for 6 months!");
    assert_eq!(shown[2].2, "Great stream -- keep it up!");
    assert_eq!(shown[3].0, "msg event k-raid");
    assert_eq!(
        shown[3].1,
        "twitch430 raiders from iamelisabete have joined!"
    );
    assert_eq!(shown[3].2, "", "a notice without words is its line alone");
    let shot = p.browser.screenshot("overlay-notices.png").await;
    // The README shows this picture.
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/overlay-notices.png");
    let _ = std::fs::copy(&shot, docs);

    p.open("lobby", "?overlay=1&notices=0").await;
    let rows = p
        .browser
        .wait_rows("the two messages", |rows| rows.len() == 2)
        .await;
    assert_eq!(rows[0].1, "gg everyone");
    assert_eq!(rows[1].1, "welcome raiders");
    drop(p.jb);
}
