//! The client tools: `turnpike stun` (`stun_command`, `stun_dtls`), `nat` (`nat_command`),
//! `check`, `p2p`, `token` (`token_command`), the TURN/STUN server discovery of RFC 5928
//! (`discovery`), the DTLS client session of `stun` and `check` (`dtls_session`), the driver
//! of their Binding transactions (`transaction_driver`) and the arguments they share
//! (`client_args`).

pub mod check;
pub mod client_args;
pub mod discovery;
pub mod dtls_session;
pub mod nat_command;
pub mod p2p;
pub mod stun_command;
pub mod stun_dtls;
pub mod token_command;
pub mod transaction_driver;
