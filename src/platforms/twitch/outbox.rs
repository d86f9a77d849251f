//! What was written to Twitch and not yet confirmed, per channel: the window
//! of the writer's connection ([`super::writer`]).
//!
//! IRC has no acknowledgement: a PRIVMSG written just before a connection
//! drops is gone without a word. Twitch does answer every PRIVMSG it accepted
//! with a USERSTATE carrying the new message's `id` (and one it refused with a
//! NOTICE), in order, on the connection it came on. So each channel keeps its
//! unconfirmed lines in order; answers confirm them from the front. The writer
//! owns the one connection they went out on, so when it drops, every line
//! still here goes out again, in order, on the next, before anything new.
//!
//! A channel has at most [`WINDOW`] lines here; a sender waits for room
//! (the permit each line holds).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

/// Lines a channel may have unconfirmed at once. Twitch answers in a round
/// trip; 32 lines cover a round trip at any rate Twitch allows a bot.
pub const WINDOW: usize = 32;
/// The oldest line unanswered this long: the connection is taken for dead.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Twitch's answer to a line: the new message's id, or the NOTICE refusing it.
pub type Answer = oneshot::Receiver<Result<String, String>>;

/// One line for channel `login`, with where its answer goes.
#[derive(Debug)]
pub struct Line {
    pub login: String,
    pub text: String,
    pub tell: oneshot::Sender<Result<String, String>>,
    /// Its place in the channel's window, given back when it is answered.
    pub _room: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct Waiting {
    line: Line,
    /// When it was last written; `None` while not written yet.
    written: Option<Instant>,
}

/// The unconfirmed lines of one account, by channel login.
#[derive(Debug, Default)]
pub struct Outbox {
    lanes: HashMap<String, VecDeque<Waiting>>,
}

impl Outbox {
    /// Keep `line` until it is answered; the caller writes it (now, or with
    /// everything on the next connection).
    pub fn push(&mut self, line: Line, written: Option<Instant>) {
        self.lanes
            .entry(line.login.clone())
            .or_default()
            .push_back(Waiting { line, written });
    }

    /// Twitch accepted the oldest line sent to `login` as message `id`.
    pub fn confirmed(&mut self, login: &str, id: &str) {
        if let Some(w) = self.pop(login) {
            // The sender may have stopped waiting: nothing to tell then.
            let _ = w.line.tell.send(Ok(id.to_string()));
        }
    }

    /// Twitch refused the oldest line sent to `login` for good (a NOTICE such
    /// as `msg_duplicate`, said in `notice`). Returns its text for the log.
    pub fn refused(&mut self, login: &str, notice: &str) -> Option<String> {
        let w = self.pop(login)?;
        let _ = w.line.tell.send(Err(notice.to_string()));
        Some(w.line.text)
    }

    fn pop(&mut self, login: &str) -> Option<Waiting> {
        let lane = self.lanes.get_mut(login)?;
        let w = lane.pop_front();
        if lane.is_empty() {
            // Channels come and go with the rooms: keep no empty lanes.
            self.lanes.remove(login);
        }
        w
    }

    /// Every line, channel by channel in its order, marked written at `now`:
    /// what goes out on a new connection before anything new.
    pub fn all(&mut self, now: Instant) -> impl Iterator<Item = &Line> {
        self.lanes.values_mut().flat_map(move |lane| {
            lane.iter_mut().map(move |w| {
                w.written = Some(now);
                &w.line
            })
        })
    }

    /// Whether some channel's oldest line was written `ANSWER_WITHIN` ago or
    /// more and is still unanswered.
    pub fn overdue(&self, now: Instant) -> bool {
        self.lanes.values().any(|lane| {
            lane.front()
                .and_then(|w| w.written)
                .is_some_and(|t| now.duration_since(t) >= ANSWER_WITHIN)
        })
    }

    /// Lines not yet confirmed, in all channels.
    pub fn len(&self) -> usize {
        self.lanes.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    fn line(login: &str, text: &str, rooms: &Arc<Semaphore>) -> (Line, Answer) {
        let (tell, answer) = oneshot::channel();
        let room = rooms.clone().try_acquire_owned().expect("room");
        let line = Line {
            login: login.into(),
            text: text.into(),
            tell,
            _room: room,
        };
        (line, answer)
    }

    #[tokio::test(start_paused = true)]
    async fn answers_confirm_each_channel_in_order_and_give_the_room_back() {
        let rooms = Arc::new(Semaphore::new(WINDOW));
        let mut outbox = Outbox::default();
        let now = Instant::now();
        let mut answers = Vec::new();
        for (login, text) in [("a", "a1"), ("b", "b1"), ("a", "a2")] {
            let (l, answer) = line(login, text, &rooms);
            outbox.push(l, Some(now));
            answers.push(answer);
        }
        assert_eq!(rooms.available_permits(), WINDOW - 3);
        outbox.confirmed("a", "id-a1");
        assert_eq!(outbox.refused("a", "msg_duplicate").as_deref(), Some("a2"));
        outbox.confirmed("b", "id-b1");
        outbox.confirmed("b", "stray");
        assert!(outbox.is_empty());
        assert_eq!(rooms.available_permits(), WINDOW);
        let got: Vec<_> = answers
            .into_iter()
            .map(|mut a| a.try_recv().unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                Ok("id-a1".to_string()),
                Ok("id-b1".to_string()),
                Err("msg_duplicate".to_string())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_gets_every_line_again_in_order_and_lateness_is_seen() {
        let rooms = Arc::new(Semaphore::new(WINDOW));
        let mut outbox = Outbox::default();
        let start = Instant::now();
        let mut answers = Vec::new();
        for i in 0..3 {
            let (l, a) = line("a", &format!("a{i}"), &rooms);
            outbox.push(l, (i < 2).then_some(start));
            answers.push(a);
        }
        assert!(!outbox.overdue(start + ANSWER_WITHIN - Duration::from_millis(1)));
        assert!(outbox.overdue(start + ANSWER_WITHIN));
        let again = start + ANSWER_WITHIN;
        let texts: Vec<_> = outbox.all(again).map(|l| l.text.clone()).collect();
        assert_eq!(texts, ["a0", "a1", "a2"]);
        assert!(!outbox.overdue(again + Duration::from_secs(1)));
        assert_eq!(outbox.len(), 3);
    }
}
