//! The HTTPS keys: `https-listen` and the certificate it uses.

use std::path::PathBuf;

use super::{check, only_problem, problems, TempConfig};
use crate::config::TlsFiles;

/// A configuration directory holding `cert.pem`, `key.pem`, `https-cert.pem` and
/// `https-key.pem` (contents are not parsed by the configuration check).
fn with_files() -> TempConfig {
    let file = TempConfig::new("");
    for name in ["cert.pem", "key.pem", "https-cert.pem", "https-key.pem"] {
        std::fs::write(file.dir().join(name), "x").unwrap();
    }
    file
}

/// Loads `text` from the file of `file`.
fn load(file: &TempConfig, text: &str) -> crate::config::Config {
    std::fs::write(&file.path, text).unwrap();
    crate::config::load(Some(&file.path), &crate::config::CliLayer::default()).unwrap()
}

fn pair(file: &TempConfig, cert: &str, key: &str) -> Option<TlsFiles> {
    let path = |name: &str| -> PathBuf { file.dir().join(name) };
    Some(TlsFiles {
        cert: path(cert),
        key: path(key),
    })
}

#[test]
fn https_is_off_by_default() {
    let config = check("").unwrap();
    assert!(config.https_listen.is_empty());
    assert_eq!(config.https, None);
}

#[test]
fn https_uses_the_tls_certificate_unless_it_has_its_own() {
    let file = with_files();
    let tls = "tls-cert = \"cert.pem\"\ntls-key = \"key.pem\"\n";
    let config = load(&file, &format!("{tls}https-listen = [\"127.0.0.1:8443\"]"));
    assert_eq!(config.https_listen, ["127.0.0.1:8443".parse().unwrap()]);
    assert_eq!(config.https, pair(&file, "cert.pem", "key.pem"));

    let own = "https-cert = \"https-cert.pem\"\nhttps-key = \"https-key.pem\"\n";
    let config = load(
        &file,
        &format!("{tls}{own}https-listen = [\"127.0.0.1:8443\"]"),
    );
    assert_eq!(config.https, pair(&file, "https-cert.pem", "https-key.pem"));
    let config = load(&file, &format!("{own}https-listen = [\"127.0.0.1:8443\"]"));
    assert_eq!(config.https, pair(&file, "https-cert.pem", "https-key.pem"));
}

#[test]
fn https_listen_needs_a_certificate() {
    let (line, key, reason) = only_problem("https-listen = [\"127.0.0.1:8443\"]");
    assert_eq!((line, key.as_deref()), (Some(1), Some("https-listen")));
    assert!(
        reason.contains("https-cert") && reason.contains("tls-cert"),
        "{reason}"
    );
}

#[test]
fn https_cert_and_key_go_together_and_must_exist() {
    let (_, key, reason) = only_problem("https-cert = \"/etc/c.pem\"");
    assert_eq!(key.as_deref(), Some("https-cert"));
    assert_eq!(reason, "requires `https-key` to be set as well");
    let found = problems("https-cert = \"/nonexistent/c.pem\"\nhttps-key = \"/nonexistent/k.pem\"");
    let keys: Vec<_> = found.iter().map(|p| p.key.as_deref()).collect();
    assert_eq!(keys, [Some("https-cert"), Some("https-key")]);
    assert!(found[0].reason.to_string().contains("/nonexistent/c.pem"));
}

#[test]
fn https_listen_needs_its_own_addresses_and_http_on() {
    let file = with_files();
    let own = "https-cert = \"https-cert.pem\"\nhttps-key = \"https-key.pem\"\n";
    let one = "https-listen = [\"127.0.0.1:8443\"]";
    for (text, expected) in [
        (
            format!("{one}\nhttp-listen = [\"127.0.0.1:8443\"]"),
            "also an HTTP",
        ),
        (
            format!("{one}\nlisten = [\"127.0.0.1:8443\"]"),
            "also an HTTP or STUN/TURN TCP",
        ),
        (
            "https-listen = [\"127.0.0.1:9443\", \"127.0.0.1:9443\"]".to_owned(),
            "listed twice",
        ),
        (format!("{one}\nhttp = false"), "`http` is false"),
    ] {
        let text = format!("{own}{text}\n");
        std::fs::write(&file.path, &text).unwrap();
        let error =
            crate::config::load(Some(&file.path), &crate::config::CliLayer::default()).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{text}: {error}");
        let problem = &error.problems[0];
        assert_eq!(problem.key.as_deref(), Some("https-listen"), "{text}");
        assert!(
            problem.reason.to_string().contains(expected),
            "{text}: {error}"
        );
    }
}
