//! Files shared in Slack. A file's URLs need the bot token (`url_private`),
//! and a Socket Mode `file_share` event may not carry them at all, so events
//! link to jetbridge's `/media/…` instead; opening it asks `files.info` for
//! the file and streams its bytes through with the token, which the viewer
//! on another platform does not have.
//!
//! Files are read from the event's JSON by hand: a file object slack-morphism
//! cannot read would otherwise make it drop the whole message's content
//! (text included) without a word.

use futures::StreamExt;
use serde_json::Value;

use super::Shared;
use crate::bridge::{MAX_MEDIA, Media, MediaError};

/// A file of a message, as much as the event said of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub id: String,
    pub name: String,
    pub mimetype: Option<String>,
    pub size: Option<u64>,
    /// Where Slack itself shows it (for viewers signed in to the workspace),
    /// when jetbridge cannot link to it.
    pub fallback: Option<String>,
    /// Slack hides it (a free workspace's older files).
    pub hidden: bool,
}

/// Take the files out of a message event's JSON and read them.
pub fn take_files(event: &mut Value) -> Vec<FileRef> {
    let Some(files) = event.as_object_mut().and_then(|m| m.remove("files")) else {
        return Vec::new();
    };
    files
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let id = f["id"].as_str()?.to_string();
            Some(FileRef {
                name: f["name"]
                    .as_str()
                    .or(f["title"].as_str())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("file")
                    .to_string(),
                mimetype: f["mimetype"].as_str().map(str::to_string),
                size: f["size"].as_u64(),
                fallback: f["permalink"]
                    .as_str()
                    .or(f["url_private"].as_str())
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
                hidden: f["mode"] == "hidden_by_limit",
                id,
            })
        })
        .collect()
}

impl Shared {
    /// The bytes of file `id`, streamed with the bot token.
    pub(super) async fn open_media(&self, id: &str) -> Result<Media, MediaError> {
        let session = self.client.open_session(&self.bot_token);
        let info: Value = session
            .http_session_api
            .http_get("files.info", &vec![("file", Some(id.to_string()))], None)
            .await
            .map_err(|e| match e {
                slack_morphism::errors::SlackClientError::ApiError(a)
                    if a.code == "file_not_found" || a.code == "file_deleted" =>
                {
                    MediaError::Gone
                }
                other => MediaError::Unavailable(other.to_string()),
            })?;
        let file = &info["file"];
        if file["mode"] == "hidden_by_limit" {
            return Err(MediaError::Gone);
        }
        if file["size"].as_u64().is_some_and(|s| s > MAX_MEDIA) {
            return Err(MediaError::TooLarge);
        }
        let url = file["url_private_download"]
            .as_str()
            .or(file["url_private"].as_str())
            .ok_or(MediaError::Gone)?;
        let resp = self
            .download
            .get(url)
            .bearer_auth(self.cfg.bot_token.expose())
            .send()
            .await
            .map_err(|e| MediaError::Unavailable(e.without_url().to_string()))?;
        // Without the token (or the files:read scope) Slack redirects to its
        // sign-in page: not a file.
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if !resp.status().is_success() || html {
            return Err(MediaError::Unavailable(format!(
                "Slack answered {} to the download (check the bot's files:read scope)",
                resp.status()
            )));
        }
        let content_type = file["mimetype"].as_str().map(str::to_string).or_else(|| {
            resp.headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        let length = resp.content_length();
        let body = resp
            .bytes_stream()
            .map(|c| c.map_err(std::io::Error::other))
            .boxed();
        Ok(Media::Stream {
            content_type,
            length,
            body,
        })
    }
}

/// A Socket Mode `events_api` payload, read: its files by hand (see the
/// header), the rest with slack-morphism's models. A message whose content
/// slack-morphism reads as nothing although it has text (a block it cannot
/// read) is read again without blocks and attachments; what still cannot be
/// read is counted and logged with its id.
pub fn read_push(
    mut payload: Value,
    inbound: &crate::bridge::Inbound,
) -> Option<(
    slack_morphism::prelude::SlackPushEventCallback,
    Vec<FileRef>,
)> {
    use slack_morphism::prelude::{SlackEventCallbackBody, SlackPushEventCallback};
    let files = take_files(&mut payload["event"]);
    let ts = payload["event"]["ts"].as_str().unwrap_or("?").to_string();
    let has_text = payload["event"]["text"]
        .as_str()
        .is_some_and(|t| !t.is_empty());
    let cb = match serde_json::from_value::<SlackPushEventCallback>(payload.clone()) {
        Ok(cb) => cb,
        Err(e) => {
            inbound.unparsed(&ts, &e);
            return None;
        }
    };
    let lost_content = match &cb.event {
        SlackEventCallbackBody::Message(m) => m.content.is_none() && has_text,
        SlackEventCallbackBody::Unknown(v) if v["type"] == "message" => {
            inbound.unparsed(&ts, &"a message event slack-morphism cannot read");
            return None;
        }
        _ => false,
    };
    if !lost_content {
        return Some((cb, files));
    }
    if let Some(ev) = payload["event"].as_object_mut() {
        ev.remove("blocks");
        ev.remove("attachments");
    }
    inbound.unparsed(&ts, &"its blocks could not be read; relayed without them");
    match serde_json::from_value::<SlackPushEventCallback>(payload) {
        Ok(cb) => Some((cb, files)),
        Err(e) => {
            inbound.unparsed(&ts, &e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_are_read_by_hand_and_taken_out() {
        let mut ev = json!({"type": "message", "subtype": "file_share", "text": "look", "files": [
            {"id": "F1", "name": "cat.png", "mimetype": "image/png", "size": 12,
             "url_private": "", "permalink": "https://x.slack.com/files/U1/F1/cat.png"},
            {"id": "F2", "mode": "hidden_by_limit"},
            {"id": "F3", "mode": "file_access", "file_access": "check_file_info", "created": 0, "user": ""},
            {"name": "no id"}
        ]});
        let files = take_files(&mut ev);
        assert!(ev.get("files").is_none());
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].name, "cat.png");
        assert_eq!(
            files[0].fallback.as_deref(),
            Some("https://x.slack.com/files/U1/F1/cat.png")
        );
        assert!(files[1].hidden && !files[2].hidden);
        assert_eq!(files[2].fallback, None);
    }
}
