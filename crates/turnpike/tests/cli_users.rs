//! `turnpike user add|remove|list`, run as an operator would: exit codes, output, and what ends
//! up in the SQLite file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use turn::auth::UserKeys;

/// `turnpike ARGS…` with no `TURNPIKE_*` variable of the test environment leaking in.
fn turnpike(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_turnpike"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TURNPIKE_") {
            command.env_remove(&name);
        }
    }
    command
}

/// Runs `turnpike ARGS…` in `dir` with `stdin` as standard input.
fn run_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = turnpike(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the turnpike binary runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    pipe.write_all(stdin.as_bytes()).expect("stdin is writable");
    drop(pipe);
    child.wait_with_output().expect("turnpike finishes")
}

/// Runs `turnpike ARGS…` in `dir` with empty standard input.
fn run(dir: &Path, args: &[&str]) -> Output {
    run_with_stdin(dir, args, "")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing stderr when it differs.
fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        stderr(output)
    );
}

/// (name, realm, md5 key, sha256 key) of every row, read directly from the file.
fn rows(db: &Path) -> Vec<(String, String, Vec<u8>, Vec<u8>)> {
    let connection = rusqlite::Connection::open(db).expect("the database opens");
    let mut statement = connection
        .prepare("SELECT name, realm, md5_key, sha256_key FROM users ORDER BY name")
        .expect("the users table exists");
    let rows = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("the query runs");
    rows.map(|row| row.expect("rows are well-typed")).collect()
}

#[test]
fn add_list_remove_in_the_default_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["user", "add", "alice", "--password", "s3cret-Pa55"],
    );
    assert_code(&output, 0);
    assert!(stdout(&output).contains("added user `alice` (realm `turnpike`)"));
    let db = dir.path().join("turnpike.db");

    let output = run_with_stdin(dir.path(), &["user", "add", "bob"], "from-stdin-pw\n");
    assert_code(&output, 0);

    let output = run(dir.path(), &["user", "list"]);
    assert_code(&output, 0);
    let lines: Vec<Vec<String>> = stdout(&output)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0][0].as_str(), lines[0][1].as_str()),
        ("alice", "turnpike")
    );
    assert!(
        lines[1][2].ends_with('Z') && lines[1][2].len() == 20,
        "{lines:?}"
    );

    // RFC 8489 §9.2.2: the stored keys are MD5/SHA-256 of name:realm:password.
    let stored = rows(&db);
    let bob = UserKeys::from_password("bob", "turnpike", "from-stdin-pw");
    assert_eq!(
        (stored[1].2.as_slice(), stored[1].3.as_slice()),
        (&bob.md5[..], &bob.sha256[..])
    );
    let alice = UserKeys::from_password("alice", "turnpike", "s3cret-Pa55");
    assert_eq!(stored[0].2, alice.md5);

    let output = run(dir.path(), &["user", "remove", "alice"]);
    assert_code(&output, 0);
    assert_eq!(rows(&db).len(), 1);
    let output = run(dir.path(), &["user", "remove", "alice"]);
    assert_code(&output, 1);
    assert!(
        stderr(&output).contains("no user `alice`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn no_password_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let password = "Very-Distinctive-Password-4711";
    let output = run_with_stdin(
        dir.path(),
        &["user", "add", "carol"],
        &format!("{password}\r\n"),
    );
    assert_code(&output, 0);
    let keys = UserKeys::from_password("carol", "turnpike", password);
    assert_eq!(
        rows(&dir.path().join("turnpike.db"))[0].3,
        keys.sha256,
        "CRLF is stripped"
    );
    let bytes = std::fs::read(dir.path().join("turnpike.db")).unwrap();
    let found = bytes
        .windows(password.len())
        .any(|w| w == password.as_bytes());
    assert!(!found, "the password is in the database file");
}

#[test]
fn an_existing_name_is_refused_unless_updating() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.db");
    let db_arg = db.to_str().unwrap();
    assert_code(
        &run(
            dir.path(),
            &["user", "add", "dave", "--password", "one", "--db", db_arg],
        ),
        0,
    );
    let output = run(
        dir.path(),
        &["user", "--db", db_arg, "add", "dave", "--password", "two"],
    );
    assert_code(&output, 1);
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        rows(&db)[0].2,
        UserKeys::from_password("dave", "turnpike", "one").md5
    );

    let args = [
        "user",
        "add",
        "dave",
        "--password",
        "two",
        "--update",
        "--db",
        db_arg,
    ];
    assert_code(&run(dir.path(), &args), 0);
    assert_eq!(
        rows(&db)[0].2,
        UserKeys::from_password("dave", "turnpike", "two").md5
    );
}

#[test]
fn database_and_realm_come_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("etc");
    std::fs::create_dir(&conf_dir).unwrap();
    let config = conf_dir.join("turnpike.toml");
    // `user-db` is relative to the file; keys the user command does not need are not checked.
    let text = "realm = \"example.org\"\nuser-db = \"users.db\"\ntcp-idle-timeout = 0\n";
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let output = run(
        dir.path(),
        &["user", "add", "erin", "--password", "pw", "-c", config],
    );
    assert_code(&output, 0);
    let stored = rows(&conf_dir.join("users.db"));
    assert_eq!(
        (stored[0].0.as_str(), stored[0].1.as_str()),
        ("erin", "example.org")
    );

    // --realm wins over the file.
    let args = [
        "user",
        "add",
        "frank",
        "--password",
        "pw",
        "-c",
        config,
        "--realm",
        "other",
    ];
    assert_code(&run(dir.path(), &args), 0);
    let output = run(dir.path(), &["user", "list", "--json", "-c", config]);
    assert_code(&output, 0);
    let users: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(users[0]["name"], "erin");
    assert_eq!(users[1]["realm"], "other");
    assert!(users[1]["created_at"].is_i64());

    // `config check` (and `serve`) report a missing database with the key and its line.
    let missing = conf_dir.join("missing.toml");
    std::fs::write(&missing, "user-db = \"nope.db\"\n").unwrap();
    let output = run(dir.path(), &["config", "check", missing.to_str().unwrap()]);
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains(":1: key `user-db`: cannot open"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for (args, stdin, message) in [
        (
            &["user", "add", "a:b", "--password", "pw"][..],
            "",
            "contains `:`",
        ),
        (&["user", "add", "gina"][..], "\n", "the password is empty"),
        (
            &["user", "add", "gina", "--realm", ""][..],
            "pw\n",
            "realm: must not be empty",
        ),
        (&["user", "add"][..], "", "NAME"),
    ] {
        let output = run_with_stdin(dir.path(), args, stdin);
        assert_code(&output, 2);
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(
        !dir.path().join("turnpike.db").exists(),
        "nothing was created"
    );
    let output = run(dir.path(), &["user", "list"]);
    assert_code(&output, 1);
    assert!(
        stderr(&output).contains("there is no user database"),
        "{}",
        stderr(&output)
    );
}
