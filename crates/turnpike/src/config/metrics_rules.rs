//! The rules of the metrics keys: `metrics-listen` (an address, or "off") and
//! `metrics-on-http`.

use std::net::SocketAddr;

use super::error::Reason;
use super::layer::ConfigLayer;
use super::validate::{push, Problems};
use super::Config;

/// The spellings of "no metrics listener".
const OFF: [&str; 2] = ["", "off"];

/// Checks the metrics keys of `layer` and writes them into `config` (defaults on entry, the
/// STUN/TURN and HTTP listeners already checked).
pub(super) fn check(p: &mut Problems, layer: &ConfigLayer, config: &mut Config) {
    config.metrics_on_http = layer.metrics_on_http.unwrap_or(config.metrics_on_http);
    let Some(text) = layer.metrics_listen.as_deref() else {
        return;
    };
    let text = text.trim();
    if OFF.iter().any(|off| text.eq_ignore_ascii_case(off)) {
        config.metrics_listen = None;
        return;
    }
    match text.parse::<SocketAddr>() {
        Ok(address) => {
            config.metrics_listen = Some(address);
            check_clash(p, config, address);
        }
        Err(_) => {
            let why = format!(
                "`{text}` is not IP:PORT (such as 127.0.0.1:9641) nor \"off\"; an IPv6 address \
                 goes in brackets: [::1]:9641"
            );
            push(p, "metrics-listen", Reason::BadValue(why));
        }
    }
}

/// The metrics listener is a TCP listener of its own: it cannot share an address with the
/// STUN/TURN TCP or TLS listeners or the HTTP ones.
fn check_clash(p: &mut Problems, config: &Config, address: SocketAddr) {
    if address.port() == 0 {
        return;
    }
    let used = |on: bool, addresses: &[SocketAddr]| on && addresses.contains(&address);
    let clash = used(config.tcp, &config.listen)
        || used(config.tls.is_some(), &config.tls_listen)
        || used(config.http, &config.http_listen);
    if clash {
        let why = format!(
            "`{address}` is also a STUN/TURN or HTTP listen address; metrics need their own \
             (or metrics-on-http = true and metrics-listen = \"off\")"
        );
        push(p, "metrics-listen", Reason::Rule(why));
    }
}
