//! The user store on real SQLite files in temporary directories.

use rusqlite::Connection;
use turn::auth::{StaticUser, UserKeys};

use super::command::rfc3339;
use super::store::{Added, SCHEMA_VERSION};
use super::{load, UserStore};

/// A fresh directory and the path of a database in it (not created yet).
fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.db");
    (dir, path)
}

#[test]
fn add_list_remove() {
    let (_dir, path) = temp_db();
    let store = UserStore::create_or_open(&path).unwrap();
    let alice = UserKeys::from_password("alice", "example.org", "pw1");
    let bob = UserKeys::from_password("bob", "example.org", "pw2");
    assert_eq!(
        store.add("bob", "example.org", &bob, false, 20).unwrap(),
        Added::Created
    );
    assert_eq!(
        store
            .add("alice", "example.org", &alice, false, 10)
            .unwrap(),
        Added::Created
    );
    let users = store.list().unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"], "ordered by name");
    assert_eq!(users[0].keys, alice);
    assert_eq!(
        (users[0].realm.as_str(), users[0].created_at),
        ("example.org", Some(10))
    );

    assert!(store.remove("alice").unwrap());
    assert!(!store.remove("alice").unwrap(), "already gone");
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn an_existing_name_is_refused_unless_updating() {
    let (_dir, path) = temp_db();
    let store = UserStore::create_or_open(&path).unwrap();
    let old = UserKeys::from_password("alice", "r", "old");
    let new = UserKeys::from_password("alice", "r2", "new");
    store.add("alice", "r", &old, false, 1).unwrap();
    assert_eq!(
        store.add("alice", "r2", &new, false, 2).unwrap(),
        Added::Exists
    );
    assert_eq!(store.list().unwrap()[0].keys, old, "nothing written");
    assert_eq!(
        store.add("alice", "r2", &new, true, 3).unwrap(),
        Added::Updated
    );
    let user = &store.list().unwrap()[0];
    assert_eq!((user.keys, user.realm.as_str()), (new, "r2"));
    assert_eq!(user.created_at, Some(1), "the creation time is kept");
}

#[test]
fn schema_version_is_recorded_and_a_newer_one_refused() {
    let (_dir, path) = temp_db();
    drop(UserStore::create_or_open(&path).unwrap());
    let connection = Connection::open(&path).unwrap();
    let version: usize = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // Reopening an up-to-date database changes nothing.
    drop(UserStore::create_or_open(&path).unwrap());
    connection
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let error = UserStore::create_or_open(&path).unwrap_err();
    assert!(format!("{error:#}").contains("newer"), "{error:#}");
}

#[test]
fn keys_of_the_wrong_length_are_rejected_by_the_schema() {
    let (_dir, path) = temp_db();
    drop(UserStore::create_or_open(&path).unwrap());
    let connection = Connection::open(&path).unwrap();
    let inserted = connection.execute("INSERT INTO users VALUES ('x', 'r', x'00', x'00', 0)", []);
    assert!(inserted.is_err());
}

#[test]
fn load_returns_the_users_of_the_realm() {
    let (_dir, path) = temp_db();
    let store = UserStore::create_or_open(&path).unwrap();
    let keys = UserKeys::from_password("alice", "example.org", "pw");
    store.add("alice", "example.org", &keys, false, 0).unwrap();
    let users = load(&path, "example.org").unwrap();
    assert_eq!(
        users,
        [StaticUser::from_password("alice", "example.org", "pw")]
    );
}

#[test]
fn load_refuses_users_of_another_realm_and_names_them() {
    let (_dir, path) = temp_db();
    let store = UserStore::create_or_open(&path).unwrap();
    let keys = UserKeys::from_password("carol", "old.example", "pw");
    store.add("carol", "old.example", &keys, false, 0).unwrap();
    let keys = UserKeys::from_password("alice", "example.org", "pw");
    store.add("alice", "example.org", &keys, false, 0).unwrap();
    let error = format!("{:#}", load(&path, "example.org").unwrap_err());
    assert!(error.contains("`carol` (realm `old.example`)"), "{error}");
    assert!(!error.contains("alice"), "{error}");
}

#[test]
fn load_needs_an_existing_current_database() {
    let (dir, path) = temp_db();
    let error = format!("{:#}", load(&path, "r").unwrap_err());
    assert!(error.contains("users.db"), "{error}");
    assert!(!path.exists(), "serve never creates the database");

    let empty = dir.path().join("empty.db");
    Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let error = format!("{:#}", load(&empty, "r").unwrap_err());
    assert!(error.contains("not a turnpike user database"), "{error}");

    let text = dir.path().join("text.db");
    std::fs::write(&text, "name:password\n".repeat(100)).unwrap();
    assert!(load(&text, "r").is_err());
}

#[test]
fn open_existing_does_not_create() {
    let (_dir, path) = temp_db();
    assert!(UserStore::open_existing(&path).is_err());
    assert!(!path.exists());
}

#[test]
fn timestamps_print_as_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
}
