//! The platforms of this build: the one list, and the only place outside a
//! platform's own folder that names them. Adding a platform is its folder
//! (`src/platforms/<name>/`), its module line and its line in [`PLATFORMS`].

pub mod discord;
pub mod slack;
pub mod twitch;

use std::path::Path;
use std::sync::Arc;

use crate::bridge::{AnyPlatform, Bridge, BuildError, Descriptor};
use crate::config::{self, BridgeConfig, Config, ConfigError, PlatformSchema};

/// Every platform this build can bridge.
pub static PLATFORMS: &[&dyn AnyPlatform] = &[
    &Descriptor::<twitch::Twitch>::new(),
    &Descriptor::<discord::Discord>::new(),
    &Descriptor::<slack::Slack>::new(),
];

/// The platforms as the configuration reads them.
pub fn schemas() -> Vec<&'static dyn PlatformSchema> {
    PLATFORMS
        .iter()
        .map(|p| *p as &dyn PlatformSchema)
        .collect()
}

/// Load `path` (plus env overrides) with every platform of this build.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    config::load(path, &schemas())
}

/// Read a configuration from TOML text (plus env overrides).
pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
    config::from_toml_str(toml, &schemas())
}

/// Build the bridge of an enabled account.
pub fn build(account: &BridgeConfig, config: &Config) -> Result<Arc<dyn Bridge>, BuildError> {
    let platform = PLATFORMS
        .iter()
        .find(|p| p.name() == account.platform)
        .ok_or_else(|| BuildError::UnknownPlatform(account.platform.to_string()))?;
    platform.build(account, config)
}
