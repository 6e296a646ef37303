//! The server side of `turnpike serve`: start-up (`serve`, `turn_setup`, `host_checks`,
//! `fd_limit`), the workers and their data path (`worker`, `worker_handle`, `worker_loop`, `udp_listener`, `relay_loop`,
//! `relay_registry`, `relay_commands`, `worker_state`, `outbox`), TCP/TLS/DTLS clients (`stream_listener`,
//! `stream_queue`, `tcp_relay`, `dtls_listener`, `dtls`), the kernel fast path (`kernel_path`),
//! the event log (`server_events`) and per-source limits (`per_ip`, `source`). See
//! docs/architecture.md for how a datagram crosses them.

pub mod cluster_setup;
pub mod dtls;
pub mod dtls_listener;
pub mod fd_limit;
pub mod host_checks;
pub mod kernel_path;
pub mod outbox;
pub mod per_ip;
pub mod relay_commands;
pub mod relay_loop;
pub mod relay_registry;
pub mod serve;
pub mod server_events;
pub mod source;
pub mod stream_listener;
pub mod stream_queue;
pub mod tcp_relay;
pub mod turn_setup;
pub mod udp_listener;
pub mod worker;
pub mod worker_handle;
pub mod worker_loop;
pub mod worker_state;
