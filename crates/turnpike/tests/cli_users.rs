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
    // A command that fails on its arguments exits before reading its input: the write then
    // meets a closed pipe, which is not the test's business (it checks the exit code).
    match pipe.write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.expect("stdin is writable"),
    }
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

/// `turnpike user add` under the shell's `umask`, with the password on stdin.
fn add_under_umask(dir: &Path, umask: &str, name: &str) -> Output {
    let mut child = Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_turnpike"))
        .args(["user", "add", "--db", "users.db", name])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    pipe.write_all(b"pw\n").expect("stdin is writable");
    drop(pipe);
    child.wait_with_output().expect("turnpike finishes")
}

/// The database holds keys that log in as its users: it is created readable by its owner only,
/// whatever the umask (docs/turn.md). It used to be 0644.
#[test]
fn a_new_database_is_created_0600() {
    use std::os::unix::fs::PermissionsExt;
    for umask in ["022", "000"] {
        let dir = tempfile::tempdir().unwrap();
        let output = add_under_umask(dir.path(), umask, "alice");
        assert_code(&output, 0);
        let mode = |file: &str| {
            std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("users.db"), 0o600, "umask {umask}");
        // A second write goes through SQLite's journal; the file stays 0600.
        assert_code(&add_under_umask(dir.path(), umask, "bob"), 0);
        assert_eq!(mode("users.db"), 0o600, "umask {umask}");
        assert_eq!(rows(&dir.path().join("users.db")).len(), 2);
    }
}

/// Drives `turnpike user add` on a pseudo-terminal (Python's `pty`, as a person at a
/// terminal): waits for each prompt and for the terminal's echo to be off before typing.
/// Returns (exit code, everything the terminal showed).
fn add_on_a_terminal(dir: &Path, first: &str, second: &str) -> (i32, String) {
    const DRIVER: &str = r#"
import os, pty, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
shown = b""
def read_until(token):
    global shown
    deadline = time.time() + 30
    while token not in shown:
        if time.time() > deadline:
            sys.exit("timed out waiting for %r; shown: %r" % (token, shown))
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            chunk = b""
        if not chunk:
            sys.exit("the terminal closed; shown: %r" % shown)
        shown += chunk
def type_hidden(text):
    # The prompt is printed just before echo goes off: wait for that, then type.
    deadline = time.time() + 30
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.time() > deadline:
            sys.exit("echo never went off; shown: %r" % shown)
        time.sleep(0.01)
    os.write(fd, text.encode() + b"\n")
read_until(b"password for")
type_hidden(os.environ["PW1"])
read_until(b"again")
type_hidden(os.environ["PW2"])
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    shown += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(shown.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let output = Command::new("python3")
        .args(["-c", DRIVER])
        .arg(env!("CARGO_BIN_EXE_turnpike"))
        .args(["user", "add", "--db", "users.db", "alice"])
        .env("PW1", first)
        .env("PW2", second)
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    let shown = format!("{}{}", stdout(&output), stderr(&output));
    (output.status.code().unwrap_or(-1), shown)
}

#[test]
fn on_a_terminal_the_password_is_hidden_and_asked_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (code, shown) = add_on_a_terminal(dir.path(), "Typed-S3cret", "Typed-S3cret");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("password for `alice`"), "{shown}");
    assert!(shown.contains("again"), "{shown}");
    assert!(
        !shown.contains("Typed-S3cret"),
        "the password was echoed: {shown}"
    );
    let alice = UserKeys::from_password("alice", "turnpike", "Typed-S3cret");
    let found = rows(&dir.path().join("users.db"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].2, alice.md5.to_vec());
}

#[test]
fn on_a_terminal_two_different_passwords_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (code, shown) = add_on_a_terminal(dir.path(), "Typed-S3cret", "Typed-S3creT");
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("differ"), "{shown}");
    assert!(!shown.contains("Typed-S3cre"), "{shown}");
    assert!(!dir.path().join("users.db").exists());
}
