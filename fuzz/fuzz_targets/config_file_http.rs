//! The HTTP module's origin parser (`http/origin.rs`, std only), the only part of the HTTP
//! module the configuration module uses; `crate::http::origin` in the `config_file` target.

#[allow(dead_code)]
#[path = "../../crates/turnpike/src/http/origin.rs"]
pub mod origin;
