//! The `jetbridge` command line: `run` (default), `check`, `tail`, `send`, `schema`.
//! The only user of anyhow; everything it does is the library's.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use jetbridge::bus::{Bus, ReadFrom};
use jetbridge::config::{Config, ConfigError};
use jetbridge::event::{self, ChatEvent};
use jetbridge::platforms;
use jetbridge::render;
use jetbridge::status::Health;

/// glibc's malloc was a fifth of the relay's CPU (allocation-heavy IRC
/// parsing and JSON) and fragmented over days; mimalloc is faster at both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jetbridge",
    version,
    about = "Chat bridged between Twitch, Discord, Slack and the web through NATS JetStream"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "JETBRIDGE_CONFIG",
        default_value = "bridges.toml"
    )]
    config: PathBuf,
    /// Log line format.
    #[arg(
        long,
        global = true,
        env = "JETBRIDGE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridges (the default).
    Run,
    /// Validate the configuration and print the resolved rooms and routes.
    Check {
        /// Also fail on warnings (channels of disabled bridges, read-only accounts).
        #[arg(long)]
        strict: bool,
    },
    /// Print a room's events (or every room's) as they arrive.
    Tail {
        room: Option<String>,
        /// Start with the last N events.
        #[arg(long, conflicts_with = "since")]
        last: Option<u64>,
        /// Start with the events of the last DURATION ("10m", "2h").
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Print each event as its JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Publish a message to a room as the web surface would.
    Send {
        room: String,
        text: String,
        /// Author name.
        #[arg(long = "as", default_value = "jetbridge")]
        author: String,
    },
    /// Print the JSON Schema of the event.
    Schema,
    /// Exit 0 when this instance's `/healthz` answers (a container health check).
    Health {
        /// Address to ask instead of `http.listen`.
        #[arg(long)]
        addr: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` narrates its lifecycle; one-shot commands only speak up on trouble.
    let default_level = match cli.command {
        None | Some(Command::Run) => "info",
        Some(_) => "warn",
    };
    init_logging(cli.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<ConfigError>() {
                eprint!("error: {ce}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour codes belong on a terminal, not in a file or a container's log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Run) {
        Command::Schema => {
            println!("{}", event::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { addr } => {
            let config = platforms::load(&cli.config)?;
            let addr = addr.unwrap_or_else(|| local_addr(&config.http.listen));
            match healthz(&addr).await {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Check { strict } => {
            let config = platforms::load(&cli.config)?;
            print_check(&config);
            if strict && !config.warnings.is_empty() {
                eprintln!(
                    "error: {} warning(s) and --strict was given",
                    config.warnings.len()
                );
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let config = platforms::load(&cli.config)?;
            let shutdown = CancellationToken::new();
            tokio::spawn(signal_shutdown(shutdown.clone()));
            jetbridge::run(config, Health::default(), shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Send { room, text, author } => {
            let config = platforms::load(&cli.config)?;
            if config.room(&room).is_none() {
                bail!("unknown room {room:?} ({})", room_names(&config));
            }
            let text = text.trim().to_string();
            if text.is_empty() {
                bail!("the text is empty");
            }
            let bus = connect(&config).await?;
            let ev = ChatEvent::web(&room, &author, text);
            let seq = bus.publish_now(&ev).await?;
            println!("{} (seq {seq})", ev.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail {
            room,
            last,
            since,
            json,
        } => {
            let config = platforms::load(&cli.config)?;
            if let Some(r) = &room
                && config.room(r).is_none()
            {
                bail!("unknown room {r:?} ({})", room_names(&config));
            }
            let bus = connect(&config).await?;
            tail(&bus, room.as_deref(), last, since, json).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn room_names(config: &Config) -> String {
    if config.rooms.is_empty() {
        return "no rooms are configured".into();
    }
    let names: Vec<&str> = config.rooms.iter().map(|r| r.name.as_str()).collect();
    format!("known: {}", names.join(", "))
}

async fn connect(config: &Config) -> anyhow::Result<Bus> {
    let bus = Bus::connect(&config.nats, Health::default(), false).await?;
    bus.ensure_stream()
        .await
        .context("the chat stream is not available")?;
    Ok(bus)
}

/// Where to reach our own listener: a wildcard address means loopback.
fn local_addr(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        _ => listen.to_string(),
    }
}

/// `GET /healthz` over plain HTTP/1.1, 200 or an error.
async fn healthz(addr: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await?;
        anyhow::Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .context("no answer within 3 s")??;
    if head.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        bail!("{}", head.lines().next().unwrap_or("no status line"))
    }
}

async fn signal_shutdown(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    token.cancel();
}

async fn tail(
    bus: &Bus,
    room: Option<&str>,
    last: Option<u64>,
    since: Option<Duration>,
    json: bool,
) -> anyhow::Result<()> {
    let filter = match room {
        Some(r) => event::room_filter(r),
        None => event::all_filter(),
    };
    let start = match (last, since) {
        (_, Some(d)) => {
            let d = time::Duration::try_from(d).context("--since is too long")?;
            ReadFrom::Time(time::OffsetDateTime::now_utc() - d)
        }
        (Some(n), None) => ReadFrom::Sequence(bus.start_for_last(&filter, n).await?),
        (None, None) => ReadFrom::New,
    };
    let mut messages = bus.read_ordered(&filter, start).await?;
    let mut out = std::io::stdout().lock();
    while let Some(msg) = messages.next().await {
        let msg = msg.context("reading the stream")?;
        if json {
            out.write_all(&msg.payload)?;
            out.write_all(b"\n")?;
        } else {
            match serde_json::from_slice::<ChatEvent>(&msg.payload) {
                Ok(ev) => writeln!(out, "{}", human(&ev))?,
                Err(e) => writeln!(out, "? {}: not a chat event ({e})", msg.subject)?,
            }
        }
        out.flush()?;
    }
    Ok(())
}

fn human(ev: &ChatEvent) -> String {
    let ts = ev.ts.format("%H:%M:%S");
    let origin = format!("{}/{}", ev.source.bridge, ev.source.channel);
    let text = render::single_line(&render::markup_to_plain(&ev.text));
    match ev.kind {
        event::EventKind::Message => {
            format!("{ts} [{}] {origin} {}: {text}", ev.room, ev.author_name())
        }
        event::EventKind::Edit => format!(
            "{ts} [{}] {origin} {} edited {}: {text}",
            ev.room,
            ev.author_name(),
            ev.target.as_deref().unwrap_or("?")
        ),
        event::EventKind::Delete => format!(
            "{ts} [{}] {origin} deleted {}",
            ev.room,
            ev.target.as_deref().unwrap_or("?")
        ),
        event::EventKind::Notice => {
            let (kind, system) = ev
                .notice
                .as_ref()
                .map_or(("?", ""), |n| (n.kind.as_str(), n.system_text.as_str()));
            let system = render::single_line(system);
            let said = match (system.is_empty(), text.is_empty()) {
                (_, true) => system,
                (true, false) => text,
                (false, false) => format!("{system} | {text}"),
            };
            format!(
                "{ts} [{}] {origin} ({kind}) {}: {said}",
                ev.room,
                ev.author_name()
            )
        }
        event::EventKind::Moderation => {
            let Some(m) = &ev.moderation else {
                return format!("{ts} [{}] {origin} moderation", ev.room);
            };
            let who = |a: &Option<event::Author>| {
                a.as_ref()
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| "?".into())
            };
            let mut line = format!(
                "{ts} [{}] {origin} moderation: {}",
                ev.room,
                m.action.as_str()
            );
            if m.user.is_some() {
                line.push_str(&format!(" {}", who(&m.user)));
            }
            if let Some(t) = &m.target {
                line.push_str(&format!(" {t}"));
            }
            if let Some(d) = m.duration_s {
                line.push_str(&format!(" for {d} s"));
            }
            if m.actor.is_some() {
                line.push_str(&format!(" by {}", who(&m.actor)));
            }
            for r in &m.results {
                let verdict = match (&r.error, r.ok) {
                    (_, true) => "ok".to_string(),
                    (Some(e), false) => format!("refused: {e}"),
                    (None, false) => "refused".to_string(),
                };
                line.push_str(&format!(" | {}/{} {verdict}", r.bridge, r.channel));
            }
            line
        }
        event::EventKind::Reaction => {
            let (op, emoji) = ev.reaction.as_ref().map_or(("?", "?"), |r| {
                (
                    match r.op {
                        event::ReactionOp::Add => "reacted",
                        event::ReactionOp::Remove => "took back",
                    },
                    r.emoji.as_str(),
                )
            });
            let who = ev.author.as_ref().map_or("everyone", |a| a.name.as_str());
            format!(
                "{ts} [{}] {origin} {who} {op} {emoji} on {}",
                ev.room,
                ev.target.as_deref().unwrap_or("?")
            )
        }
        event::EventKind::Unknown => format!(
            "{ts} [{}] {origin} an event of a kind this build does not know ({})",
            ev.room, ev.id
        ),
    }
}

/// The resolved configuration, secrets redacted.
fn print_check(config: &Config) {
    println!("configuration {} is valid", config.source);
    println!(
        "nats: {} stream {} (max_age {}, duplicate_window {})",
        config.nats.url,
        config.nats.stream,
        humantime::format_duration(config.nats.max_age),
        humantime::format_duration(config.nats.duplicate_window)
    );
    if !config.nats.token.is_empty() {
        println!("  token {}", config.nats.token);
    }
    if config.http.enabled {
        let sending = if config.http.api_token.is_empty() {
            "sending disabled".to_string()
        } else {
            format!("api_token {}", config.http.api_token)
        };
        let moderating = if config.http.mod_token.is_empty() {
            "moderation console off".to_string()
        } else {
            format!("mod_token {}", config.http.mod_token)
        };
        println!("http: {} ({sending}; {moderating})", config.http.listen);
    } else {
        println!("http: disabled");
    }
    println!("bridges:");
    for b in config.bridges.values() {
        let state = if b.common.enabled {
            "enabled"
        } else {
            "disabled"
        };
        // Settings print through Debug, where every secret is a `Secret`.
        println!("  {} ({}, {state}) {:?}", b.name, b.platform, b.settings);
        for note in b.settings.check_notes() {
            println!("    {note}");
        }
    }
    println!("rooms:");
    for r in &config.rooms {
        let hold = r
            .hold
            .map(|h| format!(", hold {}", humantime::format_duration(h)))
            .unwrap_or_default();
        let notices = match &r.notices {
            jetbridge::config::Notices::All => "all".to_string(),
            jetbridge::config::Notices::Only(t) if t.is_empty() => "none".to_string(),
            jetbridge::config::Notices::Only(t) => t.join(", "),
        };
        println!(
            "  {} -> subjects {}{hold}, notices relayed: {notices}",
            r.name,
            event::room_filter(&r.name)
        );
        for c in &r.channels {
            let dir = format!("{:<4}", c.direction.as_str());
            let live = if config.bridge_enabled(&c.bridge) {
                ""
            } else {
                " (bridge disabled: skipped)"
            };
            println!(
                "    {dir} {}:{} publishes on {}{live}",
                c.bridge,
                c.channel,
                event::subject(&r.name, &c.bridge, &c.channel)
            );
        }
        println!("    both web:api (HTTP API and chat page)");
    }
    for w in &config.warnings {
        println!("warning: {w}");
    }
}
