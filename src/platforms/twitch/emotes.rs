//! Third-party emotes of Twitch channels (BTTV, FFZ, 7TV): each provider's
//! global emotes and those of every joined channel (by the room id its
//! ROOMSTATE names) are fetched in the background, kept, refreshed now and
//! then, and looked up by the reader for the exact words of a message. A
//! provider that is slow or down never delays a message: the lookup reads what
//! is cached, and an emote not fetched yet simply has no image.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{EmoteApi, EmoteProvider};
use super::providers::{self, Scope, Set};
use crate::event::Emote;

/// How often a fetched set is fetched again.
const REFRESH: Duration = Duration::from_secs(30 * 60);
/// How soon a failed fetch is tried again.
const RETRY: Duration = Duration::from_secs(2 * 60);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type Key = (Scope, EmoteProvider);

/// What has been fetched, shared by the reader (lookups) and the fetcher.
pub struct Catalog {
    providers: Vec<EmoteProvider>,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Each provider's last good set per scope.
    sets: HashMap<Key, Arc<Set>>,
    /// When each was last fetched (successfully or not).
    fetched: HashMap<Key, (Instant, bool)>,
    /// The sets of a scope merged, the first provider listed winning a name.
    merged: HashMap<Scope, Arc<Set>>,
}

impl Catalog {
    pub fn new(providers: &[EmoteProvider]) -> Catalog {
        let mut seen = Vec::new();
        for p in providers {
            if !seen.contains(p) {
                seen.push(*p);
            }
        }
        Catalog {
            providers: seen,
            inner: RwLock::new(Inner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.providers.is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Plain data replaced whole; a panic elsewhere cannot leave it torn.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Add to `emotes` the images for words of `text` that name an emote of
    /// channel `room_id` or a global one, unless `emotes` names them already
    /// (Twitch's own come first). A channel's emote hides a global one of the
    /// same name.
    pub fn add_to(&self, room_id: &str, text: &str, emotes: &mut Vec<Emote>) {
        let inner = self.read();
        let room = inner.merged.get(&Scope::Room(room_id.to_string()));
        let global = inner.merged.get(&Scope::Global);
        if room.is_none_or(|s| s.is_empty()) && global.is_none_or(|s| s.is_empty()) {
            return;
        }
        for word in text.split_whitespace() {
            if emotes.iter().any(|e| e.name == word) {
                continue;
            }
            let image = room
                .and_then(|s| s.get(word))
                .or_else(|| global.and_then(|s| s.get(word)));
            if let Some(image) = image {
                emotes.push(Emote {
                    name: word.to_string(),
                    url: image.url.clone(),
                    zero_width: image.zero_width,
                });
            }
        }
    }

    /// Keep `set` as `provider`'s emotes of `scope`.
    fn store(&self, scope: &Scope, provider: EmoteProvider, set: Set) {
        let mut inner = self.write();
        inner.sets.insert((scope.clone(), provider), Arc::new(set));
        let mut merged = Set::new();
        for p in self.providers.iter().rev() {
            if let Some(s) = inner.sets.get(&(scope.clone(), *p)) {
                merged.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        inner.merged.insert(scope.clone(), Arc::new(merged));
    }

    fn mark(&self, key: &Key, ok: bool) {
        self.write()
            .fetched
            .insert(key.clone(), (Instant::now(), ok));
    }

    /// When `key` is due to be fetched (now when it never was).
    fn due(&self, key: &Key) -> Instant {
        match self.read().fetched.get(key) {
            Some((at, true)) => *at + REFRESH,
            Some((at, false)) => *at + RETRY,
            None => Instant::now(),
        }
    }

    /// How many emotes are known for `scope`.
    #[cfg(test)]
    fn len(&self, scope: &Scope) -> usize {
        self.read().merged.get(scope).map_or(0, |s| s.len())
    }
}

/// Asks the fetcher for a channel's emotes once its room id is known.
#[derive(Clone)]
pub struct Wants(Option<mpsc::UnboundedSender<String>>);

impl Wants {
    /// Fetch (and keep fresh) the emotes of room `room_id`.
    pub fn room(&self, room_id: &str) {
        if let Some(tx) = &self.0
            && !room_id.is_empty()
        {
            let _ = tx.send(room_id.to_string());
        }
    }

    /// Wants that go nowhere (emotes off).
    pub fn none() -> Wants {
        Wants(None)
    }
}

/// Start fetching into `catalog` until `stop`: the global sets at once, a
/// channel's when [`Wants::room`] names it, each refreshed every [`REFRESH`].
pub fn start(bridge: &str, catalog: Arc<Catalog>, api: EmoteApi, stop: CancellationToken) -> Wants {
    if !catalog.enabled() {
        return Wants::none();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let fetcher = Fetcher {
        bridge: bridge.to_string(),
        http: providers::client(REQUEST_TIMEOUT),
        catalog,
        api,
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = fetcher.run(rx) => {}
        }
    });
    Wants(Some(tx))
}

struct Fetcher {
    bridge: String,
    http: reqwest::Client,
    catalog: Arc<Catalog>,
    api: EmoteApi,
}

impl Fetcher {
    async fn run(&self, mut wants: mpsc::UnboundedReceiver<String>) {
        let mut due: HashMap<Key, Instant> = HashMap::new();
        let mut in_flight: HashSet<Key> = HashSet::new();
        let mut fetching = FuturesUnordered::new();
        for p in &self.catalog.providers {
            let key = (Scope::Global, *p);
            due.insert(key.clone(), self.catalog.due(&key));
        }
        loop {
            let now = Instant::now();
            let ready: Vec<Key> = due
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for key in ready {
                due.remove(&key);
                in_flight.insert(key.clone());
                fetching.push(self.fetch(key));
            }
            let next = due.values().min().copied().unwrap_or(now + REFRESH);
            tokio::select! {
                room = wants.recv() => {
                    let Some(room) = room else { return };
                    for p in &self.catalog.providers {
                        let key = (Scope::Room(room.clone()), *p);
                        if !due.contains_key(&key) && !in_flight.contains(&key) {
                            due.insert(key.clone(), self.catalog.due(&key));
                        }
                    }
                }
                Some(key) = fetching.next() => {
                    in_flight.remove(&key);
                    due.insert(key.clone(), self.catalog.due(&key));
                }
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// Fetch one set into the catalog; gives `key` back.
    async fn fetch(&self, key: Key) -> Key {
        let (scope, provider) = &key;
        match providers::fetch(&self.http, &self.api, *provider, scope).await {
            Ok(set) => {
                tracing::debug!(bridge = %self.bridge, provider = provider.name(), ?scope, emotes = set.len(), "emotes fetched");
                self.catalog.store(scope, *provider, set);
                self.catalog.mark(&key, true);
            }
            Err(e) => {
                tracing::warn!(bridge = %self.bridge, provider = provider.name(), ?scope, error = %e, "cannot fetch emotes (messages go on without their images)");
                metrics::counter!("jetbridge_emote_fetch_failures_total", "bridge" => self.bridge.clone(), "provider" => provider.name()).increment(1);
                self.catalog.mark(&key, false);
            }
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::twitch::providers::Image;

    fn image(url: &str, zero_width: bool) -> Image {
        Image {
            url: url.into(),
            zero_width,
        }
    }

    #[test]
    fn words_naming_emotes_get_images_channel_first_and_twitch_own_kept() {
        let c = Catalog::new(&[EmoteProvider::SevenTv, EmoteProvider::Bttv]);
        c.store(
            &Scope::Global,
            EmoteProvider::Bttv,
            Set::from([
                ("catJAM".into(), image("g-bttv", false)),
                ("SoSnowy".into(), image("snow", true)),
            ]),
        );
        c.store(
            &Scope::Global,
            EmoteProvider::SevenTv,
            Set::from([("catJAM".into(), image("g-7tv", false))]),
        );
        c.store(
            &Scope::Room("7".into()),
            EmoteProvider::Bttv,
            Set::from([("Kappa".into(), image("room-kappa", false))]),
        );
        assert_eq!(c.len(&Scope::Global), 2);

        let mut emotes = vec![Emote {
            name: "Kappa".into(),
            url: "twitch".into(),
            zero_width: false,
        }];
        c.add_to("7", "Kappa catJAM SoSnowy catJAMs catJAM", &mut emotes);
        let got: Vec<(&str, &str, bool)> = emotes
            .iter()
            .map(|e| (e.name.as_str(), e.url.as_str(), e.zero_width))
            .collect();
        // Twitch's own Kappa stays; 7TV (listed first) wins catJAM; once each.
        assert_eq!(
            got,
            [
                ("Kappa", "twitch", false),
                ("catJAM", "g-7tv", false),
                ("SoSnowy", "snow", true)
            ]
        );

        // Another channel sees only the global ones.
        let mut other = Vec::new();
        c.add_to("8", "Kappa catJAM", &mut other);
        assert_eq!(other.len(), 1);
    }

    #[test]
    fn repeated_providers_count_once_and_none_means_off() {
        assert!(!Catalog::new(&[]).enabled());
        let c = Catalog::new(&[EmoteProvider::Ffz, EmoteProvider::Ffz]);
        assert_eq!(c.providers, [EmoteProvider::Ffz]);
    }
}
