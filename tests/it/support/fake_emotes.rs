//! Fake BTTV, FFZ and 7TV APIs on one local server (`/bttv/3`, `/ffz/v1`,
//! `/7tv/v3`), answering with the shapes the real ones give: global emotes, a
//! channel's by Twitch room id, 404 for a channel a provider does not know.
//! A provider can be made to fail (HTTP 500) or to hang until released.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::fake_twitch::room_id;

/// How a provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Answer,
    Fail,
    /// Requests wait until the provider is set to another mode.
    Hang,
}

#[derive(Default)]
struct St {
    modes: Mutex<HashMap<&'static str, Mode>>,
    /// Requests received per path.
    requests: Mutex<HashMap<String, usize>>,
    /// Requests waiting now (hanging), per provider.
    waiting: Mutex<HashMap<&'static str, usize>>,
    changed: Notify,
    /// Where images are served, when this fake serves them.
    images: Option<String>,
}

pub struct FakeEmotes {
    pub addr: SocketAddr,
    st: Arc<St>,
    release: watch::Sender<u64>,
}

impl FakeEmotes {
    /// Answers naming the providers' real CDNs.
    pub async fn start() -> FakeEmotes {
        Self::start_with(false).await
    }

    /// Answers whose FFZ and 7TV images this fake serves itself (`/img/…`),
    /// for a browser with no way out.
    pub async fn serving_images() -> FakeEmotes {
        Self::start_with(true).await
    }

    async fn start_with(images: bool) -> FakeEmotes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = Arc::new(St {
            images: images.then(|| format!("http://{addr}/img")),
            ..Default::default()
        });
        let (release, _) = watch::channel(0);
        let app = Router::new()
            .fallback(handle)
            .with_state((st.clone(), release.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeEmotes { addr, st, release }
    }

    /// The `emote_api` table pointing at this fake.
    pub fn emote_api(&self) -> String {
        let base = format!("http://{}", self.addr);
        format!(
            "emote_api = {{ bttv = \"{base}/bttv/3\", ffz = \"{base}/ffz/v1\", 7tv = \"{base}/7tv/v3\" }}"
        )
    }

    /// `provider` (`bttv`, `ffz`, `7tv`) answers this way from now on;
    /// requests hanging are released into the new mode.
    pub fn set(&self, provider: &'static str, mode: Mode) {
        self.st.modes.lock().unwrap().insert(provider, mode);
        self.release.send_modify(|n| *n += 1);
    }

    /// Requests made to `path` (`/7tv/v3/emote-sets/global`).
    pub fn requests(&self, path: &str) -> usize {
        self.st
            .requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Wait until `n` requests to `provider` hang.
    pub async fn wait_hanging(&self, provider: &str, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.st.changed.notified();
            let now = self
                .st
                .waiting
                .lock()
                .unwrap()
                .get(provider)
                .copied()
                .unwrap_or(0);
            if now >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{provider}: {now} requests hanging, wanted {n}");
            }
        }
    }

    /// Requests to `provider` hanging now.
    pub fn hanging(&self, provider: &str) -> usize {
        self.st
            .waiting
            .lock()
            .unwrap()
            .get(provider)
            .copied()
            .unwrap_or(0)
    }
}

type AppState = (Arc<St>, watch::Sender<u64>);

async fn handle(State((st, release)): State<AppState>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/img/") {
        return image(&path);
    }
    *st.requests.lock().unwrap().entry(path.clone()).or_default() += 1;
    let provider: &'static str = match path.split('/').nth(1) {
        Some("bttv") => "bttv",
        Some("ffz") => "ffz",
        Some("7tv") => "7tv",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut released = release.subscribe();
    loop {
        let mode = st
            .modes
            .lock()
            .unwrap()
            .get(provider)
            .copied()
            .unwrap_or(Mode::Answer);
        match mode {
            Mode::Answer => break,
            Mode::Fail => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "upstream unavailable").into_response();
            }
            Mode::Hang => {
                *st.waiting.lock().unwrap().entry(provider).or_default() += 1;
                st.changed.notify_waiters();
                let _ = released.changed().await;
                *st.waiting.lock().unwrap().entry(provider).or_default() -= 1;
            }
        }
    }
    match answer(&path) {
        Some(body) => {
            let mut body = body.to_string();
            if let Some(images) = &st.images {
                body = body
                    .replace("https://cdn.frankerfacez.com", &format!("{images}/ffz"))
                    .replace("//cdn.frankerfacez.com", &format!("{images}/ffz"))
                    .replace("//cdn.7tv.app", &format!("{images}/7tv"));
            }
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "message": "not found" })),
        )
            .into_response(),
    }
}

/// The room id the fake knows channel emotes for (`#alpha`).
pub fn known_room() -> String {
    room_id("#alpha")
}

fn answer(path: &str) -> Option<Value> {
    let room = known_room();
    let body = match path {
        "/bttv/3/cached/emotes/global" => json!([
            { "id": "54fa925e01e468494b85b54d", "code": "OhMyGoodness", "imageType": "png", "animated": false, "userId": "5561169bd6b9d206222a8c19", "modifier": false },
            { "id": "5849c9a4f52be01a7ee5f79d", "code": "SoSnowy", "imageType": "gif", "animated": true, "userId": "5561169bd6b9d206222a8c19", "modifier": true }
        ]),
        p if p == format!("/bttv/3/cached/users/twitch/{room}") => json!({
            "id": "5f1b0186cf6d2144653d2970", "bots": [], "avatar": "https://static-cdn.jtvnw.net/x.png",
            "channelEmotes": [
                { "id": "5f1b0186cf6d2144653d2971", "code": "catJAM", "imageType": "gif", "animated": true, "userId": "5f1b0186cf6d2144653d2970" }
            ],
            "sharedEmotes": [
                { "id": "5b1740221c5a6065a7bad4b5", "code": "pepeJAM", "imageType": "gif", "animated": true,
                  "user": { "id": "1", "name": "someone", "displayName": "Someone", "providerId": "2" } }
            ]
        }),
        "/ffz/v1/set/global" => json!({
            "default_sets": [3],
            "sets": {
                "3": { "id": 3, "_type": 1, "title": "Global Emotes", "emoticons": [
                    { "id": 9, "name": "ZreknarF", "height": 30, "width": 40, "public": false, "hidden": false,
                      "modifier": false, "modifier_flags": 0,
                      "urls": { "1": "https://cdn.frankerfacez.com/emote/9/1", "2": "https://cdn.frankerfacez.com/emote/9/2" } },
                    { "id": 720507, "name": "ffzHyper", "modifier": true, "modifier_flags": 1,
                      "urls": { "1": "https://cdn.frankerfacez.com/emote/720507/1" } }
                ] },
                "4330": { "id": 4330, "emoticons": [
                    { "id": 1, "name": "NotForEveryone", "urls": { "1": "https://cdn.frankerfacez.com/emote/1/1" } }
                ] }
            },
            "users": { "4330": ["someone"] }
        }),
        p if p == format!("/ffz/v1/room/id/{room}") => json!({
            "room": { "_id": 1, "twitch_id": room.parse::<u64>().unwrap_or(0), "id": "alpha", "set": 555, "moderator_badge": null },
            "sets": { "555": { "id": 555, "emoticons": [
                { "id": 2, "name": "monkaS", "modifier": false, "modifier_flags": 0,
                  "urls": { "1": "//cdn.frankerfacez.com/emote/2/1" } }
            ] } }
        }),
        "/7tv/v3/emote-sets/global" => json!({
            "id": "01HKQT8EWR000ESSWF3625XCS4", "name": "Global Emotes", "flags": 0,
            "emotes": [
                { "id": "01F6MZGCNG000255K4X1K0NNYW", "name": "RainTime", "flags": 1, "timestamp": 1,
                  "data": { "id": "01F6MZGCNG000255K4X1K0NNYW", "name": "RainTime", "flags": 256, "animated": true,
                    "host": { "url": "//cdn.7tv.app/emote/01F6MZGCNG000255K4X1K0NNYW",
                      "files": [ { "name": "1x.avif", "format": "AVIF" }, { "name": "1x.webp", "format": "WEBP" } ] } } }
            ]
        }),
        p if p == format!("/7tv/v3/users/twitch/{room}") => json!({
            "id": room, "platform": "TWITCH", "username": "alpha",
            "emote_set": { "id": "01J0", "name": "alpha's emotes", "emotes": [
                { "id": "01GB2R1EKG0009X7PEW3EX8F4T", "name": "peepoHey", "flags": 0,
                  "data": { "flags": 0, "host": { "url": "//cdn.7tv.app/emote/01GB2R1EKG0009X7PEW3EX8F4T",
                    "files": [ { "name": "1x.webp", "format": "WEBP" } ] } } }
            ] }
        }),
        _ => return None,
    };
    Some(body)
}

/// A small picture for an emote image path: a face, or for a zero-width
/// emote (7TV's RainTime) rain drawn over whatever is below it.
fn image(path: &str) -> Response {
    let svg = if path.contains("01F6MZGCNG000255K4X1K0NNYW") {
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><g fill="#4fc3f7"><rect x="5" y="1" width="3" height="9" rx="1.5"/><rect x="15" y="3" width="3" height="9" rx="1.5"/><rect x="25" y="0" width="3" height="9" rx="1.5"/></g></svg>"##
    } else {
        let fill = if path.contains("/ffz/") {
            "#f5c518"
        } else {
            "#66bb6a"
        };
        return (
            [(header::CONTENT_TYPE, "image/svg+xml")],
            format!(
                r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="17" r="14" fill="{fill}"/><circle cx="11" cy="14" r="2.5"/><circle cx="21" cy="14" r="2.5"/><path d="M9 21q7 6 14 0" stroke="#000" stroke-width="2.5" fill="none"/></svg>"##
            ),
        )
            .into_response();
    };
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}
