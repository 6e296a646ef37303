//! Checks of a valid configuration against the host `turnpike serve` starts on, run before
//! anything is bound and reported like configuration problems (located, exit code 2).
//!
//! `config check` does not run them: it checks a file on any machine (a package build, a
//! deployment pipeline), not the host the file is meant for.

use std::net::IpAddr;

use crate::config::{Config, KeyProblem, Reason};
use crate::tls::{CertStore, KeyNames};

/// The problems of `config` on this host, whose interface addresses are listed now; none when
/// they cannot be listed (then nothing can be told, and the relay reports its bind errors).
pub fn problems(config: &Config) -> Vec<KeyProblem> {
    let mut problems = match if_addrs::get_if_addrs() {
        Ok(interfaces) => {
            let ips: Vec<IpAddr> = interfaces.iter().map(if_addrs::Interface::ip).collect();
            problems_with(config, &ips)
        }
        Err(_) => Vec::new(),
    };
    problems.extend(certificate_problems(config));
    problems
}

/// The certificate and key files that do not parse or do not form a pair. `config check`
/// only checks that they are readable (the files of a package build may be placeholders);
/// `serve` would fail on them at once, so it says so as a configuration problem (exit 2), by
/// key and path. The messages name what is wrong, never the key material.
fn certificate_problems(config: &Config) -> Vec<KeyProblem> {
    let pairs = [
        (config.tls.as_ref(), KeyNames::TLS),
        (config.https.as_ref(), KeyNames::HTTPS),
    ];
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for (files, names) in pairs {
        let Some(files) = files else { continue };
        if checked.contains(&files) {
            continue;
        }
        checked.push(files);
        if let Err(error) = CertStore::load(files, names) {
            let message = format!("{error:#}");
            // The message starts with the key at fault (the key file, else the certificate
            // file or the pair): the problem is filed under it.
            let key = if message.starts_with(names.key) {
                names.key
            } else {
                names.cert
            };
            problems.push(KeyProblem {
                key,
                reason: Reason::Rule(message),
            });
        }
    }
    problems
}

/// [`problems`] given the host's interface addresses.
///
/// The PRIVATE part of an `external-ip` is the address relay sockets bind to (it is the relay
/// IP). When the host does not have it (a typo, the address of another machine, an interface
/// not up yet) every relay bind fails with EADDRNOTAVAIL, so every Allocate would get 508
/// while the server says "ready": refuse to start instead.
pub fn problems_with(config: &Config, interfaces: &[IpAddr]) -> Vec<KeyProblem> {
    if !config.turn {
        return Vec::new();
    }
    config
        .external_ip
        .iter()
        .filter_map(|entry| {
            let private = entry.private?;
            if interfaces.contains(&private) {
                return None;
            }
            let mut same_family: Vec<IpAddr> = interfaces
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == private.is_ipv4())
                .collect();
            same_family.sort();
            same_family.dedup();
            let has = if same_family.is_empty() {
                "none of that family".to_owned()
            } else {
                let listed: Vec<String> = same_family.iter().map(IpAddr::to_string).collect();
                listed.join(", ")
            };
            Some(KeyProblem {
                key: "external-ip",
                reason: Reason::Rule(format!(
                    "`{entry}`: the PRIVATE address `{private}` is not an address of this host \
                     (it has {has}): relay sockets could not bind it and every Allocate would \
                     fail"
                )),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::config::ExternalIp;

    fn config(external: &str) -> Config {
        Config {
            external_ip: vec![external.parse().unwrap_or(ExternalIp {
                public: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                private: None,
            })],
            ..Config::default()
        }
    }

    const HOST: [IpAddr; 2] = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
    ];

    #[test]
    fn a_private_address_the_host_lacks_is_named_with_the_hosts_addresses() {
        let found = problems_with(&config("203.0.113.7/10.9.9.9"), &HOST);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "external-ip");
        let text = found[0].reason.to_string();
        assert!(
            text.contains("`10.9.9.9` is not an address of this host"),
            "{text}"
        );
        assert!(text.contains("(it has 10.0.0.7, 127.0.0.1)"), "{text}");
    }

    #[test]
    fn a_private_address_of_the_host_and_a_public_only_entry_pass() {
        assert_eq!(problems_with(&config("203.0.113.7/10.0.0.7"), &HOST), []);
        assert_eq!(problems_with(&config("203.0.113.7"), &HOST), []);
    }

    #[test]
    fn stun_only_servers_relay_nothing_so_nothing_is_checked() {
        let stun_only = Config {
            turn: false,
            ..config("203.0.113.7/10.9.9.9")
        };
        assert_eq!(problems_with(&stun_only, &HOST), []);
    }
}
