//! `turnpike`: STUN/TURN server and client tools for WebRTC connectivity.
//!
//! `main` only dispatches; see [`cli`] for the subcommands and [`config`] for the configuration.

mod admin;
mod cli;
mod client;
mod cluster;
mod completions;
mod config;
mod control;
mod coturn_command;
mod http;
mod logging;
mod metrics;
mod server;
mod tls;
mod users;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run(std::env::args_os())
}
