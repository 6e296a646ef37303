//! The rules of the HTTPS keys: `https-listen`, and the certificate its listeners present
//! (`https-cert` and `https-key`, else the TURN listeners' `tls-cert` and `tls-key`, so that
//! one certificate for the host serves `turns:` and `https:` alike).

use std::net::SocketAddr;

use super::error::Reason;
use super::layer::ConfigLayer;
use super::validate::{check_addresses, file_pair, push, Problems};
use super::Config;

/// Checks the HTTPS keys of `layer` and writes their values into `config`, which holds the
/// checked TLS, STUN/TURN and HTTP keys on entry.
pub(super) fn check(p: &mut Problems, layer: &ConfigLayer, config: &mut Config) {
    // Checked even when HTTPS is off, like tls-cert: a wrong path is worth knowing early.
    let own = file_pair(
        p,
        ("https-cert", layer.https_cert.as_ref()),
        ("https-key", layer.https_key.as_ref()),
    );
    let own_given = layer.https_cert.is_some() || layer.https_key.is_some();
    if let Some(listen) = &layer.https_listen {
        config.https_listen = listen.clone();
    }
    if config.https_listen.is_empty() {
        return;
    }
    if !config.http {
        let why = "is set but `http` is false: HTTPS serves the HTTP app; set http = true";
        push(p, "https-listen", Reason::Rule(why.to_owned()));
        return;
    }
    check_addresses(p, "https-listen", &config.https_listen);
    check_port_clash(p, config);
    config.https = if own_given { own } else { config.tls.clone() };
    // No certificate anywhere (a given but unusable pair is reported already).
    let tls_given = layer.tls_cert.is_some() || layer.tls_key.is_some();
    if config.https.is_none() && !own_given && !tls_given {
        let why = "needs a certificate: set https-cert and https-key, or tls-cert and tls-key";
        push(p, "https-listen", Reason::Rule(why.to_owned()));
    }
}

/// An HTTPS address equal to an HTTP, STUN/TURN TCP or TLS address could never be bound.
fn check_port_clash(p: &mut Problems, config: &Config) {
    let streams = config.stream_addresses();
    let taken =
        |address: &SocketAddr| streams.contains(address) || config.http_listen.contains(address);
    for address in config
        .https_listen
        .iter()
        .filter(|a| a.port() != 0 && taken(a))
    {
        let why = format!(
            "`{address}` is also an HTTP or STUN/TURN TCP or TLS address; HTTPS needs its own"
        );
        push(p, "https-listen", Reason::Rule(why));
    }
}
