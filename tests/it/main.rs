//! One integration test binary (the support code compiled once), a module per
//! topic. Each test starts what it needs: a real `nats-server -js` on free
//! ports with its own store, fake platforms speaking the real protocols, and
//! the real `jetbridge` binary.

mod support;

mod browser;
mod catchup;
mod cli;
mod cluster;
mod config;
mod conformance;
mod console;
mod discord;
mod event;
mod faults;
mod ha;
mod helix;
mod hold;
mod http;
mod media;
mod mirror;
mod moderation;
mod notices;
mod page;
mod page_notices;
mod properties;
mod reactions;
mod readiness;
mod recheck;
mod slack;
mod stop;
mod threads;
mod twitch;
mod twitch_history;
mod twitch_lines;
mod twitch_window;
