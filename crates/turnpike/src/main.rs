//! `turnpike`: STUN/TURN server and client tools for WebRTC connectivity.
//!
//! `main` only dispatches; see [`cli`] for the subcommands and [`config`] for the configuration.

mod admin;
mod check;
mod cli;
mod client_args;
mod cluster;
mod cluster_setup;
mod completions;
mod config;
mod control;
mod coturn_command;
mod discovery;
mod dtls;
mod dtls_listener;
mod fd_limit;
mod host_checks;
mod http;
mod kernel_path;
mod logging;
mod metrics;
mod nat_command;
mod outbox;
mod p2p;
mod per_ip;
mod receive;
mod relay_loop;
mod relay_registry;
mod serve;
mod server_events;
mod shared;
mod source;
mod stream_listener;
mod stream_queue;
mod stun_command;
mod stun_dtls;
mod tcp_relay;
mod tls;
mod token_command;
mod turn_setup;
mod udp_listener;
mod users;
mod worker;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run(std::env::args_os())
}
