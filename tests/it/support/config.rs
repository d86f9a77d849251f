//! `bridges.toml` for tests, built from parts: the NATS server, the HTTP
//! surface, one section per fake platform (each fake writes its own keys) and
//! rooms. Replaces the TOML blocks tests used to copy.

use super::nats::NatsServer;

/// A config under construction.
#[derive(Clone)]
pub struct ConfigBuilder {
    nats: Vec<String>,
    http: Option<String>,
    sections: Vec<String>,
    rooms: Vec<String>,
    raw: Vec<String>,
}

impl ConfigBuilder {
    /// Talking to `nats`, with HTTP off and nothing else.
    pub fn new(nats: &NatsServer) -> ConfigBuilder {
        Self::with_url(&nats.url())
    }

    /// Talking to NATS at `url` (a seed list, or a server not started yet).
    pub fn with_url(url: &str) -> ConfigBuilder {
        ConfigBuilder {
            nats: vec![format!("url = {url:?}")],
            http: None,
            sections: Vec::new(),
            rooms: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// One more `[nats]` line (`ack_wait = "3s"`).
    pub fn nats(mut self, line: &str) -> Self {
        self.nats.push(line.to_string());
        self
    }

    /// The HTTP surface on `listen`, sending with `api_token` (empty: disabled).
    pub fn http(mut self, listen: &str, api_token: &str) -> Self {
        self.http = Some(format!(
            "enabled = true\nlisten = {listen:?}\napi_token = {api_token:?}"
        ));
        self
    }

    /// One more `[http]` line (`public_url = "…"`), after [`http`](Self::http).
    pub fn http_key(mut self, line: &str) -> Self {
        let http = self
            .http
            .get_or_insert_with(|| "enabled = true".to_string());
        http.push('\n');
        http.push_str(line);
        self
    }

    /// A bridge section: `header` is `twitch` or `bridges.acme`; `keys` its lines.
    pub fn section(mut self, header: &str, keys: &str) -> Self {
        self.sections.push(format!("[{header}]\n{}", keys.trim()));
        self
    }

    /// A room with channel references (`"twitch:#alpha"`) or inline tables.
    pub fn room(self, name: &str, channels: &[&str]) -> Self {
        self.room_with(name, channels, "")
    }

    /// A room with more keys (`hold = "3s"`, `ignore_text = [...]`).
    pub fn room_with(mut self, name: &str, channels: &[&str], keys: &str) -> Self {
        let list: Vec<String> = channels
            .iter()
            .map(|c| {
                if c.starts_with('{') {
                    c.to_string()
                } else {
                    format!("{c:?}")
                }
            })
            .collect();
        self.rooms.push(format!(
            "[[rooms]]\nname = {name:?}\nchannels = [{}]\n{}",
            list.join(", "),
            keys.trim()
        ));
        self
    }

    /// TOML appended as it is (sections or rooms a test spells out itself).
    pub fn raw(mut self, toml: &str) -> Self {
        self.raw.push(toml.to_string());
        self
    }

    pub fn build(&self) -> String {
        let http = self.http.as_deref().unwrap_or("enabled = false");
        format!(
            "[nats]\n{}\n[http]\n{http}\n{}\n{}\n{}\n",
            self.nats.join("\n"),
            self.sections.join("\n"),
            self.rooms.join("\n"),
            self.raw.join("\n")
        )
    }
}
