//! The emote providers' APIs as they answer today: BTTV (`/cached/emotes/global`,
//! `/cached/users/twitch/{id}`), FFZ (`/set/global`, `/room/id/{id}`) and 7TV
//! (`/emote-sets/global`, `/users/twitch/{id}`). A channel a provider does not
//! know (404, or no emote set) has no emotes there, which is not a failure.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::config::{EmoteApi, EmoteProvider};

/// Whose emotes: everyone's, or one channel's (its room id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Room(String),
}

/// One emote's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub url: String,
    pub zero_width: bool,
}

/// Emote name → image.
pub type Set = HashMap<String, Image>;

/// Why a provider's emotes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("GET {url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("GET {url}: unexpected answer: {source}")]
    Answer {
        url: String,
        source: serde_json::Error,
    },
}

/// BTTV's global emotes drawn over the emote before them.
const BTTV_ZERO_WIDTH: [&str; 8] = [
    "SoSnowy",
    "IceCold",
    "SantaHat",
    "TopHat",
    "ReinDeer",
    "CandyCane",
    "cvMask",
    "cvHazmat",
];
/// FFZ modifier flag: the modifier only changes how the emote before it is
/// drawn (flipped, rainbow…), which a plain image cannot show.
const FFZ_HIDDEN: u64 = 1;
/// 7TV: the active emote's zero-width flag, and the emote's own.
const SEVENTV_ACTIVE_ZERO_WIDTH: u64 = 1;
const SEVENTV_ZERO_WIDTH: u64 = 1 << 8;

pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("jetbridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// `provider`'s emotes of `scope`.
pub async fn fetch(
    http: &reqwest::Client,
    api: &EmoteApi,
    provider: EmoteProvider,
    scope: &Scope,
) -> Result<Set, FetchError> {
    let base = api.base(provider);
    let url = match (provider, scope) {
        (EmoteProvider::Bttv, Scope::Global) => format!("{base}/cached/emotes/global"),
        (EmoteProvider::Bttv, Scope::Room(id)) => format!("{base}/cached/users/twitch/{id}"),
        (EmoteProvider::Ffz, Scope::Global) => format!("{base}/set/global"),
        (EmoteProvider::Ffz, Scope::Room(id)) => format!("{base}/room/id/{id}"),
        (EmoteProvider::SevenTv, Scope::Global) => format!("{base}/emote-sets/global"),
        (EmoteProvider::SevenTv, Scope::Room(id)) => format!("{base}/users/twitch/{id}"),
    };
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| FetchError::Request {
            url: url.clone(),
            source: e.without_url(),
        })?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND && matches!(scope, Scope::Room(_)) {
        return Ok(Set::new());
    }
    if !status.is_success() {
        return Err(FetchError::Status { url, status });
    }
    let body = resp.bytes().await.map_err(|e| FetchError::Request {
        url: url.clone(),
        source: e.without_url(),
    })?;
    let parsed = match provider {
        EmoteProvider::Bttv => bttv(&body, scope),
        EmoteProvider::Ffz => ffz(&body, scope),
        EmoteProvider::SevenTv => seven_tv(&body, scope),
    };
    parsed.map_err(|source| FetchError::Answer { url, source })
}

/// An image URL as a provider gives it (`//cdn…` is https), if it is one.
fn image_url(url: &str) -> Option<String> {
    let url = if url.starts_with("//") {
        format!("https:{url}")
    } else {
        url.to_string()
    };
    let parsed = url::Url::parse(&url).ok()?;
    matches!(parsed.scheme(), "https" | "http").then_some(url)
}

/// An emote name as one word of chat.
fn is_word(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && !name.chars().any(char::is_whitespace)
}

#[derive(Deserialize)]
struct BttvEmote {
    id: String,
    code: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BttvUser {
    channel_emotes: Vec<BttvEmote>,
    shared_emotes: Vec<BttvEmote>,
}

fn bttv(body: &[u8], scope: &Scope) -> Result<Set, serde_json::Error> {
    let emotes: Vec<BttvEmote> = match scope {
        Scope::Global => serde_json::from_slice(body)?,
        Scope::Room(_) => {
            let user: BttvUser = serde_json::from_slice(body)?;
            user.channel_emotes
                .into_iter()
                .chain(user.shared_emotes)
                .collect()
        }
    };
    let mut set = Set::new();
    for e in emotes {
        let id_ok = !e.id.is_empty() && e.id.chars().all(|c| c.is_ascii_alphanumeric());
        if !id_ok || !is_word(&e.code) {
            continue;
        }
        let zero_width = *scope == Scope::Global && BTTV_ZERO_WIDTH.contains(&e.code.as_str());
        set.insert(
            e.code,
            Image {
                url: format!("https://cdn.betterttv.net/emote/{}/1x", e.id),
                zero_width,
            },
        );
    }
    Ok(set)
}

#[derive(Deserialize)]
struct FfzEmote {
    name: String,
    urls: HashMap<String, String>,
    #[serde(default)]
    modifier: bool,
    #[serde(default)]
    modifier_flags: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FfzSet {
    emoticons: Vec<FfzEmote>,
}

#[derive(Deserialize)]
struct FfzRoomInfo {
    set: u64,
}

#[derive(Deserialize)]
struct FfzAnswer {
    #[serde(default)]
    default_sets: Vec<u64>,
    room: Option<FfzRoomInfo>,
    #[serde(default)]
    sets: HashMap<String, FfzSet>,
}

fn ffz(body: &[u8], scope: &Scope) -> Result<Set, serde_json::Error> {
    let mut answer: FfzAnswer = serde_json::from_slice(body)?;
    // Global: the sets everyone has (not the ones of particular users);
    // a room: its own set.
    let wanted: Vec<u64> = match scope {
        Scope::Global => answer.default_sets.clone(),
        Scope::Room(_) => answer.room.iter().map(|r| r.set).collect(),
    };
    let mut set = Set::new();
    for id in wanted {
        let Some(s) = answer.sets.remove(&id.to_string()) else {
            continue;
        };
        for e in s.emoticons {
            if !is_word(&e.name) || (e.modifier && e.modifier_flags & FFZ_HIDDEN != 0) {
                continue;
            }
            let Some(url) = e.urls.get("1").and_then(|u| image_url(u)) else {
                continue;
            };
            set.insert(
                e.name,
                Image {
                    url,
                    zero_width: e.modifier,
                },
            );
        }
    }
    Ok(set)
}

#[derive(Deserialize)]
struct SevenTvFile {
    name: String,
}

#[derive(Deserialize)]
struct SevenTvHost {
    url: String,
    #[serde(default)]
    files: Vec<SevenTvFile>,
}

#[derive(Deserialize)]
struct SevenTvData {
    #[serde(default)]
    flags: u64,
    host: SevenTvHost,
}

#[derive(Deserialize)]
struct SevenTvEmote {
    name: String,
    #[serde(default)]
    flags: u64,
    /// Absent for an emote deleted since it was added to the set.
    data: Option<SevenTvData>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SevenTvSet {
    emotes: Vec<SevenTvEmote>,
}

#[derive(Deserialize)]
struct SevenTvUser {
    emote_set: Option<SevenTvSet>,
}

fn seven_tv(body: &[u8], scope: &Scope) -> Result<Set, serde_json::Error> {
    let emotes = match scope {
        Scope::Global => serde_json::from_slice::<SevenTvSet>(body)?.emotes,
        Scope::Room(_) => {
            serde_json::from_slice::<SevenTvUser>(body)?
                .emote_set
                .unwrap_or_default()
                .emotes
        }
    };
    let mut set = Set::new();
    for e in emotes {
        let Some(data) = e.data else { continue };
        // The smallest WebP, as the 7TV web client picks.
        let file = data
            .host
            .files
            .iter()
            .find(|f| f.name == "1x.webp")
            .or(data.host.files.first())
            .map_or("1x.webp", |f| f.name.as_str());
        let Some(url) = image_url(&format!("{}/{file}", data.host.url)) else {
            continue;
        };
        if !is_word(&e.name) {
            continue;
        }
        let zero_width =
            e.flags & SEVENTV_ACTIVE_ZERO_WIDTH != 0 || data.flags & SEVENTV_ZERO_WIDTH != 0;
        set.insert(e.name, Image { url, zero_width });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Scope {
        Scope::Room("1337".into())
    }

    #[test]
    fn bttv_global_and_channel_answers() {
        let global = br#"[{"id":"54fa925e01e468494b85b54d","code":"OhMyGoodness","imageType":"png","animated":false,"userId":"5561169bd6b9d206222a8c19","modifier":false},
            {"id":"5e76d338d6581c3724c0f0b2","code":"cvHazmat","imageType":"png","animated":false,"userId":"5561169bd6b9d206222a8c19","modifier":true}]"#;
        let set = bttv(global, &Scope::Global).unwrap();
        assert_eq!(
            set["OhMyGoodness"].url,
            "https://cdn.betterttv.net/emote/54fa925e01e468494b85b54d/1x"
        );
        assert!(!set["OhMyGoodness"].zero_width);
        assert!(set["cvHazmat"].zero_width);

        let user = br#"{"id":"5f1b","bots":[],"avatar":"https://x","channelEmotes":[{"id":"5f1b0186cf6d2144653d2970","code":"catJAM","imageType":"gif","animated":true,"userId":"5f1b"}],
            "sharedEmotes":[{"id":"5b1740221c5a6065a7bad4b5","code":"pepeJAM","imageType":"gif","animated":true,"user":{"id":"1","name":"x","displayName":"X","providerId":"2"}},
            {"id":"../evil","code":"bad","imageType":"png","animated":false}]}"#;
        let set = bttv(user, &room()).unwrap();
        assert_eq!(set.len(), 2, "{set:?}");
        assert!(set.contains_key("catJAM") && set.contains_key("pepeJAM"));
    }

    #[test]
    fn ffz_default_sets_rooms_and_modifiers() {
        let global = br#"{"default_sets":[3],"sets":{"3":{"id":3,"_type":1,"title":"Global Emotes","emoticons":[
            {"id":9,"name":"ZreknarF","height":30,"width":40,"public":false,"hidden":false,"modifier":false,"modifier_flags":0,"urls":{"1":"https://cdn.frankerfacez.com/emote/9/1","2":"https://cdn.frankerfacez.com/emote/9/2"}},
            {"id":720507,"name":"ffzHyper","modifier":true,"modifier_flags":1,"urls":{"1":"https://cdn.frankerfacez.com/emote/720507/1"}},
            {"id":57,"name":"ffzCursed","modifier":true,"modifier_flags":0,"urls":{"1":"//cdn.frankerfacez.com/emote/57/1"}}]},
            "4330":{"id":4330,"emoticons":[{"id":1,"name":"OnlyForSomeUsers","urls":{"1":"https://cdn.frankerfacez.com/emote/1/1"}}]}},
            "users":{"4330":["someone"]}}"#;
        let set = ffz(global, &Scope::Global).unwrap();
        assert_eq!(set.len(), 2, "{set:?}");
        assert_eq!(
            set["ZreknarF"].url,
            "https://cdn.frankerfacez.com/emote/9/1"
        );
        assert_eq!(
            set["ffzCursed"],
            Image {
                url: "https://cdn.frankerfacez.com/emote/57/1".into(),
                zero_width: true
            }
        );

        let room_answer = br#"{"room":{"_id":1,"twitch_id":1337,"id":"streamer","set":555,"moderator_badge":null},
            "sets":{"555":{"id":555,"emoticons":[{"id":2,"name":"monkaS","urls":{"1":"https://cdn.frankerfacez.com/emote/2/1"}}]}}}"#;
        assert!(ffz(room_answer, &room()).unwrap().contains_key("monkaS"));
    }

    #[test]
    fn seven_tv_sets_users_and_zero_width() {
        let global = br#"{"id":"01HKQT8EWR000ESSWF3625XCS4","name":"Global Emotes","emotes":[
            {"id":"01F6MZGCNG000255K4X1K0NNYW","name":"RainTime","flags":1,"timestamp":1,"data":{"id":"01F6MZGCNG000255K4X1K0NNYW","name":"RainTime","flags":256,"animated":true,
              "host":{"url":"//cdn.7tv.app/emote/01F6MZGCNG000255K4X1K0NNYW","files":[{"name":"1x.avif","format":"AVIF"},{"name":"1x.webp","format":"WEBP"}]}}},
            {"id":"01GB2R1EKG0009X7PEW3EX8F4T","name":"peepoHey","flags":0,"data":{"flags":0,"host":{"url":"//cdn.7tv.app/emote/01GB2R1EKG0009X7PEW3EX8F4T","files":[{"name":"1x.webp","format":"WEBP"}]}}},
            {"id":"gone","name":"Deleted","flags":0,"data":null}]}"#;
        let set = seven_tv(global, &Scope::Global).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            set["RainTime"],
            Image {
                url: "https://cdn.7tv.app/emote/01F6MZGCNG000255K4X1K0NNYW/1x.webp".into(),
                zero_width: true
            }
        );
        assert!(!set["peepoHey"].zero_width);

        let user = br#"{"id":"1337","platform":"TWITCH","username":"streamer","emote_set":null}"#;
        assert!(seven_tv(user, &room()).unwrap().is_empty());
    }
}
