//! Discord's attachment URLs are signed and expire (`ex=`, about a day): a
//! copy elsewhere linking to one would soon link to nothing. Events link to
//! jetbridge's `/media/…` instead, and opening it asks Discord for a fresh
//! signed URL (`POST /attachments/refresh-urls`) and redirects there, so
//! viewers fetch the file from Discord's CDN, not through jetbridge.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::Shared;
use super::rest::Auth;
use crate::bridge::{Media, MediaError};
use crate::cache::Bounded;

/// What identifies a signed attachment URL: the URL without its signature.
/// `None` for URLs that do not expire (stickers, emoji, other sites).
pub fn reference(url: &str) -> Option<String> {
    let (base, query) = url.split_once('?')?;
    let signed = query.split('&').any(|kv| kv.starts_with("ex="));
    (signed && base.contains("/attachments/")).then(|| base.to_string())
}

/// When a signed URL stops working (its `ex`, hex Unix seconds).
fn expiry(url: &str) -> Option<SystemTime> {
    let query = url.split_once('?')?.1;
    let ex = query.split('&').find_map(|kv| kv.strip_prefix("ex="))?;
    let secs = u64::from_str_radix(ex, 16).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Fresh URLs by reference, kept while they work (old ones are fetched again).
pub struct Fresh(tokio::sync::Mutex<Bounded<String, String>>);

/// Fresh attachment URLs kept at most.
pub const FRESH_URLS: usize = 4096;

impl Default for Fresh {
    fn default() -> Self {
        Fresh(tokio::sync::Mutex::new(Bounded::new(FRESH_URLS)))
    }
}

impl Shared {
    /// A URL for `reference` that works now.
    pub(super) async fn open_media(&self, reference: &str) -> Result<Media, MediaError> {
        let soon = SystemTime::now() + Duration::from_secs(60);
        if let Some(url) = self.fresh.0.lock().await.get(reference)
            && expiry(url).is_some_and(|t| t > soon)
        {
            return Ok(Media::Redirect(url.clone()));
        }
        let body = json!({ "attachment_urls": [reference] });
        let v = self
            .rest
            .call(
                reqwest::Method::POST,
                "/attachments/refresh-urls",
                Some(body),
                Auth::Bot,
            )
            .await
            .map_err(|e| MediaError::Unavailable(e.to_string()))?;
        let url = v["refreshed_urls"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|r| r["refreshed"].as_str())
            .ok_or(MediaError::Gone)?
            .to_string();
        self.fresh
            .0
            .lock()
            .await
            .insert(reference.to_string(), url.clone());
        Ok(Media::Redirect(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_attachment_urls_are_recognised() {
        let url =
            "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=65d903de&is=65c68ede&hm=abc&";
        assert_eq!(
            reference(url).as_deref(),
            Some("https://cdn.discordapp.com/attachments/1/2/cat.png")
        );
        assert_eq!(
            expiry(url),
            Some(UNIX_EPOCH + Duration::from_secs(0x65d903de))
        );
        assert_eq!(
            reference("https://media.discordapp.net/stickers/5.png"),
            None
        );
        assert_eq!(
            reference("https://example.org/attachments/x?ex=1"),
            Some("https://example.org/attachments/x".into())
        );
    }
}
