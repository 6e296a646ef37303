//! The rules between and within keys, each with the reason it prints.

use super::{check, only_problem, problems, TempConfig};
use crate::config::Reason;

#[test]
fn ranges_are_enforced() {
    let (_, key, reason) = only_problem("tcp-idle-timeout = 0");
    assert_eq!(
        (key.as_deref(), reason.as_str()),
        (Some("tcp-idle-timeout"), "0 is out of range 1..=86400")
    );
    let (_, _, reason) = only_problem("tcp-idle-timeout = 86401");
    assert_eq!(reason, "86401 is out of range 1..=86400");
    let (_, _, reason) = only_problem("max-tcp-connections = 0");
    assert_eq!(reason, "0 is out of range 1..=1000000");
    assert!(check("tcp-idle-timeout = 86400\nmax-tcp-connections = 1000000").is_ok());
}

#[test]
fn tls_cert_needs_tls_key() {
    let file = TempConfig::new("");
    let cert = file.dir().join("cert.pem");
    std::fs::write(&cert, "x").unwrap();
    let text = format!("tls-cert = {:?}\n", cert.display().to_string());
    let (line, key, reason) = only_problem(&text);
    assert_eq!((line, key.as_deref()), (Some(1), Some("tls-cert")));
    assert_eq!(reason, "requires `tls-key` to be set as well");

    let (_, key, _) = only_problem("tls-key = \"/etc/key.pem\"");
    assert_eq!(key.as_deref(), Some("tls-key"));
}

#[test]
fn tls_files_must_exist() {
    let text = "tls-cert = \"/nonexistent/cert.pem\"\ntls-key = \"/nonexistent/key.pem\"\n";
    let found = problems(text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(matches!(&found[0].reason, Reason::MissingFile { .. }));
    assert!(found[0]
        .reason
        .to_string()
        .contains("/nonexistent/cert.pem"));
    assert_eq!(found[1].key.as_deref(), Some("tls-key"));
}

#[test]
fn a_badly_typed_tls_cert_does_not_also_report_tls_key() {
    let file = TempConfig::new("");
    std::fs::write(file.dir().join("key.pem"), "x").unwrap();
    std::fs::write(&file.path, "tls-cert = 5\ntls-key = \"key.pem\"\n").unwrap();
    let error = crate::config::check_file(&file.path).unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert_eq!(error.problems[0].key.as_deref(), Some("tls-cert"));
}

#[test]
fn tls_listen_must_not_reuse_a_tcp_listen_address() {
    let file = TempConfig::new("");
    std::fs::write(file.dir().join("c.pem"), "x").unwrap();
    std::fs::write(file.dir().join("k.pem"), "x").unwrap();
    let text = "listen = [\"127.0.0.1:3478\"]\ntls-listen = [\"127.0.0.1:3478\"]\n\
                tls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n";
    std::fs::write(&file.path, text).unwrap();
    let error = crate::config::check_file(&file.path).unwrap_err();
    assert!(
        error.to_string().contains("TLS needs its own port"),
        "{error}"
    );
    // Without TCP on `listen` the port is free for TLS (DTLS, on the same address by
    // default, would then take the UDP one: off here).
    std::fs::write(&file.path, format!("{text}tcp = false\ndtls = false\n")).unwrap();
    assert!(crate::config::check_file(&file.path).is_ok());
}

#[test]
fn dtls_listen_must_not_reuse_a_udp_listen_address() {
    let file = TempConfig::new("");
    std::fs::write(file.dir().join("c.pem"), "x").unwrap();
    std::fs::write(file.dir().join("k.pem"), "x").unwrap();
    // DTLS defaults to the TLS addresses, over UDP (RFC 7350, as coturn does).
    let text = "listen = [\"127.0.0.1:3478\"]\ntls-listen = [\"127.0.0.1:5349\"]\n\
                dtls-listen = [\"127.0.0.1:3478\"]\ntls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n";
    std::fs::write(&file.path, text).unwrap();
    let error = crate::config::check_file(&file.path).unwrap_err();
    assert!(
        error.to_string().contains("DTLS needs its own port"),
        "{error}"
    );
    // Without UDP on `listen`, or with DTLS off, the port is free.
    std::fs::write(&file.path, format!("{text}udp = false\n")).unwrap();
    assert!(crate::config::check_file(&file.path).is_ok());
    std::fs::write(&file.path, format!("{text}dtls = false\n")).unwrap();
    assert!(crate::config::check_file(&file.path).is_ok());
}

#[test]
fn dtls_listens_on_the_tls_addresses_by_default() {
    let file = TempConfig::new("");
    std::fs::write(file.dir().join("c.pem"), "x").unwrap();
    std::fs::write(file.dir().join("k.pem"), "x").unwrap();
    let text = "tls-listen = [\"127.0.0.1:5349\"]\ntls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n";
    std::fs::write(&file.path, text).unwrap();
    let config = crate::config::check_file(&file.path).unwrap();
    assert_eq!(
        config.dtls_addresses(),
        &["127.0.0.1:5349".parse().unwrap()]
    );
    std::fs::write(&file.path, format!("{text}dtls = false\n")).unwrap();
    let config = crate::config::check_file(&file.path).unwrap();
    assert!(config.dtls_addresses().is_empty());
}

#[test]
fn listen_addresses_are_not_empty_nor_repeated() {
    let (_, _, reason) = only_problem("listen = []");
    assert_eq!(reason, "must list at least one address");
    let (_, _, reason) = only_problem("listen = [\"127.0.0.1:3478\", \"127.0.0.1:3478\"]");
    assert_eq!(reason, "`127.0.0.1:3478` is listed twice");
}

#[test]
fn something_must_be_served() {
    let (_, key, reason) = only_problem("udp = false\ntcp = false\n");
    assert_eq!(key.as_deref(), Some("udp"));
    assert!(reason.contains("nothing to serve"), "{reason}");
    assert!(check("udp = false\n").is_ok());
}

// RFC 5780: the alternate address differs from the primary in IP and/or port.
#[test]
fn alternate_ip_must_differ_from_the_listen_ip() {
    let text = "listen = [\"192.0.2.1:3478\"]\nalternate-ip = \"192.0.2.1\"\n";
    let (line, key, reason) = only_problem(text);
    assert_eq!((line, key.as_deref()), (Some(2), Some("alternate-ip")));
    assert_eq!(reason, "must differ from the listen IP `192.0.2.1`");
}

#[test]
fn alternate_needs_exactly_one_listen_address() {
    let text = "listen = [\"192.0.2.1:3478\", \"192.0.2.1:3479\"]\nalternate-ip = \"192.0.2.2\"\n";
    let (_, key, reason) = only_problem(text);
    assert_eq!(key.as_deref(), Some("alternate-ip"));
    assert!(
        reason.contains("exactly one `listen` address") && reason.contains("found 2"),
        "{reason}"
    );

    let text = "listen = [\"192.0.2.1:3478\", \"192.0.2.1:3479\"]\nalternate-port = 3480\n";
    let (_, key, _) = only_problem(text);
    assert_eq!(key.as_deref(), Some("alternate-port"));
}

#[test]
fn alternate_ip_is_specific_and_of_the_same_family() {
    let one = "listen = [\"192.0.2.1:3478\"]\n";
    let (_, _, reason) = only_problem(&format!("{one}alternate-ip = \"0.0.0.0\""));
    assert!(reason.contains("specific address"), "{reason}");
    let (_, _, reason) = only_problem(&format!("{one}alternate-ip = \"2001:db8::2\""));
    assert!(reason.contains("same address family"), "{reason}");
    // With the default wildcard listen address the kernel would choose the source IP.
    let (_, _, reason) = only_problem("alternate-ip = \"192.0.2.2\"");
    assert!(reason.contains("wildcard"), "{reason}");
}

#[test]
fn alternate_port_must_differ_from_the_listen_port() {
    let one = "listen = [\"192.0.2.1:3478\"]\n";
    let (_, key, reason) = only_problem(&format!("{one}alternate-port = 3478"));
    assert_eq!(key.as_deref(), Some("alternate-port"));
    assert_eq!(reason, "must differ from the listen port 3478");
    let (_, _, reason) = only_problem(&format!("{one}alternate-port = 0"));
    assert_eq!(reason, "must not be 0");
}

#[test]
fn valid_rfc5780_setups() {
    let one = "listen = [\"192.0.2.1:3478\"]\n";
    let config = check(&format!(
        "{one}alternate-ip = \"192.0.2.2\"\nalternate-port = 3479"
    ))
    .unwrap();
    assert_eq!(config.alternate_ip, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(config.alternate_port, Some(3479));
    // Only an alternate IP: there is no second port.
    let config = check(&format!("{one}alternate-ip = \"192.0.2.2\"")).unwrap();
    assert_eq!(config.alternate_port, None);
    let v6 = "listen = [\"[2001:db8::1]:3478\"]\nalternate-ip = \"2001:db8::2\"\n";
    assert!(check(v6).is_ok());
}

// RFC 8489 §14.14: SOFTWARE is fewer than 128 characters (up to 763 bytes once decoded).
#[test]
fn software_is_bounded_and_empty_means_none() {
    let ok = format!("software = \"{}\"", "é".repeat(127));
    assert_eq!(
        check(&ok).unwrap().software.map(|s| s.chars().count()),
        Some(127)
    );
    let (_, key, reason) = only_problem(&format!("software = \"{}\"", "a".repeat(128)));
    assert_eq!(key.as_deref(), Some("software"));
    assert!(reason.contains("fewer than 128 characters"), "{reason}");
    assert_eq!(check("software = \"\"").unwrap().software, None);
}

#[test]
fn log_level_is_a_valid_filter() {
    assert!(check("log-level = \"debug\"").is_ok());
    assert!(check("log-level = \"WARN\"").is_ok());
    assert!(check("log-level = \"info,turnpike=trace\"").is_ok());
    let (_, key, reason) = only_problem("log-level = \"loud\"");
    assert_eq!(key.as_deref(), Some("log-level"));
    assert!(reason.contains("not a level"), "{reason}");
    let (_, _, reason) = only_problem("log-level = \"info,turnpike=[\"");
    assert!(reason.contains("invalid filter"), "{reason}");
}

#[test]
fn stream_client_limits() {
    // Issue #10 §4: the per-IP share defaults to a tenth of the total, at least one, and
    // never exceeds the total; the deadlines are 1..=300 s.
    let config = check("").unwrap();
    assert_eq!(config.max_tcp_connections_per_ip, 1_000);
    assert_eq!(config.tcp_frame_timeout.as_secs(), 10);
    assert_eq!(config.tcp_write_timeout.as_secs(), 10);
    let config = check("max-tcp-connections = 5").unwrap();
    assert_eq!(config.max_tcp_connections_per_ip, 1);
    let config = check("max-tcp-connections = 50\nmax-tcp-connections-per-ip = 80").unwrap();
    assert_eq!(config.max_tcp_connections_per_ip, 50);
    let (_, key, reason) = only_problem("tcp-frame-timeout = 0");
    assert_eq!(
        (key.as_deref(), reason.as_str()),
        (Some("tcp-frame-timeout"), "0 is out of range 1..=300")
    );
    let (_, key, _) = only_problem("tcp-write-timeout = 301");
    assert_eq!(key.as_deref(), Some("tcp-write-timeout"));
    let (_, key, _) = only_problem("max-tcp-connections-per-ip = 0");
    assert_eq!(key.as_deref(), Some("max-tcp-connections-per-ip"));
}
