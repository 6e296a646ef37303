//! The SQLite file: schema, migrations, and the few queries `turnpike user` and `serve` need.
//!
//! One table, `users(name, realm, md5_key, sha256_key, created_at)`, holding the long-term keys
//! of RFC 8489 §9.2.2 (MD5 and SHA-256 of `name:realm:password`) and never the password. The
//! schema version is SQLite's `PRAGMA user_version`; [`MIGRATIONS`] lists the steps from each
//! version to the next.

use std::path::Path;

use anyhow::{bail, Context};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use turn::auth::UserKeys;

/// The schema steps, in order: applying `MIGRATIONS[v]` takes a database from version `v` to
/// `v + 1`. Append only; never edit a released step.
const MIGRATIONS: &[&str] = &["CREATE TABLE users (
        name TEXT PRIMARY KEY NOT NULL,
        realm TEXT NOT NULL,
        md5_key BLOB NOT NULL CHECK (length(md5_key) = 16),
        sha256_key BLOB NOT NULL CHECK (length(sha256_key) = 32),
        created_at INTEGER
    ) STRICT"];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// One row of the user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The USERNAME clients send.
    pub name: String,
    /// The realm the keys were derived for.
    pub realm: String,
    /// The long-term keys.
    pub keys: UserKeys,
    /// When the user was first added, Unix seconds (`None` if unknown).
    pub created_at: Option<i64>,
}

/// What [`UserStore::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new user.
    Created,
    /// An existing user's realm and keys were replaced (with `update`).
    Updated,
    /// The name exists and `update` was false: nothing was written.
    Exists,
}

/// An open user database at the current schema version.
#[derive(Debug)]
pub struct UserStore {
    connection: Connection,
}

impl UserStore {
    /// Opens the database at `path`, creating the file if it is missing, and brings its schema
    /// up to date. A new file is created with mode 0600: it holds keys that log in as any of
    /// its users.
    pub fn create_or_open(path: &Path) -> anyhow::Result<UserStore> {
        create_private(path)
            .with_context(|| format!("cannot create the user database `{}`", path.display()))?;
        let connection = Connection::open(path)
            .with_context(|| format!("cannot open the user database `{}`", path.display()))?;
        let mut store = UserStore { connection };
        store
            .migrate()
            .with_context(|| format!("user database `{}`", path.display()))?;
        Ok(store)
    }

    /// Opens an existing database for writing (no file is created), bringing its schema up to
    /// date.
    pub fn open_existing(path: &Path) -> anyhow::Result<UserStore> {
        if !path.exists() {
            bail!("there is no user database at `{}`", path.display());
        }
        UserStore::create_or_open(path)
    }

    /// Opens an existing database read-only, as `serve` does: it never writes, so several
    /// servers may share the file. The schema must be the current one.
    pub fn open_read_only(path: &Path) -> anyhow::Result<UserStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open the user database `{}`", path.display()))?;
        let store = UserStore { connection };
        let version = store
            .version()
            .with_context(|| format!("cannot read the user database `{}`", path.display()))?;
        if version != SCHEMA_VERSION {
            bail!(
                "`{}` is not a turnpike user database of schema version {SCHEMA_VERSION} \
                 (found version {version}); create or upgrade it with `turnpike user list --db {}`",
                path.display(),
                path.display()
            );
        }
        Ok(store)
    }

    /// The database's `user_version`.
    fn version(&self) -> rusqlite::Result<usize> {
        let version: i64 = self
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        Ok(usize::try_from(version).unwrap_or(usize::MAX))
    }

    /// Applies the missing migrations in one transaction; refuses a newer schema.
    fn migrate(&mut self) -> anyhow::Result<()> {
        let version = self.version().context("cannot read the schema version")?;
        if version > SCHEMA_VERSION {
            bail!(
                "schema version {version} is newer than this turnpike knows \
                 ({SCHEMA_VERSION}); use a newer turnpike"
            );
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let transaction = self.connection.transaction()?;
        for step in &MIGRATIONS[version..] {
            transaction.execute_batch(step)?;
        }
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        transaction.commit()?;
        Ok(())
    }

    /// Adds `name` with `keys` for `realm`, or replaces its realm and keys when it exists and
    /// `update` is set (keeping its creation time).
    pub fn add(
        &self,
        name: &str,
        realm: &str,
        keys: &UserKeys,
        update: bool,
        now: i64,
    ) -> anyhow::Result<Added> {
        let exists = self
            .connection
            .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if exists && !update {
            return Ok(Added::Exists);
        }
        let (md5, sha256) = (&keys.md5[..], &keys.sha256[..]);
        if exists {
            self.connection.execute(
                "UPDATE users SET realm = ?2, md5_key = ?3, sha256_key = ?4 WHERE name = ?1",
                params![name, realm, md5, sha256],
            )?;
            return Ok(Added::Updated);
        }
        self.connection.execute(
            "INSERT INTO users (name, realm, md5_key, sha256_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, realm, md5, sha256, now],
        )?;
        Ok(Added::Created)
    }

    /// Removes `name`; false when there was no such user.
    pub fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let removed = self
            .connection
            .execute("DELETE FROM users WHERE name = ?1", [name])?;
        Ok(removed > 0)
    }

    /// Every user, ordered by name.
    pub fn list(&self) -> anyhow::Result<Vec<UserRecord>> {
        let mut statement = self.connection.prepare(
            "SELECT name, realm, md5_key, sha256_key, created_at FROM users ORDER BY name",
        )?;
        let rows = statement.query_map([], |row| {
            let md5: Vec<u8> = row.get(2)?;
            let sha256: Vec<u8> = row.get(3)?;
            Ok((row.get(0)?, row.get(1)?, md5, sha256, row.get(4)?))
        })?;
        let mut users = Vec::new();
        for row in rows {
            let (name, realm, md5, sha256, created_at): (String, String, _, _, _) = row?;
            let (Ok(md5), Ok(sha256)) = (md5.try_into(), sha256.try_into()) else {
                bail!("the keys of user `{name}` have the wrong length");
            };
            users.push(UserRecord {
                name,
                realm,
                keys: UserKeys { md5, sha256 },
                created_at,
            });
        }
        Ok(users)
    }
}

/// Creates `path` empty with mode 0600 unless it exists (an empty file is an empty SQLite
/// database). SQLite would create it 0644 less the umask; creating it first, with the mode set
/// by `open(2)` itself, leaves no moment at which the keys are readable by others. SQLite gives
/// its `-journal` and `-wal` side files the mode of the database file, so they are 0600 too. An
/// existing file keeps the mode its owner chose.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}
