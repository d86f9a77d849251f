//! Writing to Twitch on a connection jetbridge owns end to end. Reading stays
//! with twitch-irc, which picks the connection a line goes out on and replaces
//! dead ones on its own; so a line handed to it cannot be known to be on the
//! socket that just died, and at most one line per channel could be in
//! flight. Here one task owns the writing connection for its whole life: every
//! line in the [`Outbox`] window went out on it, and when it drops the whole
//! window goes out again, in order, on the next connection before anything
//! new.
//!
//! What this costs: a line Twitch accepted whose USERSTATE died with the
//! socket is sent twice. At most the channel's window ([`WINDOW`]) can be,
//! and only lines written in the last round trip before the drop.
//!
//! The connection joins no channel: Twitch takes a PRIVMSG without a JOIN and
//! answers it on the connection it came on, and the channels' chat is read
//! once, by twitch-irc.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;
use twitch_irc::message::IRCMessage;

use super::config::Endpoint;
use super::connection::{self, Stream};
use super::outbox::{ANSWER_WITHIN, Answer, Line, Outbox, WINDOW};
use crate::backoff::Backoff;
use crate::bridge::{DeliverError, Later};

/// How long opening a connection (and logging in) may take.
const DIAL_WITHIN: Duration = Duration::from_secs(10);
/// Silent this long, the connection is asked for a PONG...
const PING_AFTER: Duration = Duration::from_secs(60);
/// ...which must come within this.
const PONG_WITHIN: Duration = Duration::from_secs(10);

/// The account that writes. The token never reaches a log.
#[derive(Clone)]
pub struct Account {
    pub nick: String,
    pub token: String,
}

/// The writing side of one Twitch account. Dropping it ends its connection.
pub struct Writer {
    tx: mpsc::UnboundedSender<Line>,
    /// Each channel's window: a line holds one of its permits until answered.
    rooms: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Writer {
    /// Start the account's writing connection (opened now, and again
    /// whenever it drops, while this lives).
    pub fn start(bridge: &str, endpoint: Endpoint, account: Account) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let span = tracing::info_span!("twitch_writer", bridge);
        tokio::spawn(keep(rx, endpoint, account).instrument(span));
        Writer {
            tx,
            rooms: Mutex::default(),
        }
    }

    /// Queue `text` for channel `login` once the channel's window has room.
    /// Returns where Twitch's answer will come; the line is written (or
    /// written again) until Twitch answers it.
    pub async fn send(&self, login: &str, text: String) -> Result<Answer, DeliverError> {
        let rooms = {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            rooms
                .entry(login.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(WINDOW)))
                .clone()
        };
        let room = match tokio::time::timeout(ANSWER_WITHIN, rooms.acquire_owned()).await {
            Ok(Ok(room)) => room,
            // Never closed; and a full window for this long is a connection
            // being replaced: the router retries with backoff.
            Ok(Err(_)) | Err(_) => {
                return Err(DeliverError::retry(format!(
                    "twitch has not answered the last {WINDOW} lines in #{login}"
                )));
            }
        };
        let (tell, answer) = oneshot::channel();
        self.tx
            .send(Line {
                login: login.to_string(),
                text,
                tell,
                _room: room,
            })
            .map_err(|_| DeliverError::retry("the twitch writer stopped"))?;
        Ok(answer)
    }
}

/// The ids Twitch gives the lines `answers` belong to, once it answered
/// (lines it refused, or left unanswered for long, have none).
pub fn ids_of(bridge: &str, answers: Vec<Answer>) -> Later {
    let bridge = bridge.to_string();
    Later::new(
        async move {
            let mut ids = Vec::with_capacity(answers.len());
            for answer in answers {
                match tokio::time::timeout(ANSWER_WITHIN * 4, answer).await {
                    Ok(Ok(Ok(id))) => ids.push(id),
                    Ok(Ok(Err(notice))) => {
                        tracing::error!(%notice, "twitch refused a line");
                        metrics::counter!("jetbridge_delivery_failures_total", "bridge" => bridge.clone(), "reason" => "rejected")
                            .increment(1);
                    }
                    // Still in the window, or the writer gone: the line is
                    // sent, only its id is not learnt.
                    Ok(Err(_)) | Err(_) => {}
                }
            }
            ids
        }
        .boxed(),
    )
}

/// An open, logged-in connection.
struct Connection {
    lines: tokio::io::Lines<BufReader<ReadHalf<Stream>>>,
    out: BufWriter<WriteHalf<Stream>>,
}

/// The writer's task: open the connection, write, read answers, and start
/// over when it drops, until every sender is gone.
async fn keep(mut rx: mpsc::UnboundedReceiver<Line>, endpoint: Endpoint, account: Account) {
    let mut outbox = Outbox::default();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let dialed = {
            let dial = dial(&endpoint, &account);
            tokio::pin!(dial);
            loop {
                tokio::select! {
                    dialed = &mut dial => break dialed,
                    line = rx.recv() => match line {
                        Some(line) => outbox.push(line, None),
                        None => return,
                    },
                }
            }
        };
        let opened = Instant::now();
        let ended = match dialed {
            Ok(connection) => match serve(connection, &mut rx, &mut outbox).await {
                Ok(()) => return,
                Err(e) => e,
            },
            Err(e) => e,
        };
        if opened.elapsed() >= PING_AFTER {
            backoff.reset();
        }
        let wait = backoff.next_delay();
        tracing::warn!(error = %ended, unconfirmed = outbox.len(), retry_in = ?wait, "the twitch connection for sending is down; unconfirmed lines go again on the next");
        let pause = tokio::time::sleep(wait);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                line = rx.recv() => match line {
                    Some(line) => outbox.push(line, None),
                    None => return,
                },
            }
        }
    }
}

/// Open a connection to `endpoint` and log in as `account`.
async fn dial(endpoint: &Endpoint, account: &Account) -> std::io::Result<Connection> {
    let login = async {
        let (read, write) = tokio::io::split(connection::open(endpoint).await?);
        let mut c = Connection {
            lines: BufReader::new(read).lines(),
            out: BufWriter::new(write),
        };
        let hello = format!(
            "CAP REQ :twitch.tv/tags twitch.tv/commands\r\nPASS oauth:{}\r\nNICK {}\r\n",
            account.token, account.nick
        );
        c.out.write_all(hello.as_bytes()).await?;
        c.out.flush().await?;
        // Welcome (001) before any line: one written into a refused login
        // would be lost without an answer.
        while let Some(line) = c.lines.next_line().await? {
            let Ok(msg) = IRCMessage::parse(&line) else {
                continue;
            };
            match msg.command.as_str() {
                "001" => return Ok(c),
                "NOTICE" => {
                    let why = msg.params.last().cloned().unwrap_or_default();
                    return Err(std::io::Error::other(format!(
                        "twitch refused the login: {why}"
                    )));
                }
                "PING" => pong(&mut c.out, &msg).await?,
                _ => {}
            }
        }
        Err(std::io::Error::other(
            "twitch closed the connection at login",
        ))
    };
    tokio::time::timeout(DIAL_WITHIN, login)
        .await
        .map_err(|_| std::io::Error::other("no welcome from twitch in time"))?
}

/// Write and read on `c` until it drops (`Err`) or every sender is gone.
async fn serve(
    c: Connection,
    rx: &mut mpsc::UnboundedReceiver<Line>,
    outbox: &mut Outbox,
) -> std::io::Result<()> {
    let Connection { mut lines, mut out } = c;
    // What the last connection left unconfirmed goes first, in order.
    if !outbox.is_empty() {
        tracing::warn!(
            lines = outbox.len(),
            "sending again the lines twitch did not confirm"
        );
        metrics::counter!("jetbridge_twitch_resent_total").increment(outbox.len() as u64);
    }
    for line in outbox.all(Instant::now()) {
        out.write_all(privmsg(line).as_bytes()).await?;
    }
    out.flush().await?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let mut pinged = false;
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { return Ok(()) };
                let now = Instant::now();
                let mut wire = privmsg(&line);
                outbox.push(line, Some(now));
                // What queued meanwhile goes in the same write.
                while let Ok(line) = rx.try_recv() {
                    wire.push_str(&privmsg(&line));
                    outbox.push(line, Some(now));
                }
                out.write_all(wire.as_bytes()).await?;
                out.flush().await?;
            }
            read = lines.next_line() => {
                let Some(read) = read? else {
                    return Err(std::io::Error::other("twitch closed the connection"));
                };
                heard = Instant::now();
                pinged = false;
                if let Some((channel, id)) = userstate_id(&read) {
                    outbox.confirmed(channel, id);
                } else if let Ok(msg) = IRCMessage::parse(&read) {
                    answer(&msg, outbox, &mut out).await?;
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if outbox.overdue(now) {
                    return Err(std::io::Error::other(format!("twitch answered no line for {ANSWER_WITHIN:?}")));
                }
                let silent = now.duration_since(heard);
                if pinged && silent >= PING_AFTER + PONG_WITHIN {
                    return Err(std::io::Error::other("no PONG from twitch"));
                }
                if !pinged && silent >= PING_AFTER {
                    out.write_all(b"PING :jetbridge\r\n").await?;
                    out.flush().await?;
                    pinged = true;
                }
            }
        }
    }
}

/// The channel and id of a USERSTATE that answers a line, read without
/// building its tag map: Twitch sends one per line written, so at full pace
/// this is most of what the connection reads. Anything else (or an id that
/// would need unescaping) is `None`, for [`answer`].
fn userstate_id(line: &str) -> Option<(&str, &str)> {
    let (tags, rest) = line.strip_prefix('@')?.split_once(' ')?;
    let rest = match rest.strip_prefix(':') {
        Some(prefixed) => prefixed.split_once(' ')?.1,
        None => rest,
    };
    // As `answer` reads it: the channel without its leading `#`.
    let channel = rest.strip_prefix("USERSTATE #")?.trim_start_matches('#');
    let id = tags.split(';').find_map(|t| t.strip_prefix("id="))?;
    let plain = |s: &str| !s.is_empty() && !s.contains([' ', '\\']);
    (plain(channel) && plain(id)).then_some((channel, id))
}

/// Take in what Twitch said on the writing connection.
async fn answer(
    msg: &IRCMessage,
    outbox: &mut Outbox,
    out: &mut BufWriter<WriteHalf<Stream>>,
) -> std::io::Result<()> {
    let channel = || {
        msg.params
            .first()
            .map(|c| c.trim_start_matches('#'))
            .unwrap_or_default()
    };
    match msg.command.as_str() {
        "PING" => pong(out, msg).await?,
        "RECONNECT" => return Err(std::io::Error::other("twitch asked to reconnect")),
        // A USERSTATE with an id answers the channel's oldest line.
        "USERSTATE" => {
            if let Some(id) = msg.tags.0.get("id") {
                outbox.confirmed(channel(), id);
            }
        }
        "NOTICE" => {
            let Some(kind) = msg.tags.0.get("msg-id") else {
                return Ok(());
            };
            // Notices about a message refuse the oldest line; others
            // (a channel's settings, say) answer nothing.
            if kind.starts_with("msg_") {
                let notice = msg.params.last().map(String::as_str).unwrap_or_default();
                let line = outbox.refused(channel(), &format!("{kind}: {notice}"));
                tracing::warn!(channel = channel(), %notice, msg_id = %kind, line = ?line, "twitch refused a line");
            }
        }
        _ => {}
    }
    Ok(())
}

async fn pong(out: &mut BufWriter<WriteHalf<Stream>>, ping: &IRCMessage) -> std::io::Result<()> {
    let arg = ping
        .params
        .last()
        .map(String::as_str)
        .unwrap_or("tmi.twitch.tv");
    out.write_all(format!("PONG :{arg}\r\n").as_bytes()).await?;
    out.flush().await
}

/// The wire form of `line` (its text is one line, control characters gone).
fn privmsg(line: &Line) -> String {
    format!("PRIVMSG #{} :{}\r\n", line.login, line.text)
}

#[cfg(test)]
mod tests {
    use super::userstate_id;

    #[test]
    fn a_userstate_answer_is_read_without_the_full_parse() {
        let line = "@badge-info=;badges=moderator/1;color=#0D4200;display-name=relaybot;\
                    emote-sets=0,33,50;id=d4f8a1c2-0c5e-4b8e-9a51-3d0b1f2e7a10;mod=1;\
                    subscriber=0;user-type=mod :tmi.twitch.tv USERSTATE #dallas";
        assert_eq!(
            userstate_id(line),
            Some(("dallas", "d4f8a1c2-0c5e-4b8e-9a51-3d0b1f2e7a10"))
        );
    }

    #[test]
    fn what_is_not_a_plain_userstate_answer_goes_to_the_full_parse() {
        for line in [
            // No id: the state of a channel joined, answering nothing.
            "@badges=;color=;display-name=relaybot;mod=0 :tmi.twitch.tv USERSTATE #dallas",
            // A tag that merely ends in "id".
            "@user-id=1;room-id=2 :tmi.twitch.tv USERSTATE #dallas",
            "@msg-id=msg_duplicate :tmi.twitch.tv NOTICE #dallas :Your message is identical.",
            "@id=a\\sb :tmi.twitch.tv USERSTATE #dallas",
            "PING :tmi.twitch.tv",
            ":tmi.twitch.tv USERSTATE #dallas",
            "",
        ] {
            assert_eq!(userstate_id(line), None, "{line}");
        }
    }
}
