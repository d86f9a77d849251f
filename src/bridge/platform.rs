//! The typed description of a platform ([`Platform`]) and its type-erased form
//! ([`AnyPlatform`]) that the registry lists. A platform states its name, its
//! typed settings and channel options (serde, `deny_unknown_fields`, parsed
//! once at config load), how its channel references normalize, and how to
//! build its bridge; everything generic (deserializing, downcasting, key paths)
//! happens here, once for all of them.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Bridge;
use crate::config::{
    AccountSettings, BridgeConfig, ChannelOptions, CommonBridgeConfig, Config, InvalidChannel,
    InvalidSetting, PlatformSchema, Problem, ProblemKind, options_as, settings_as,
};

/// A chat platform, as its folder under `src/bridge/` describes it.
pub trait Platform: Sized + Send + Sync + 'static {
    /// The platform name in config, subjects, logs and metrics.
    const NAME: &'static str;
    /// The platform keeps channel history a restart can catch up from.
    const HAS_HISTORY: bool = false;

    /// An account's keys (besides the shared ones).
    type Settings: AccountSettings + DeserializeOwned;
    /// A channel's extra keys (its schema names them for config's hints).
    type ChannelOptions: ChannelOptions + DeserializeOwned + schemars::JsonSchema;

    /// Checks across keys that serde cannot express (a login without a token).
    fn check(_settings: &Self::Settings) -> Result<(), InvalidSetting> {
        Ok(())
    }

    /// The canonical form of a channel reference, or why it is not one.
    fn normalize_channel(channel: &str) -> Result<String, InvalidChannel>;

    /// Build the bridge of an enabled account.
    fn build(account: Account<'_, Self>) -> Result<Arc<dyn Bridge>, BuildError>;
}

/// An account being built, with its typed settings and channels.
pub struct Account<'a, P: Platform> {
    pub name: &'a str,
    pub common: &'a CommonBridgeConfig,
    pub settings: &'a P::Settings,
    /// Every channel of this account in any room.
    pub channels: Vec<AccountChannel<'a, P>>,
}

/// One channel of an account being built.
pub struct AccountChannel<'a, P: Platform> {
    pub channel: &'a str,
    pub options: &'a P::ChannelOptions,
}

/// Why a bridge could not be built (before anything connects).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no platform {0:?} in this build")]
    UnknownPlatform(String),
    /// Config parsed the account with another platform (a bug, not a setting).
    #[error("{account}: settings of another platform")]
    SettingsMismatch { account: String },
    #[error("{account}.{setting}")]
    Setting {
        account: String,
        setting: InvalidSetting,
    },
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot load the system's root certificates: {0}")]
    RootCertificates(#[source] std::io::Error),
}

/// A platform with its types erased: what config reads, and how to build.
pub trait AnyPlatform: PlatformSchema {
    fn build(&self, account: &BridgeConfig, config: &Config)
    -> Result<Arc<dyn Bridge>, BuildError>;
}

/// The [`AnyPlatform`] of `P`.
pub struct Descriptor<P>(PhantomData<fn() -> P>);

impl<P> Descriptor<P> {
    pub const fn new() -> Self {
        Descriptor(PhantomData)
    }
}

impl<P: Platform> Default for Descriptor<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> PlatformSchema for Descriptor<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn has_history(&self) -> bool {
        P::HAS_HISTORY
    }

    fn settings(
        &self,
        path: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn AccountSettings>, Vec<Problem>> {
        let settings = P::Settings::deserialize(Value::Object(keys))
            .map_err(|e| vec![Problem::new(path, ProblemKind::Invalid, e.to_string())])?;
        P::check(&settings).map_err(|e| {
            vec![Problem::new(
                format!("{path}.{}", e.key),
                ProblemKind::Invalid,
                e.detail,
            )]
        })?;
        Ok(Arc::new(settings))
    }

    fn channel(&self, channel: &str) -> Result<String, InvalidChannel> {
        P::normalize_channel(channel)
    }

    fn channel_option_keys(&self) -> Vec<String> {
        let schema = schemars::schema_for!(P::ChannelOptions);
        schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn channel_options(
        &self,
        path: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn ChannelOptions>, Vec<Problem>> {
        P::ChannelOptions::deserialize(Value::Object(keys))
            .map(|o| Arc::new(o) as Arc<dyn ChannelOptions>)
            .map_err(|e| vec![Problem::new(path, ProblemKind::Invalid, e.to_string())])
    }
}

impl<P: Platform> AnyPlatform for Descriptor<P> {
    fn build(
        &self,
        account: &BridgeConfig,
        config: &Config,
    ) -> Result<Arc<dyn Bridge>, BuildError> {
        // Config parsed these with this very platform: the types match.
        let mismatch = || BuildError::SettingsMismatch {
            account: account.name.clone(),
        };
        let settings = settings_as::<P::Settings>(&account.settings).ok_or_else(mismatch)?;
        let mut channels = Vec::new();
        for (_, c) in config.channels_of(&account.name) {
            channels.push(AccountChannel {
                channel: &c.channel,
                options: options_as::<P::ChannelOptions>(&c.options).ok_or_else(mismatch)?,
            });
        }
        P::build(Account {
            name: &account.name,
            common: &account.common,
            settings,
            channels,
        })
    }
}
