//! Values that need care in config: secrets that never print, and humantime
//! durations.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A secret string (token, password). `Debug` and `Display` never show the value,
/// so a secret cannot leak through a log line, `check` output or an error.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that hands it to a platform.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Env overrides arrive as scalars of any type (`JETBRIDGE_HTTP__API_TOKEN=1234`
        // parses as an integer), and a token is a token whatever it looks like.
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Secret(s)),
            Value::Number(n) => Ok(Secret(n.to_string())),
            Value::Bool(b) => Ok(Secret(b.to_string())),
            _ => Err(serde::de::Error::custom("expected a string")),
        }
    }
}

/// A humantime duration in config (`"2m"`, `"7d"`, `"500ms"`); use with
/// `#[serde(with = "duration")]`.
pub mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// The same, for an optional key.
    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::parse(&s).map(Some).map_err(serde::de::Error::custom),
            }
        }
    }

    /// A value that is not a duration.
    #[derive(Debug, thiserror::Error)]
    #[error("invalid duration {value:?}: {source} (expected e.g. \"500ms\", \"2m\", \"7d\")")]
    pub struct InvalidDuration {
        pub value: String,
        pub source: humantime::DurationError,
    }

    /// `s` as a duration, or an error saying what a duration looks like.
    pub fn parse(s: &str) -> Result<Duration, InvalidDuration> {
        humantime::parse_duration(s).map_err(|source| InvalidDuration {
            value: s.to_string(),
            source,
        })
    }
}
