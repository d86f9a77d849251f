//! Files a platform serves only with credentials or only for a while
//! (Slack's private files need the bot token; Discord's attachment URLs are
//! signed and expire). jetbridge links to them at a stable address of its own
//! HTTP surface (`/media/<token>`), and when a viewer opens one, the bridge
//! that saw the file fetches it afresh: a redirect to a new signed URL, or the
//! bytes streamed through with the token the viewer does not have.

use bytes::Bytes;
use futures::stream::BoxStream;

use super::StoreError;

/// Largest file streamed through jetbridge.
pub const MAX_MEDIA: u64 = 25 * 1024 * 1024;

/// What opening a file gives.
pub enum Media {
    /// A URL that works for anyone now (a freshly signed one).
    Redirect(String),
    /// The bytes, streamed (never held whole).
    Stream {
        content_type: Option<String>,
        length: Option<u64>,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    },
}

/// Why a file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the platform no longer has this file")]
    Gone,
    #[error("the file is larger than {MAX_MEDIA} bytes")]
    TooLarge,
    #[error("the platform did not answer: {0}")]
    Unavailable(String),
}

/// Where the stable links of files are kept (implemented over JetStream).
#[async_trait::async_trait]
pub trait MediaIndex: Send + Sync {
    /// A stable link for `reference` (what `bridge` needs to open the file
    /// again); `None` when no link can be made now (no HTTP surface, NATS away).
    async fn link(&self, bridge: &str, reference: &str) -> Option<String>;

    /// The bridge and reference behind a link's token: `Ok(None)` when there
    /// is no such token, an error when the index cannot be read now.
    async fn resolve(&self, token: &str) -> Result<Option<(String, String)>, StoreError>;
}
