//! What the configuration knows of a platform, without naming one: how to read
//! an account's keys and a channel reference. The bridge registry hands
//! [`load`](super::load) the list of platforms this build has; each platform
//! parses its own keys, once, into a typed value the config keeps opaque.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::Problem;

/// An account's platform-specific settings, parsed. `Debug` is what `check`
/// prints, so secrets in it must be [`Secret`](super::Secret)s.
pub trait AccountSettings: Any + fmt::Debug + Send + Sync {
    /// Why this account cannot post, if it cannot (a read-only login).
    fn read_only(&self) -> Option<String> {
        None
    }

    /// A history to catch up from that this account has and its platform
    /// does not keep (a service the account names).
    fn keeps_history(&self) -> bool {
        false
    }

    /// What `check` says about the account beyond its keys (the rights it
    /// needs on its platform, say).
    fn check_notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A channel's platform-specific options (the extra keys of the table form),
/// parsed.
pub trait ChannelOptions: Any + fmt::Debug + Send + Sync {}

/// No options: the table form takes only the shared keys.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

impl ChannelOptions for NoOptions {}

/// How the configuration reads one platform's part of the file.
pub trait PlatformSchema: Sync {
    /// The platform name (`[<name>]` sections and `platform = "<name>"`).
    fn name(&self) -> &'static str;

    /// Whether the platform keeps channel history that a restart can catch up
    /// from (the default of `backfill`).
    fn has_history(&self) -> bool;

    /// Parse an account's platform keys (the section less the shared keys).
    /// Problems name their key under `path`.
    fn settings(
        &self,
        path: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn AccountSettings>, Vec<Problem>>;

    /// The canonical form of a channel reference, or why it is not one.
    fn channel(&self, channel: &str) -> Result<String, InvalidChannel>;

    /// The extra keys a channel of this platform accepts in the table form.
    fn channel_option_keys(&self) -> Vec<String>;

    /// Parse a channel's extra keys (the table form less the shared keys; only
    /// keys of [`channel_option_keys`](Self::channel_option_keys)).
    fn channel_options(
        &self,
        path: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn ChannelOptions>, Vec<Problem>>;
}

/// The typed settings of an account whose platform is `T`'s.
pub fn settings_as<T: AccountSettings>(s: &Arc<dyn AccountSettings>) -> Option<&T> {
    let any: &dyn Any = s.as_ref();
    any.downcast_ref::<T>()
}

/// The typed options of a channel whose platform is `T`'s.
pub fn options_as<T: ChannelOptions>(o: &Arc<dyn ChannelOptions>) -> Option<&T> {
    let any: &dyn Any = o.as_ref();
    any.downcast_ref::<T>()
}

/// A platform key whose value cannot work, found by the platform's own checks
/// (what serde cannot express: a login without a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {detail}")]
pub struct InvalidSetting {
    /// The key under the account's section (`token`, `emote_api.bttv`).
    pub key: String,
    /// What is wrong and what is expected.
    pub detail: String,
}

impl InvalidSetting {
    pub fn new(key: impl Into<String>, detail: impl Into<String>) -> Self {
        InvalidSetting {
            key: key.into(),
            detail: detail.into(),
        }
    }
}

/// A channel reference that names no channel of its platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{channel:?} is not a {platform} channel (expected {expected})")]
pub struct InvalidChannel {
    pub channel: String,
    pub platform: &'static str,
    /// What a channel of the platform looks like.
    pub expected: &'static str,
}
