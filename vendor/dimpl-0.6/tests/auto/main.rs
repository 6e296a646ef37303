mod common;
mod cross_matrix;
mod handshake;
mod server_fallback;
