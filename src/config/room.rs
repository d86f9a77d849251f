//! A room's own keys besides its channels and rules: `hold` (a moderation
//! hold) and `notices` (which types of a platform's event messages, Twitch
//! USERNOTICE `msg-id`s, are relayed to the room's other channels; the chat
//! page shows every type whatever the list says).

use std::time::Duration;

use serde_json::Value;

/// The longest hold: a hold delays every message of the room.
const MAX_HOLD: Duration = Duration::from_secs(600);

/// What is wrong with a room's `hold` or `notices`.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRoomKey {
    #[error("expected a duration such as \"3s\"")]
    HoldNotText,
    #[error(transparent)]
    Hold(#[from] super::secret::duration::InvalidDuration),
    #[error("at most 10m (a hold delays every message of the room)")]
    HoldTooLong,
    #[error("expected \"all\" or a list of notice types such as [\"announcement\", \"raid\"]")]
    Notices,
    #[error("expected true or false")]
    NotBool,
}

/// A room's own keys, read.
#[derive(Debug, Clone)]
pub struct RoomKeys {
    pub hold: Option<Duration>,
    pub notices: Notices,
    pub mirror_deletes: bool,
}

/// Take a room's own keys (`hold`, `notices`, `mirror_deletes`) out of
/// `map`; each that does not read keeps its default and is said with its key.
pub fn take_room_keys(
    map: &mut serde_json::Map<String, Value>,
) -> (RoomKeys, Vec<(&'static str, InvalidRoomKey)>) {
    let mut problems = Vec::new();
    let hold = match map.remove("hold").map(|v| parse_hold(&v)) {
        None => None,
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            problems.push(("hold", e));
            None
        }
    };
    let notices = match map.remove("notices").map(|v| Notices::parse(&v)) {
        None => Notices::default(),
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            problems.push(("notices", e));
            Notices::default()
        }
    };
    let mirror_deletes = match map.remove("mirror_deletes") {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            problems.push(("mirror_deletes", InvalidRoomKey::NotBool));
            true
        }
    };
    (
        RoomKeys {
            hold,
            notices,
            mirror_deletes,
        },
        problems,
    )
}

/// A room's `hold`: a duration, or none (zero).
pub fn parse_hold(v: &Value) -> Result<Option<Duration>, InvalidRoomKey> {
    let d = match v {
        Value::String(s) => super::secret::duration::parse(s)?,
        _ => return Err(InvalidRoomKey::HoldNotText),
    };
    if d > MAX_HOLD {
        return Err(InvalidRoomKey::HoldTooLong);
    }
    Ok((!d.is_zero()).then_some(d))
}

/// Which notice types a room relays (docs/events.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notices {
    /// Every type (`notices = "all"`).
    All,
    /// The types named, lower-cased (`[]`: none).
    Only(Vec<String>),
}

impl Default for Notices {
    /// Announcements are said to the whole community; subs and raids are the
    /// channel's own business unless the room says otherwise.
    fn default() -> Self {
        Notices::Only(vec!["announcement".to_string()])
    }
}

impl Notices {
    /// Whether notices of type `kind` are relayed.
    pub fn relays(&self, kind: &str) -> bool {
        match self {
            Notices::All => true,
            Notices::Only(types) => types.iter().any(|t| t.eq_ignore_ascii_case(kind)),
        }
    }

    /// The value of a room's `notices` key.
    pub fn parse(v: &Value) -> Result<Notices, InvalidRoomKey> {
        match v {
            Value::String(s) if s.eq_ignore_ascii_case("all") => Ok(Notices::All),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(t) if !t.trim().is_empty() => Ok(t.trim().to_lowercase()),
                    _ => Err(InvalidRoomKey::Notices),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Notices::Only),
            _ => Err(InvalidRoomKey::Notices),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn announcements_by_default_all_or_a_list_or_none_when_said() {
        assert!(Notices::default().relays("announcement"));
        assert!(!Notices::default().relays("sub"));
        assert_eq!(Notices::parse(&json!("all")).unwrap(), Notices::All);
        let some = Notices::parse(&json!(["Raid", "sub"])).unwrap();
        assert!(some.relays("raid") && some.relays("sub") && !some.relays("announcement"));
        assert!(!Notices::parse(&json!([])).unwrap().relays("announcement"));
        assert!(Notices::parse(&json!("some")).is_err());
        assert!(Notices::parse(&json!([1])).is_err());
    }
}
