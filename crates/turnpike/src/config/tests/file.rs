//! Reading the file: values, unknown keys, syntax errors, lines.

use std::net::SocketAddr;
use std::time::Duration;

use super::{check, only_problem, problems, TempConfig};
use crate::config::{check_file, Config, LogFormat, Origin, Reason, TlsFiles};

#[test]
fn empty_file_gives_the_defaults() {
    assert_eq!(check("").unwrap(), Config::default());
    assert_eq!(check("# only a comment\n").unwrap(), Config::default());
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = Config::default();
    assert_eq!(
        config.listen,
        vec!["0.0.0.0:3478".parse::<SocketAddr>().unwrap()]
    );
    assert!(config.udp && config.tcp);
    assert_eq!(
        config.tls_listen,
        vec!["0.0.0.0:5349".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(config.tls, None);
    assert_eq!((config.alternate_ip, config.alternate_port), (None, None));
    assert_eq!(config.software, None);
    assert_eq!(config.tcp_idle_timeout, Duration::from_secs(300));
    assert_eq!(config.max_tcp_connections, 10_000);
    assert_eq!(config.log_level, "info");
    assert_eq!(config.log_format, LogFormat::Pretty);
}

#[test]
fn every_key_is_read_from_the_file() {
    let file = TempConfig::new("");
    std::fs::write(file.dir().join("cert.pem"), "x").unwrap();
    std::fs::write(file.dir().join("key.pem"), "x").unwrap();
    let text = r#"
listen = ["192.0.2.1:3478"]
udp = true
tcp = false
tls-listen = ["192.0.2.1:5349", "[2001:db8::1]:5349"]
tls-cert = "cert.pem"
tls-key = "key.pem"
alternate-ip = "192.0.2.2"
alternate-port = 3479
software = "turnpike test"
tcp-idle-timeout = 60
max-tcp-connections = 500
log-level = "info,turnpike=debug"
log-format = "json"
"#;
    std::fs::write(&file.path, text).unwrap();
    let config = check_file(&file.path).unwrap();
    assert_eq!(
        config.listen,
        vec!["192.0.2.1:3478".parse::<SocketAddr>().unwrap()]
    );
    assert!(config.udp && !config.tcp);
    assert_eq!(config.tls_listen.len(), 2);
    // Relative paths in the file are relative to the file's directory.
    let tls = TlsFiles {
        cert: file.dir().join("cert.pem"),
        key: file.dir().join("key.pem"),
    };
    assert_eq!(config.tls, Some(tls));
    assert_eq!(config.alternate_ip, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(config.alternate_port, Some(3479));
    assert_eq!(config.software.as_deref(), Some("turnpike test"));
    assert_eq!(config.tcp_idle_timeout, Duration::from_secs(60));
    assert_eq!(config.max_tcp_connections, 500);
    assert_eq!(config.log_level, "info,turnpike=debug");
    assert_eq!(config.log_format, LogFormat::Json);
}

#[test]
fn listen_port_zero_is_allowed() {
    let config = check("listen = [\"127.0.0.1:0\", \"[::1]:0\"]").unwrap();
    assert_eq!(config.listen.len(), 2);
}

#[test]
fn unknown_key_has_its_line_and_a_suggestion() {
    let (line, key, reason) = only_problem("udp = true\n\nlisen = [\"127.0.0.1:3478\"]\n");
    assert_eq!(line, Some(3));
    assert_eq!(key.as_deref(), Some("lisen"));
    assert_eq!(reason, "unknown key; did you mean `listen`?");

    let (_, _, reason) = only_problem("tls_cert = \"a.pem\"");
    assert_eq!(reason, "unknown key; did you mean `tls-cert`?");
    let (_, _, reason) = only_problem("domain = \"example.org\"");
    assert_eq!(reason, "unknown key");
}

#[test]
fn tables_are_explained() {
    let (line, key, reason) = only_problem("udp = true\n[tls]\ncert = \"a.pem\"\n");
    assert_eq!((line, key.as_deref()), (Some(2), Some("tls")));
    assert!(reason.contains("the file is flat"), "{reason}");
    assert!(reason.contains("`tls-"), "{reason}");
}

#[test]
fn bad_value_has_its_line_and_reason() {
    let (line, key, reason) = only_problem("udp = true\nlisten = [\"nope\"]\n");
    assert_eq!((line, key.as_deref()), (Some(2), Some("listen")));
    assert!(reason.contains("invalid socket address"), "{reason}");

    let (line, key, reason) = only_problem("tcp = \"yes\"");
    assert_eq!((line, key.as_deref()), (Some(1), Some("tcp")));
    assert!(reason.contains("expected a boolean"), "{reason}");

    let (_, _, reason) = only_problem("log-format = \"xml\"");
    assert!(
        reason.contains("pretty") && reason.contains("json"),
        "{reason}"
    );
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let text = "tcp-idle-timeout = 0\nlisten = [\"nope\"]\nbogus = 1\nmax-tcp-connections = -1\n";
    let found = problems(text);
    let lines: Vec<_> = found
        .iter()
        .map(|p| match &p.origin {
            Origin::File { line, .. } => line.unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lines, [1, 2, 3, 4], "{found:#?}");
    assert_eq!(
        found[0].reason,
        Reason::OutOfRange {
            value: 0,
            min: 1,
            max: 86_400
        }
    );
}

#[test]
fn problems_print_as_file_line_key_reason() {
    let file = TempConfig::new("\ntcp-idle-timeout = 0\n");
    let error = check_file(&file.path).unwrap_err();
    let expected = format!(
        "{}:2: key `tcp-idle-timeout`: 0 is out of range 1..=86400",
        file.path.display()
    );
    assert_eq!(error.to_string(), expected);
}

#[test]
fn syntax_error_has_a_line() {
    let (line, key, reason) =
        only_problem("udp = true\nlisten = [\"127.0.0.1:3478\"\ntcp = true\n");
    assert!(matches!(line, Some(2..=3)), "{line:?}");
    assert_eq!(key, None);
    assert!(!reason.is_empty());

    let (line, _, _) = only_problem("udp = true\nudp = false\n");
    assert_eq!(
        line,
        Some(2),
        "a duplicate key is reported where it repeats"
    );
}

#[test]
fn missing_file_is_one_problem_without_line() {
    let error = check_file("/nonexistent/turnpike.toml".as_ref()).unwrap_err();
    assert_eq!(error.problems.len(), 1);
    let printed = error.to_string();
    assert!(
        printed.starts_with("/nonexistent/turnpike.toml: cannot read the file"),
        "{printed}"
    );
}
