//! `turnpike`: STUN/TURN server and client tools for WebRTC connectivity.
//!
//! `main` only dispatches; see [`cli`] for the subcommands and [`config`] for the configuration.

mod cli;
mod config;
mod logging;
mod serve;
mod stream_listener;
mod stun_command;
mod tls;
mod udp_listener;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run(std::env::args_os())
}
