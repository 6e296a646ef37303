//! `turnpike config import-coturn`: coturn's `turnserver.conf` into a Turnpike file, run as a user
//! would, on representative files (`tests/fixtures/coturn/`) and on Debian's own
//! `/etc/turnserver.conf`. Every translation is then checked by the real validation
//! (`turnpike config check`), and the minimal one serves an authenticated Allocate.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stun::Class;

mod common;

use common::{allocate, Server, TlsFiles};

/// `turnpike ARGS…` with no `TURNPIKE_*` or `RUST_LOG` from the test environment.
fn turnpike(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_turnpike"));
    command.args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TURNPIKE_") {
            command.env_remove(&name);
        }
    }
    command.output().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/coturn")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `turnpike config import-coturn CONF -o OUT`.
fn import_to(conf: &Path, out: &Path) -> Output {
    turnpike(&[
        "config",
        "import-coturn",
        conf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
}

/// Imports `conf` into `dir/turnpike.toml` (exit 0 expected); returns the file's path, its
/// parsed contents and the command's stderr.
fn import(conf: &Path, dir: &Path) -> (PathBuf, toml::Table, String) {
    let out = dir.join("turnpike.toml");
    let output = import_to(conf, &out);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(output.stdout.is_empty());
    let written = std::fs::read_to_string(&out).unwrap();
    let table: toml::Table = written.parse().unwrap_or_else(|e| panic!("{e}\n{written}"));
    (out, table, stderr)
}

/// `turnpike config check FILE` passes: the real validation accepts the translation.
fn assert_checks(file: &Path) {
    let output = turnpike(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        std::fs::read_to_string(file).unwrap()
    );
}

fn strings(table: &toml::Table, key: &str) -> Vec<String> {
    table[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {table:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_seed_style_minimal_file_translates_checks_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (out, table, stderr) = import(&fixture("seed-minimal.conf"), dir.path());
    assert_eq!(strings(&table, "listen"), ["0.0.0.0:3478"]);
    assert_eq!(strings(&table, "external-ip"), ["203.0.113.10"]);
    assert_eq!(table["min-port"].as_integer(), Some(49160));
    assert_eq!(table["max-port"].as_integer(), Some(49200));
    assert_eq!(table["realm"].as_str(), Some("turn.example.org"));
    assert_eq!(strings(&table, "users"), ["alice:wonderland-rabbit-hole"]);
    assert_eq!(table.len(), 6, "{table:?}");
    // The password is in the file (its purpose) and nowhere on stderr.
    assert!(!stderr.contains("wonderland"), "{stderr}");
    assert!(
        stderr.contains("6 Turnpike keys written, 2 coturn options left out"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    for comment in [
        "# - `fingerprint` (line 6): Turnpike adds FINGERPRINT",
        "# - `lt-cred-mech` (line 7): Turnpike always uses long-term credentials",
        "# coturn: `user` (line 8)",
        "add \"[::]:3478\" for IPv6",
    ] {
        assert!(written.contains(comment), "{comment} in\n{written}");
    }
    assert_checks(&out);

    // The translation runs: its user gets an allocation (RFC 8656 §7.2 with RFC 8489 §9.2
    // long-term credentials), a wrong password does not. Ports are the test's own.
    let (low, high) = common::free_relay_range();
    let server = Server::spawn(
        &[
            "--config",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--min-port",
            &low.to_string(),
            "--max-port",
            &high.to_string(),
        ],
        |_| {},
    );
    let udp = server.address("udp");
    assert_eq!(
        allocate(udp, "alice", "wonderland-rabbit-hole"),
        Class::Success
    );
    assert_eq!(allocate(udp, "alice", "wrong"), Class::Error);
}

#[test]
fn rest_secrets_and_tls_translate_with_paths_from_the_file() {
    // The certificate sits beside the coturn file under the names it uses.
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles::new();
    std::fs::copy(&tls.cert, dir.path().join("turn_server_cert.pem")).unwrap();
    std::fs::copy(&tls.key, dir.path().join("turn_server_pkey.pem")).unwrap();
    let conf = dir.path().join("turnserver.conf");
    std::fs::copy(fixture("rest-tls.conf"), &conf).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let (out, table, stderr) = import(&conf, out_dir.path());
    assert_eq!(strings(&table, "listen"), ["127.0.0.1:3478"]);
    assert_eq!(strings(&table, "tls-listen"), ["127.0.0.1:5349"]);
    let cert = dir.path().join("turn_server_cert.pem");
    assert_eq!(table["tls-cert"].as_str(), Some(cert.to_str().unwrap()));
    let key = dir.path().join("turn_server_pkey.pem");
    assert_eq!(table["tls-key"].as_str(), Some(key.to_str().unwrap()));
    assert_eq!(
        strings(&table, "rest-secrets"),
        [
            "first-shared-secret-0123456789",
            "next-shared-secret-9876543210"
        ]
    );
    assert_eq!(table["nonce-lifetime"].as_integer(), Some(600));
    // `no-dtls`: coturn's DTLS on the TLS port is off, and so is Turnpike's.
    assert_eq!(table["dtls"].as_bool(), Some(false));
    assert!(!table.contains_key("users"));
    assert!(!stderr.contains("shared-secret"), "{stderr}");
    let written = std::fs::read_to_string(&out).unwrap();
    for dropped in ["no-tlsv1", "no-tlsv1_1", "cipher-list", "no-cli"] {
        assert!(
            written.contains(&format!("# - `{dropped}` (line ")),
            "{dropped} in\n{written}"
        );
    }
    let from =
        "# coturn: `use-auth-secret` (line 7), `static-auth-secret` (lines 8, 9)\nrest-secrets";
    assert!(written.contains(from), "{written}");
    assert_checks(&out);
}

#[test]
fn a_production_file_keeps_its_peer_rules_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (out, table, stderr) = import(&fixture("production.conf"), dir.path());
    assert_eq!(strings(&table, "listen"), ["10.0.0.10:3478"]);
    assert_eq!(strings(&table, "relay-ip"), ["10.0.0.10"]);
    assert_eq!(strings(&table, "external-ip"), ["198.51.100.20/10.0.0.10"]);
    assert_eq!(table["user-quota"].as_integer(), Some(12));
    assert_eq!(table["total-quota"].as_integer(), Some(1200));
    // coturn caps each direction, Turnpike both together.
    assert_eq!(table["max-bps"].as_integer(), Some(128_000));
    assert_eq!(table["nonce-lifetime"].as_integer(), Some(600));
    assert_eq!(table["log-level"].as_str(), Some("debug"));
    assert_eq!(table["metrics-listen"].as_str(), Some("127.0.0.1:9641"));
    assert!(!table.contains_key("tls-listen"), "no cert: no TLS");
    assert_eq!(table["tcp-relay"].as_bool(), Some(false), "no-tcp-relay");
    // Ranges become exact CIDR covers; the allowed 10.0.0.50 is cut out of 10/8, because in
    // coturn an allowed address wins and in Turnpike the longest prefix does.
    let mut ten: Vec<String> = vec![
        "10.0.0.0/27",
        "10.0.0.32/28",
        "10.0.0.48/31",
        "10.0.0.51/32",
        "10.0.0.52/30",
        "10.0.0.56/29",
        "10.0.0.64/26",
        "10.0.0.128/25",
        "10.0.1.0/24",
        "10.0.2.0/23",
        "10.0.4.0/22",
        "10.0.8.0/21",
        "10.0.16.0/20",
        "10.0.32.0/19",
        "10.0.64.0/18",
        "10.0.128.0/17",
        "10.1.0.0/16",
        "10.2.0.0/15",
        "10.4.0.0/14",
        "10.8.0.0/13",
        "10.16.0.0/12",
        "10.32.0.0/11",
        "10.64.0.0/10",
        "10.128.0.0/9",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut expected = vec!["0.0.0.0/8".to_owned()];
    expected.append(&mut ten);
    expected.extend(
        [
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "192.0.2.1/32",
            "192.0.2.2/31",
            "192.0.2.4/31",
            "192.0.2.6/32",
            "fc00::/7",
        ]
        .map(String::from),
    );
    assert_eq!(strings(&table, "denied-peers"), expected);
    assert_eq!(strings(&table, "allowed-peers"), ["10.0.0.50/32"]);
    assert!(!stderr.contains("0f3b2c1d"), "{stderr}");
    let written = std::fs::read_to_string(&out).unwrap();
    for comment in [
        "# - `log-file` (line 33): Turnpike logs to stderr",
        "# - `pidfile` (line 36): run Turnpike under systemd",
        "# - `bps-capacity` (line 15):",
        "# Different: coturn capped each direction at 64000 bytes/s",
        "# Different: the allowed-peer-ip addresses are cut out of the denied ranges",
        "# Different: coturn served metrics on every address",
    ] {
        assert!(written.contains(comment), "{comment} in\n{written}");
    }
    assert_checks(&out);
}

#[test]
fn a_broken_file_names_every_bad_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("turnpike.toml");
    let conf = fixture("broken.conf");
    let output = import_to(&conf, &out);
    assert_eq!(output.status.code(), Some(1));
    assert!(!out.exists());
    let stderr = text(&output.stderr);
    let file = conf.display();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{file}:3: key `listen-port`: not a coturn option; did you mean `listening-port`?"),
            format!("{file}:4: key `fingerprint`: `maybe` is not a boolean: use on/off, yes/no, 1/0 or true/false, or the bare flag"),
            format!("{file}:5: key `realm`: needs a value"),
            format!("{file}:6: key `user`: is not NAME:PASSWORD or NAME:0xKEY (the value is not shown: it is a secret)"),
            format!("{file}:7: key `external-ip`: `turn.example.org` is not PUBLIC or PUBLIC/PRIVATE with two IP addresses, such as 203.0.113.7/10.0.0.7"),
            format!("{file}:8: key `denied-peer-ip`: `10.0.0.9-10.0.0.1` ends before it starts"),
            format!("{file}:9: key `min-port`: `lots` is not a whole number up to 65535"),
        ],
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"));
}

#[test]
fn output_is_private_even_over_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("turnpike.toml");
    std::fs::write(&out, "old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    import(&fixture("seed-minimal.conf"), dir.path());
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("# Translated"));
}

#[test]
fn stdout_gets_the_file_and_strict_refuses_anything_dropped() {
    let conf = fixture("seed-minimal.conf");
    let output = turnpike(&["config", "import-coturn", conf.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("users = [\"alice:wonderland-rabbit-hole\"]"));

    let output = turnpike(&[
        "config",
        "import-coturn",
        "--strict",
        conf.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:6: key `fingerprint`: dropped: ",
            conf.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("wonderland"), "{stderr}");

    let output = turnpike(&["config", "import-coturn"]);
    assert_eq!(output.status.code(), Some(2), "usage");
}

#[test]
fn debians_own_turnserver_conf_translates() {
    // Installed by Debian's coturn package (scripts/install-test-deps installs it).
    let debian = Path::new("/etc/turnserver.conf");
    if !debian.exists() {
        eprintln!("skipped: {} is absent (install coturn)", debian.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, _, _) = import(debian, dir.path());
    let written = std::fs::read_to_string(&out).unwrap();
    // Its few active lines (syslog, no-rfc5780, …) are each explained.
    for line in std::fs::read_to_string(debian).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split([' ', '=', '\t']).next().unwrap();
        assert!(
            written.contains(&format!("`{key}` (line ")),
            "{key} in\n{written}"
        );
    }
    assert_checks(&out);
}

#[test]
fn config_check_points_coturn_users_to_the_turnpike_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("turnpike.toml");
    std::fs::write(
        &file,
        "static-auth-secret = \"a-secret-not-to-print\"\nlistening-port = 3478\nuser = [\"a:b\"]\n",
    )
    .unwrap();
    let output = turnpike(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let f = file.display();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with(&format!("{f}:1: key `static-auth-secret`: unknown key: `static-auth-secret` is coturn's name: use `rest-secrets`")), "{stderr}");
    assert!(lines[1].starts_with(&format!("{f}:2: key `listening-port`: unknown key: `listening-port` is coturn's name: use `listen`")), "{stderr}");
    assert!(
        lines[2].starts_with(&format!(
            "{f}:3: key `user`: unknown key: `user` is coturn's name: use `users`"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("a-secret-not-to-print"));

    // A turnserver.conf given to `config check` is named as one.
    let conf = fixture("seed-minimal.conf");
    let output = turnpike(&["config", "check", conf.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "{c}: this looks like coturn's turnserver.conf (`listening-port` on line 2), not a \
             Turnpike TOML file: translate it with `turnpike config import-coturn {c} > \
             turnpike.toml`\n",
            c = conf.display()
        )
    );
}
