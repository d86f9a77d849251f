//! A fake Twitch chat server speaking the IRC that twitch-irc expects: CAP ACK,
//! welcome numerics, JOIN echo with ROOMSTATE/USERSTATE, PING/PONG, tagged PRIVMSG
//! and CLEARMSG. It records every line a client sends, and can refuse logins or
//! drop connections to test failure paths.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, mpsc};

use super::platform::{Change, FakePlatform, Post};

/// Closes the open connections (each watches it).
struct HangUp(tokio::sync::watch::Sender<u64>);

impl Default for HangUp {
    fn default() -> Self {
        HangUp(tokio::sync::watch::Sender::new(0))
    }
}

/// A connection's writer and the channels it joined.
type Conn = (mpsc::UnboundedSender<String>, HashSet<String>);

#[derive(Default)]
struct State {
    /// Every line received from any client, in order.
    lines: Mutex<Vec<String>>,
    /// When each PRIVMSG arrived (for latency measurements).
    privmsg_times: Mutex<Vec<(std::time::Instant, String)>>,
    /// Writers of the open connections, with the channels each joined.
    conns: Mutex<HashMap<usize, Conn>>,
    accepted: AtomicUsize,
    /// USERSTATEs answered to PRIVMSGs so far (for their ids).
    userstates: AtomicUsize,
    /// The id each accepted PRIVMSG got, with its channel and text.
    ids: std::sync::Mutex<Vec<(Sent, String)>>,
    reject_login: AtomicBool,
    /// Every connection open when this changes closes.
    hang_up: HangUp,
    /// Connections are closed as soon as they are accepted until then (an outage).
    down_until: std::sync::Mutex<Option<std::time::Instant>>,
    changed: Notify,
    /// While set, PRIVMSGs go unanswered (see [`FakeTwitch::hold_answers`]).
    hold: std::sync::Mutex<Option<Hold>>,
    /// See [`FakeTwitch::keep_lines_while_away`].
    keep_while_away: AtomicBool,
    /// PRIVMSGs still to refuse with a NOTICE of this `msg-id`.
    refuse: std::sync::Mutex<Option<(usize, String)>>,
}

/// PRIVMSGs seen while answers are held, and how many of them Twitch takes.
#[derive(Default)]
struct Hold {
    take: usize,
    seen: usize,
}

pub struct FakeTwitch {
    pub addr: SocketAddr,
    state: Arc<State>,
    next_id: AtomicUsize,
}

/// A PRIVMSG as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub channel: String,
    pub text: String,
}

impl FakeTwitch {
    pub async fn start() -> FakeTwitch {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let down = st
                    .down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| std::time::Instant::now() < t);
                if down {
                    drop(sock);
                    continue;
                }
                let id = st.accepted.fetch_add(1, Ordering::SeqCst);
                st.changed.notify_waiters();
                tokio::spawn(serve(sock, id, st.clone()));
            }
        });
        FakeTwitch {
            addr,
            state,
            next_id: AtomicUsize::new(1),
        }
    }

    /// `server` value for the config.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// Answer the next logins with "Login authentication failed".
    pub fn reject_logins(&self, reject: bool) {
        self.state.reject_login.store(reject, Ordering::SeqCst);
    }

    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Close every client connection (as a server restart would).
    pub async fn drop_connections(&self) {
        self.state.conns.lock().await.clear();
        self.state.hang_up.0.send_modify(|n| *n += 1);
    }

    /// Go away for `d`: close every connection and refuse new ones meanwhile.
    pub async fn down_for(&self, d: Duration) {
        *self.state.down_until.lock().unwrap() = Some(std::time::Instant::now() + d);
        self.drop_connections().await;
    }

    /// Answer no PRIVMSG from now on: the first `take` are taken (they reach
    /// the channel, as on a socket whose answers die with it), the rest are
    /// lost on the way (as in the buffers of a dying socket).
    pub fn hold_answers(&self, take: usize) {
        *self.state.hold.lock().unwrap() = Some(Hold { take, seen: 0 });
    }

    /// Refuse the next `n` PRIVMSGs with a NOTICE `msg_id` (as Twitch
    /// refuses a duplicate or a line from a banned account): not taken.
    pub fn refuse_next(&self, n: usize, msg_id: &str) {
        *self.state.refuse.lock().unwrap() = Some((n, msg_id.to_string()));
    }

    /// PRIVMSGs seen since [`hold_answers`](Self::hold_answers).
    pub fn held(&self) -> usize {
        self.state
            .hold
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |h| h.seen)
    }

    /// Answer again, and close every connection: the held window dies with them.
    pub async fn release_and_drop(&self) {
        *self.state.hold.lock().unwrap() = None;
        self.drop_connections().await;
    }

    /// End an outage begun with [`down_for`](Self::down_for).
    pub fn up(&self) {
        *self.state.down_until.lock().unwrap() = None;
    }

    /// PRIVMSGs received, with their arrival times.
    pub async fn timed_privmsgs(&self) -> Vec<(std::time::Instant, Sent)> {
        self.state
            .privmsg_times
            .lock()
            .await
            .iter()
            .filter_map(|(t, l)| parse_privmsg(l).map(|s| (*t, s)))
            .collect()
    }

    /// How many PRIVMSGs arrived.
    #[allow(dead_code)] // what the load benchmark counts; tests read the lines
    pub async fn privmsg_count(&self) -> usize {
        self.state.privmsg_times.lock().await.len()
    }

    /// Every line received so far.
    pub async fn lines(&self) -> Vec<String> {
        self.state.lines.lock().await.clone()
    }

    /// The PRIVMSGs received for `channel` (`#name`), in order.
    pub async fn sent(&self, channel: &str) -> Vec<String> {
        self.lines()
            .await
            .iter()
            .filter_map(|l| parse_privmsg(l))
            .filter(|s| s.channel == channel)
            .map(|s| s.text)
            .collect()
    }

    /// The id Twitch gave the line sent to `channel` that ends with `text`.
    pub fn id_of(&self, channel: &str, text: &str) -> String {
        let ids = self.state.ids.lock().unwrap();
        ids.iter()
            .find(|(s, _)| s.channel == channel && s.text.ends_with(text))
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no line {text:?} in {channel}"))
    }

    /// Wait until `cond` holds over the received lines, or panic with what was seen.
    pub async fn wait_for<F>(&self, what: &str, timeout: Duration, mut cond: F)
    where
        F: FnMut(&[String]) -> bool,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            {
                let lines = self.state.lines.lock().await;
                if cond(&lines) {
                    return;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let lines = self.lines().await;
                    panic!("timed out waiting for {what}; received {} lines:\n{}", lines.len(), lines.join("\n"));
                }
            }
        }
    }

    /// Wait until `n` PRIVMSGs for `channel` arrived; returns their texts.
    pub async fn wait_sent(&self, channel: &str, n: usize, timeout: Duration) -> Vec<String> {
        let ch = channel.to_string();
        self.wait_for(&format!("{n} PRIVMSGs to {channel}"), timeout, |lines| {
            lines
                .iter()
                .filter_map(|l| parse_privmsg(l))
                .filter(|s| s.channel == ch)
                .count()
                >= n
        })
        .await;
        self.sent(channel).await
    }

    /// Wait until a PRIVMSG to `channel` ends with `last`; returns the texts
    /// of every PRIVMSG to `channel` so far.
    pub async fn wait_for_line(&self, channel: &str, last: &str, timeout: Duration) -> Vec<String> {
        let ch = channel.to_string();
        self.wait_for(&format!("{last:?} in {channel}"), timeout, |lines| {
            lines
                .iter()
                .filter_map(|l| parse_privmsg(l))
                .any(|s| s.channel == ch && s.text.ends_with(last))
        })
        .await;
        self.sent(channel).await
    }

    /// Connections that joined `channel`.
    pub async fn joined_connections(&self, channel: &str) -> usize {
        let conns = self.state.conns.lock().await;
        conns.values().filter(|(_, j)| j.contains(channel)).count()
    }

    /// Wait until some connection joined every one of `channels`.
    pub async fn wait_joined(&self, channels: &[&str], timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            {
                let conns = self.state.conns.lock().await;
                let joined: HashSet<&String> = conns.values().flat_map(|(_, j)| j.iter()).collect();
                if channels.iter().all(|c| joined.contains(&c.to_string())) {
                    return;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => panic!("timed out waiting for JOIN of {channels:?}"),
            }
        }
    }

    /// Deliver a chat message from `login` to `channel`; returns its message id.
    pub async fn privmsg(&self, channel: &str, login: &str, display: &str, text: &str) -> String {
        let id = format!(
            "00000000-0000-4000-8000-{:012}",
            self.next_id.fetch_add(1, Ordering::SeqCst)
        );
        self.privmsg_with(channel, login, display, &id, text, "")
            .await;
        id
    }

    /// Like [`privmsg`](Self::privmsg) with a given id and extra tags (`k=v;…`;
    /// `-k` leaves tag `k` out).
    pub async fn privmsg_with(
        &self,
        channel: &str,
        login: &str,
        display: &str,
        id: &str,
        text: &str,
        extra_tags: &str,
    ) {
        let line = privmsg_line(channel, login, display, id, text, extra_tags);
        self.broadcast(channel, line).await;
    }

    /// Send `line` as it is to every connection joined to `channel`.
    pub async fn raw(&self, channel: &str, line: String) {
        self.broadcast(channel, line).await;
    }

    /// A moderator deleted message `id` of `login` in `channel`.
    pub async fn clearmsg(&self, channel: &str, login: &str, id: &str, text: &str) {
        let line = format!(
            "@login={login};room-id=;target-msg-id={id};tmi-sent-ts={} :tmi.twitch.tv CLEARMSG {channel} :{text}",
            now_ms()
        );
        self.broadcast(channel, line).await;
    }

    /// A moderator banned or timed out `login` in `channel`.
    pub async fn clearchat(&self, channel: &str, login: &str) {
        let line = format!(
            "@ban-duration=600;room-id={};target-user-id=1{};tmi-sent-ts={} :tmi.twitch.tv CLEARCHAT {channel} :{login}",
            room_id(channel),
            login.len(),
            now_ms()
        );
        self.broadcast(channel, line).await;
    }

    async fn broadcast(&self, channel: &str, line: String) {
        // Like Twitch: every connection joined to the channel gets it (two
        // instances of jetbridge both see it).
        let conns = self.state.conns.lock().await;
        let mut delivered = false;
        for (tx, joined) in conns.values() {
            if joined.contains(channel) {
                delivered |= tx.send(line.clone()).is_ok();
            }
        }
        assert!(
            delivered || self.state.keep_while_away.load(Ordering::SeqCst),
            "no connection has joined {channel}"
        );
    }

    /// From now on, a line said while no connection has joined its channel
    /// is gone, as on Twitch (a soak's outages, where the recent-messages
    /// service keeps it); by default it fails the test that said it.
    #[allow(dead_code)] // the soak's (bench/faults.rs); tests fail on it instead
    pub fn keep_lines_while_away(&self) {
        self.state.keep_while_away.store(true, Ordering::SeqCst);
    }
}

/// A PRIVMSG line as Twitch sends it, with a given id and extra tags (`k=v;…`;
/// `-k` leaves tag `k` out).
pub fn privmsg_line(
    channel: &str,
    login: &str,
    display: &str,
    id: &str,
    text: &str,
    extra_tags: &str,
) -> String {
    // Twitch's tags, as it sends them; `extra_tags` adds to or replaces them.
    let mut tags: Vec<(String, String)> = [
        ("badge-info", ""),
        ("badges", ""),
        ("color", "#0000FF"),
        ("display-name", display),
        ("emotes", ""),
        ("first-msg", "0"),
        ("flags", ""),
        ("id", id),
        ("mod", "0"),
        ("returning-chatter", "0"),
        ("room-id", &room_id(channel)),
        ("subscriber", "0"),
        ("tmi-sent-ts", &now_ms().to_string()),
        ("turbo", "0"),
        ("user-id", &format!("1{}", login.len())),
        ("user-type", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for kv in extra_tags.split(';').filter(|kv| !kv.is_empty()) {
        if let Some(k) = kv.strip_prefix('-') {
            tags.retain(|(key, _)| key != k);
            continue;
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match tags.iter_mut().find(|(key, _)| key == k) {
            Some(t) => t.1 = v.to_string(),
            None => tags.push((k.to_string(), v.to_string())),
        }
    }
    let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "@{} :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG {channel} :{text}",
        tags.join(";")
    )
}

/// The Twitch user id of a channel's owner (its `room-id`), stable per name.
pub fn room_id(channel: &str) -> String {
    let n = channel
        .trim_start_matches('#')
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    (100_000 + n % 900_000).to_string()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// `PRIVMSG #chan :text` (possibly with tags or prefix) → channel and text.
pub fn parse_privmsg(line: &str) -> Option<Sent> {
    let mut rest = line;
    if rest.starts_with('@') {
        rest = rest.split_once(' ')?.1;
    }
    if rest.starts_with(':') {
        rest = rest.split_once(' ')?.1;
    }
    let rest = rest.strip_prefix("PRIVMSG ")?;
    let (channel, text) = rest.split_once(' ')?;
    let text = text.strip_prefix(':').unwrap_or(text);
    Some(Sent {
        channel: channel.to_string(),
        text: text.to_string(),
    })
}

async fn serve(sock: tokio::net::TcpStream, index: usize, st: Arc<State>) {
    // Lines go out as they are written (Twitch's do): with Nagle, a line
    // written while an answer is unacknowledged waits for the peer's delayed
    // ACK, milliseconds that are the fake's, not jetbridge's.
    let _ = sock.set_nodelay(true);
    let (read, mut write) = sock.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    st.conns
        .lock()
        .await
        .insert(index, (tx.clone(), HashSet::new()));
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if write
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    let mut lines = BufReader::new(read).lines();
    let mut nick = String::from("justinfan");
    let mut hang_up = st.hang_up.0.subscribe();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = hang_up.changed() => break,
        };
        let Ok(Some(line)) = line else { break };
        // Held: taken without an answer (`Some(true)`), or lost (`Some(false)`).
        let held = match st.hold.lock().unwrap().as_mut() {
            Some(h) if line.starts_with("PRIVMSG ") => {
                h.seen += 1;
                Some(h.seen <= h.take)
            }
            _ => None,
        };
        if held == Some(false) {
            st.changed.notify_waiters();
            continue;
        }
        let refused = match st.refuse.lock().unwrap().as_mut() {
            Some((n, msg_id)) if *n > 0 && line.starts_with("PRIVMSG ") => {
                *n -= 1;
                Some(msg_id.clone())
            }
            _ => None,
        };
        if let Some(msg_id) = refused {
            let channel = line.split(' ').nth(1).unwrap_or("");
            let _ = tx.send(format!(
                "@msg-id={msg_id} :tmi.twitch.tv NOTICE {channel} :Your message was not sent because it is identical to the previous one you sent, less than 30 seconds ago."
            ));
            st.changed.notify_waiters();
            continue;
        }
        if line.starts_with("PRIVMSG ") {
            st.privmsg_times
                .lock()
                .await
                .push((std::time::Instant::now(), line.clone()));
        }
        st.lines.lock().await.push(line.clone());
        st.changed.notify_waiters();
        let (cmd, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match cmd {
            // Like Twitch: an accepted message is answered with a USERSTATE
            // carrying its id.
            "PRIVMSG" if held.is_some() => {}
            "PRIVMSG" => {
                let channel = args.split(' ').next().unwrap_or("");
                let n = st.userstates.fetch_add(1, Ordering::SeqCst);
                if let Some(sent) = parse_privmsg(&line) {
                    let id = format!("ffffffff-0000-4000-8000-{n:012}");
                    st.ids.lock().unwrap().push((sent, id));
                }
                let _ = tx.send(format!(
                    "@badge-info=;badges=;color=;display-name={nick};emote-sets=0;id=ffffffff-0000-4000-8000-{n:012};mod=0;subscriber=0;user-type= :tmi.twitch.tv USERSTATE {channel}"
                ));
            }
            "CAP" => {
                let caps = args.split_once(':').map(|(_, c)| c).unwrap_or("");
                let _ = tx.send(format!(":tmi.twitch.tv CAP * ACK :{caps}"));
            }
            "NICK" => {
                nick = args.trim().to_string();
                if st.reject_login.load(Ordering::SeqCst) && !nick.starts_with("justinfan") {
                    let _ = tx.send(":tmi.twitch.tv NOTICE * :Login authentication failed".into());
                    break;
                }
                for (num, text) in [
                    ("001", "Welcome, GLHF!"),
                    ("002", "Your host is tmi.twitch.tv"),
                    ("003", "This server is rather new"),
                    ("004", "-"),
                    ("375", "-"),
                    ("372", "You are in a maze of twisty passages, all alike."),
                    ("376", ">"),
                ] {
                    let _ = tx.send(format!(":tmi.twitch.tv {num} {nick} :{text}"));
                }
            }
            "JOIN" => {
                for ch in args.trim().split(',') {
                    let _ = tx.send(format!(":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {ch}"));
                    let _ = tx.send(format!(
                        "@emote-only=0;followers-only=-1;r9k=0;room-id={};slow=0;subs-only=0 :tmi.twitch.tv ROOMSTATE {ch}",
                        room_id(ch)
                    ));
                    let _ = tx.send(format!(
                        "@badge-info=;badges=;color=;display-name={nick};emote-sets=0;mod=0;subscriber=0;user-type= :tmi.twitch.tv USERSTATE {ch}"
                    ));
                    if let Some((_, joined)) = st.conns.lock().await.get_mut(&index) {
                        joined.insert(ch.to_string());
                    }
                }
                st.changed.notify_waiters();
            }
            "PART" => {
                for ch in args.trim().split(',') {
                    let _ = tx.send(format!(":{nick}!{nick}@{nick}.tmi.twitch.tv PART {ch}"));
                    if let Some((_, joined)) = st.conns.lock().await.get_mut(&index) {
                        joined.remove(ch);
                    }
                }
            }
            "PING" => {
                let arg = args.trim_start_matches(':');
                let _ = tx.send(format!(":tmi.twitch.tv PONG tmi.twitch.tv :{arg}"));
            }
            _ => {}
        }
    }
    // Forget this connection so broadcasts go to a live one.
    st.conns.lock().await.remove(&index);
    // Let the writer flush what is queued (a NOTICE before hanging up), then close.
    drop(tx);
    let _ = writer.await;
    st.changed.notify_waiters();
}

#[async_trait::async_trait]
impl FakePlatform for FakeTwitch {
    const NAME: &'static str = "twitch";

    async fn start() -> Self {
        FakeTwitch::start().await
    }

    fn section(&self) -> String {
        format!(
            "login = \"relaybot\"\ntoken = \"oauth:s3cr3t-token\"\nserver = \"{}\"\ntls = false\nrate_limit = false\nemotes = []",
            self.server()
        )
    }

    fn channels(&self) -> [String; 2] {
        ["#alpha".into(), "#beta".into()]
    }

    async fn wait_connected(&self, timeout: Duration) {
        self.wait_joined(&["#alpha", "#beta"], timeout).await;
    }

    async fn say(&self, channel: &str, user: &str, text: &str) -> String {
        self.privmsg(channel, &user.to_lowercase(), user, text)
            .await
    }

    async fn echo(&self, channel: &str, text: &str) {
        self.privmsg(channel, "relaybot", "RelayBot", text).await;
    }

    async fn edit(&self, _: &str, _: &str, _: &str, _: &str) {
        panic!("Twitch has no edits");
    }

    async fn delete(&self, channel: &str, user: &str, id: &str) {
        self.clearmsg(channel, &user.to_lowercase(), id, "").await;
    }

    async fn posts(&self, channel: &str) -> Vec<Post> {
        self.sent(channel)
            .await
            .into_iter()
            .map(|text| Post {
                id: None,
                name: None,
                raw: serde_json::Value::String(text.clone()),
                text,
            })
            .collect()
    }

    async fn wait_posts(&self, channel: &str, n: usize, timeout: Duration) -> Vec<Post> {
        self.wait_sent(channel, n, timeout).await;
        FakePlatform::posts(self, channel).await
    }

    async fn attempts(&self, channel: &str) -> Vec<(std::time::Instant, bool)> {
        self.timed_privmsgs()
            .await
            .into_iter()
            .filter(|(_, s)| s.channel == channel)
            .map(|(t, _)| (t, true))
            .collect()
    }

    async fn changes(&self, _: &str) -> Vec<Change> {
        Vec::new()
    }

    async fn rate_limit(&self, _: usize, _: Duration) {
        panic!("IRC has no 429");
    }

    async fn outage(&self, d: Duration) {
        self.down_for(d).await;
    }

    fn live(post: &Post) -> Option<String> {
        if post.text.starts_with('/') || post.text.starts_with('.') {
            return Some("runs as a command".into());
        }
        if post.text.contains(['\r', '\n', '\0']) {
            return Some("has a line break".into());
        }
        None
    }
}
