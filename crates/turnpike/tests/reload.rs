//! Configuration reload on SIGHUP (docs/operations.md, "Reload"): users added to the file or
//! to the user database are accepted while an existing allocation keeps relaying; an invalid
//! file keeps the old configuration and logs every problem; keys that need a restart are
//! named; the log level changes at once; renewed TLS and DTLS certificates are presented to new
//! handshakes.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::process::Command;

mod common;
mod control_support;

use control_support::{admin, peer, signal, wait_for_log, ConfigFile, Turn, PATIENCE, TOKEN};

#[test]
fn sighup_adds_a_user_while_an_allocation_keeps_relaying() {
    let file = ConfigFile::new("users = [\"alice:alice-pw\"]");
    let server = file.serve(&[]);
    let udp = server.address("udp");
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");
    assert!(alice.round_trip(&peer, relayed, b"before", PATIENCE));
    let (code, _) = Turn::refused(udp, "bob", "bob-pw");
    assert_eq!(code, 401, "bob is unknown before the reload");

    file.write("users = [\"alice:alice-pw\", \"bob:bob-pw\"]");
    signal(&server, "HUP");
    let line = wait_for_log(&server, "configuration reloaded");
    assert_eq!(line["fields"]["cause"], "SIGHUP");
    assert_eq!(line["fields"]["users"], 2);

    let (mut bob, bob_relayed) = Turn::relayed(udp, "bob", "bob-pw");
    assert!(bob.round_trip(&peer, bob_relayed, b"bob", PATIENCE));
    // The allocation made before the reload still relays, both ways.
    assert!(alice.round_trip(&peer, relayed, b"after", PATIENCE));
}

#[test]
fn sighup_sees_a_user_added_with_turnpike_user_add() {
    let file = ConfigFile::new("");
    let db = file.dir.path().join("users.db");
    let add = |name: &str, password: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
            .args(["user", "--db", db.to_str().unwrap(), "add", name])
            .args(["--password", password])
            .env("TURNPIKE_REALM", control_support::REALM)
            .env_remove("TURNPIKE_CONFIG")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    add("alice", "alice-pw");
    file.write(&format!("user-db = \"{}\"", db.display()));
    let server = file.serve(&[]);
    let udp = server.address("udp");
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");
    assert!(alice.round_trip(&peer, relayed, b"before", PATIENCE));
    assert_eq!(Turn::refused(udp, "carol", "carol-pw").0, 401);

    add("carol", "carol-pw");
    signal(&server, "HUP");
    assert_eq!(
        wait_for_log(&server, "configuration reloaded")["fields"]["users"],
        2
    );
    let (mut carol, carol_relayed) = Turn::relayed(udp, "carol", "carol-pw");
    assert!(carol.round_trip(&peer, carol_relayed, b"carol", PATIENCE));
    assert!(alice.round_trip(&peer, relayed, b"after", PATIENCE));
}

#[test]
fn an_invalid_file_keeps_the_old_configuration_and_names_every_problem() {
    let file = ConfigFile::new("users = [\"alice:alice-pw\"]");
    let server = file.serve(&[]);
    let udp = server.address("udp");
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");

    // Two problems, one of them a secret too short: named by key, the value never printed.
    file.write(
        "users = [\"bob:bob-pw\"]\n\
         total-quota = 0\n\
         rest-secrets = [\"Xq7shrt\"]",
    );
    signal(&server, "HUP");
    let mut problems = Vec::new();
    for _ in 0..2 {
        let line = wait_for_log(&server, "configuration not reloaded");
        assert_eq!(line["level"], "WARN");
        problems.push(line["fields"]["problem"].as_str().unwrap().to_owned());
    }
    for key in ["rest-secrets", "total-quota"] {
        let named = format!("key `{key}`");
        assert!(problems.iter().any(|p| p.contains(&named)), "{problems:?}");
    }
    assert!(
        problems.iter().all(|p| !p.contains("Xq7shrt")),
        "{problems:?}"
    );

    // The old users still hold: alice relays and allocates again, bob is unknown.
    assert!(alice.round_trip(&peer, relayed, b"after", PATIENCE));
    let (mut again, again_relayed) = Turn::relayed(udp, "alice", "alice-pw");
    assert!(again.round_trip(&peer, again_relayed, b"again", PATIENCE));
    assert_eq!(Turn::refused(udp, "bob", "bob-pw").0, 401);
}

#[test]
fn restart_keys_are_named_and_the_log_level_changes_at_once() {
    let base = format!(
        "users = [\"alice:alice-pw\"]\nadmin-token = \"{TOKEN}\"\n\
         admin-listen = \"127.0.0.1:0\""
    );
    let file = ConfigFile::new(&format!("{base}\nlog-level = \"info\""));
    // No --log-level flag: the file's level is the one in force, and a reload changes it.
    let server = file.serve_logging("", &[]);
    let wrong_token = || {
        let admin = server.address("admin");
        control_support::http(admin, "GET", "/v1/info", Some("wrong-token-wrong-token")).0
    };
    assert_eq!(wrong_token(), 401);

    file.write(&format!(
        "{base}\nlog-level = \"debug\"\nworkers = 3\nsoftware = \"other\""
    ));
    let output = admin(&server, &["reload"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("need a restart: software, workers"),
        "{stdout}"
    );
    let line = wait_for_log(
        &server,
        "configuration keys changed that need a restart; they keep their old values",
    );
    assert_eq!(line["fields"]["keys"], "software, workers");

    // Debug lines appear from now on: a refused admin call is logged at debug.
    assert_eq!(wrong_token(), 401);
    let line = wait_for_log(&server, "admin API: missing or wrong token");
    assert_eq!(line["level"], "DEBUG");
}

/// A TLS connection to `to` trusting only `trusted`'s certificate, handshake done.
fn tls_to(
    trusted: &common::TlsFiles,
    to: std::net::SocketAddr,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.certified.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(to).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A Binding request over `stream` is answered.
fn binding_over<S: std::io::Read + std::io::Write>(stream: &mut S, tid: u8) {
    stream.write_all(&common::binding_request(tid)).unwrap();
    let mut header = [0u8; 20];
    stream.read_exact(&mut header).unwrap();
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    let answer = [&header[..], &body].concat();
    let message = stun::Message::decode(&answer).unwrap();
    assert_eq!(
        message.header().transaction_id,
        stun::TransactionId([tid; 12])
    );
}

/// A server whose `tls-cert` and `tls-key` are copies of `files` that a test replaces.
struct Renewable {
    server: common::Server,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    /// The configuration and the copies, deleted when dropped.
    _file: ConfigFile,
}

impl Renewable {
    /// Serves TLS on a free port with copies of `files`, and `extra` configuration lines.
    fn serve(files: &common::TlsFiles, extra: &str) -> Renewable {
        let file = ConfigFile::new("");
        let (cert, key) = (
            file.dir.path().join("cert.pem"),
            file.dir.path().join("key.pem"),
        );
        std::fs::copy(&files.cert, &cert).unwrap();
        std::fs::copy(&files.key, &key).unwrap();
        file.write(&format!(
            "users = [\"alice:alice-pw\"]\ntls-listen = [\"127.0.0.1:0\"]\n\
             tls-cert = \"{}\"\ntls-key = \"{}\"\n{extra}",
            cert.display(),
            key.display()
        ));
        let server = file.serve(&[]);
        Renewable {
            server,
            cert,
            key,
            _file: file,
        }
    }

    /// Replaces the files with `files`' (as certbot hooks do), then SIGHUP; returns once the
    /// reload is done.
    fn renew(&self, files: &common::TlsFiles) {
        std::fs::copy(&files.cert, &self.cert).unwrap();
        std::fs::copy(&files.key, &self.key).unwrap();
        signal(&self.server, "HUP");
        wait_for_log(&self.server, "configuration reloaded");
    }

    /// Writes a key file that does not load, then SIGHUP; the problem the failed reload logs.
    fn break_key(&self) -> String {
        std::fs::write(&self.key, "not a key\n").unwrap();
        signal(&self.server, "HUP");
        let problem = wait_for_log(&self.server, "configuration not reloaded");
        problem["fields"]["problem"].as_str().unwrap().to_owned()
    }
}

// A renewed certificate (the files replaced in place, then SIGHUP, as certbot hooks do) is
// presented to new handshakes; a connection established before goes on.
#[test]
fn sighup_presents_a_renewed_certificate_to_new_handshakes_only() {
    let old = common::TlsFiles::new();
    let new = common::TlsFiles::new();
    let renewable = Renewable::serve(&old, "");
    let server = &renewable.server;
    let turns = server.address("tls");
    let mut established = tls_to(&old, turns).unwrap();
    binding_over(&mut established, 1);

    renewable.renew(&new);
    assert!(
        tls_to(&old, turns).is_err(),
        "the old certificate is no longer presented"
    );
    binding_over(&mut tls_to(&new, turns).unwrap(), 2);
    binding_over(&mut established, 3);

    // A key file that does not load: the reload fails naming the key, and the certificate
    // in force stays.
    let problem = renewable.break_key();
    assert!(problem.contains("tls-key"), "{problem}");
    binding_over(&mut tls_to(&new, turns).unwrap(), 4);
}

// DTLS (RFC 7350) re-reads `tls-cert`/`tls-key` on SIGHUP as TLS does: new handshakes present
// the renewed certificate (`turnpike stun stuns:` trusting only the old one refuses it); files
// that do not load fail the reload and the certificate in force stays.
#[test]
fn sighup_presents_a_renewed_certificate_to_new_dtls_handshakes() {
    let old = common::TlsFiles::new();
    let new = common::TlsFiles::new();
    let renewable = Renewable::serve(&old, "dtls-listen = [\"127.0.0.1:0\"]");
    let server = &renewable.server;
    let uri = format!(
        "stuns:127.0.0.1:{}?transport=udp",
        server.address("dtls").port()
    );
    // A Binding inside a new DTLS session, trusting only `trusted`'s certificate.
    let stun = |trusted: &common::TlsFiles| {
        let ca = trusted.cert.to_str().unwrap();
        common::run_turnpike(&["stun", &uri, "--ca-file", ca, "--timeout", "5"])
    };
    assert!(stun(&old).status.success());

    renewable.renew(&new);
    let refused = stun(&old);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("not trusted"),
        "the old certificate is no longer presented: {said}"
    );
    let renewed = stun(&new);
    assert!(
        renewed.status.success(),
        "{}",
        String::from_utf8_lossy(&renewed.stderr)
    );

    let problem = renewable.break_key();
    assert!(problem.contains("tls-key"), "{problem}");
    assert!(stun(&new).status.success());
}

/// The TURN username and password `/api/ice-servers` hands a local caller.
fn minted_credential(server: &common::Server) -> (String, String) {
    let (status, body) =
        control_support::http(server.address("http"), "GET", "/api/ice-servers", None);
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    let turn = document["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"].is_string())
        .unwrap_or_else(|| panic!("no TURN credential in {document}"));
    (
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    )
}

// A REST secret rotation reaches the relay and the HTTP API that mints credentials: after the
// reload, minted credentials use the new secret, and those of the removed one are refused.
#[test]
fn sighup_rotates_the_rest_secret_of_the_relay_and_of_the_http_api() {
    let file = ConfigFile::new("rest-secrets = [\"old-secret-0123456789\"]");
    let server = file.serve(&[]);
    let udp = server.address("udp");
    let (old_user, old_password) = minted_credential(&server);
    let (_old, _) = Turn::relayed(udp, &old_user, &old_password);

    file.write("rest-secrets = [\"new-secret-0123456789\"]");
    signal(&server, "HUP");
    assert_eq!(
        wait_for_log(&server, "configuration reloaded")["fields"]["rest_secrets"],
        1
    );
    let (new_user, new_password) = minted_credential(&server);
    assert_ne!(new_password, old_password);
    let peer = peer();
    let (mut fresh, relayed) = Turn::relayed(udp, &new_user, &new_password);
    assert!(fresh.round_trip(&peer, relayed, b"rotated", PATIENCE));
    assert_eq!(Turn::refused(udp, &old_user, &old_password).0, 401);
}

// Without configured credentials the server makes one up for the run (and the HTTP API hands
// it out); a reload that still configures none keeps it.
#[test]
fn a_reload_keeps_the_credential_made_up_for_the_run() {
    let file = ConfigFile::new("");
    let server = file.serve(&[]);
    let udp = server.address("udp");
    let (user, password) = minted_credential(&server);
    signal(&server, "HUP");
    assert_eq!(
        wait_for_log(&server, "configuration reloaded")["fields"]["rest_secrets"],
        1
    );
    let (_before, _) = Turn::relayed(udp, &user, &password);
    let (user, password) = minted_credential(&server);
    let (_after, _) = Turn::relayed(udp, &user, &password);
}
