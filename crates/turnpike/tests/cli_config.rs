//! The `turnpike` binary's configuration commands, run as a user would: exit codes and messages.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use common::turnpike_command as turnpike;

/// Runs `turnpike ARGS…` to completion.
fn run(args: &[&str]) -> Output {
    turnpike(args).output().expect("the turnpike binary runs")
}

/// Writes `text` as `name` in `dir` and returns its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the temporary directory is writable");
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "good.toml",
        "listen = [\"127.0.0.1:3478\"]\ntcp-idle-timeout = 60\n",
    );
    let output = run(&["config", "check", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{file}: ok\n"));
}

#[test]
fn check_reports_every_problem_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "udp = true\nlisen = [\"127.0.0.1:3478\"]\ntcp-idle-timeout = 0\nlisten = [\"nope\"]\n";
    let file = write(dir.path(), "bad.toml", text);
    let output = run(&["config", "check", &file]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    let lines: Vec<String> = stderr(&output).lines().map(str::to_owned).collect();
    assert_eq!(
        lines[..2],
        [
            format!("{file}:2: key `lisen`: unknown key; did you mean `listen`?"),
            format!("{file}:3: key `tcp-idle-timeout`: 0 is out of range 1..=86400"),
        ]
    );
    assert!(
        lines[2].starts_with(&format!("{file}:4: key `listen`: ")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
}

#[test]
fn check_reports_syntax_errors_with_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "syntax.toml", "udp = true\ntcp = \n");
    let output = run(&["config", "check", &file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with(&format!("{file}:2: ")),
        "{}",
        stderr(&output)
    );
}

#[test]
fn example_round_trips_through_check() {
    let example = run(&["config", "example"]);
    assert_eq!(example.status.code(), Some(0));
    assert!(stdout(&example).contains("# tcp-idle-timeout = 300"));

    // `turnpike config example | turnpike config check /dev/stdin`
    let mut check = turnpike(&["config", "check", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(&example.stdout)
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "/dev/stdin: ok\n");
}

#[test]
fn serve_with_a_bad_file_exits_2_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.toml",
        "listen = [\"127.0.0.1:3478\"]\nalternate-ip = \"127.0.0.1\"\n",
    );
    let output = run(&["serve", "--config", &file]);
    assert_eq!(output.status.code(), Some(2));
    let expected =
        format!("{file}:2: key `alternate-ip`: must differ from the listen IP `127.0.0.1`");
    assert_eq!(stderr(&output).trim_end(), expected);
}

#[test]
fn serve_reports_bad_flags_and_env_vars_by_name() {
    let output = turnpike(&["serve", "--tcp-idle-timeout", "0"])
        .env("TURNPIKE_MAX_TCP_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let printed = stderr(&output);
    assert!(
        printed.contains("--tcp-idle-timeout: 0 is out of range 1..=86400"),
        "{printed}"
    );
    assert!(
        printed.contains("TURNPIKE_MAX_TCP_CONNECTIONS: 0 is out of range 1..=1000000"),
        "{printed}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(run(&["serve", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(run(&["config", "check"]).status.code(), Some(2));
    let help = run(&["serve", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("--tls-cert <FILE>"));
    assert!(stdout(&help).contains("TURNPIKE_TLS_CERT"));
}

/// Text that must never be printed: every bad secret below contains it.
const SENTINEL: &str = "S3CR3T-S3NT1N3L";
const NUMERIC_SENTINEL: &str = "9876543219";

/// Asserts that neither stream of `output` shows a secret, and that stderr names `named`.
fn assert_secret_hidden(output: &Output, named: &str, case: &str) {
    assert_eq!(output.status.code(), Some(2), "{case}: {}", stderr(output));
    let (out, err) = (stdout(output), stderr(output));
    for text in [&out, &err] {
        assert!(
            !text.contains(&SENTINEL[..6]) && !text.contains(NUMERIC_SENTINEL),
            "{case} printed the secret: {text}"
        );
    }
    assert!(err.contains(named), "{case}: {err}");
}

/// The secret keys with a wrong type or a rejected value, in the file, through `config check`
/// and `serve --config`: the key and its line are named, the value never.
#[test]
fn secrets_in_a_bad_file_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (s, n) = (SENTINEL, NUMERIC_SENTINEL);
    let cases = [
        ("users", format!("\"alice:{s}\"")),
        ("users", n.to_owned()),
        ("users", format!("{{ alice = \"{s}\" }}")),
        ("users", format!("[{n}]")),
        ("users", format!("[\"alice:{s}\", {n}]")),
        ("rest-secrets", format!("\"{s}\"")),
        ("rest-secrets", format!("[{n}, {n}]")),
        ("rest-secrets", format!("{{ a = \"{s}\" }}")),
        ("rest-secrets", format!("[\"{}\"]", &s[..6])),
        ("nonce-secret", n.to_owned()),
        ("nonce-secret", format!("[\"{s}\"]")),
        ("nonce-secret", format!("\"{s}\"")),
        ("signaling-secret", n.to_owned()),
        ("signaling-secret", format!("{{ a = \"{s}\" }}")),
        ("signaling-secret", format!("\"{}\"", &s[..6])),
        ("users", format!("[\"alice:{s}]")),
    ];
    for (key, value) in cases {
        let text = format!("udp = true\n{key} = {value}\n");
        let file = write(dir.path(), "secret.toml", &text);
        let case = format!("{text:?}");
        let named = format!("{file}:2: key `{key}`: ");
        let named = if value.ends_with("]]") || value.ends_with(":S3CR3T-S3NT1N3L]") {
            // A syntax error: the line, without a key.
            format!("{file}:2: ")
        } else {
            named
        };
        assert_secret_hidden(&run(&["config", "check", &file]), &named, &case);
        assert_secret_hidden(&run(&["serve", "--config", &file]), &named, &case);
    }
}

/// The same keys as flags and `TURNPIKE_*` env vars.
#[test]
fn secrets_in_bad_flags_and_env_vars_are_never_printed() {
    let short = &SENTINEL[..6];
    let flags = [
        ("--users", SENTINEL.to_owned()),
        ("--rest-secrets", short.to_owned()),
        ("--nonce-secret", SENTINEL.to_owned()),
        ("--signaling-secret", short.to_owned()),
    ];
    for (flag, value) in &flags {
        let case = format!("{flag} {value}");
        let output = run(&["serve", flag, value]);
        assert_secret_hidden(&output, &format!("{flag}: "), &case);
        let var = format!("TURNPIKE_{}", flag[2..].replace('-', "_").to_uppercase());
        let output = turnpike(&["serve"]).env(&var, value).output().unwrap();
        assert_secret_hidden(&output, &format!("{var}: "), &format!("{var}={value}"));
    }
}

/// A good file with every secret: `config check` says `ok` and nothing else.
#[test]
fn check_of_a_good_file_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "users = [\"alice:{SENTINEL}\"]\nrest-secrets = [\"{SENTINEL}\"]\n\
         nonce-secret = \"{}\"\nsignaling-secret = \"{SENTINEL}{SENTINEL}\"\n",
        "ab".repeat(32)
    );
    let file = write(dir.path(), "good.toml", &text);
    let output = run(&["config", "check", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{file}: ok\n"));
    assert!(!stderr(&output).contains(&SENTINEL[..6]));
}
