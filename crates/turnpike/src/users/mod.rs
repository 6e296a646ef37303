//! TURN users kept in a SQLite file: managed by `turnpike user add|remove|list`
//! ([`command`]), read by `serve` at start ([`load`]).
//!
//! The file holds each user's long-term keys (RFC 8489 §9.2.2) for the realm they were added
//! in, never the password (see [`store`]). Since the keys depend on the realm, a server loads
//! only users of its own realm: [`load`] fails, naming them, when the file holds users of
//! another realm, rather than starting with users who could never log in.

pub mod command;
pub mod store;

#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::bail;
use turn::auth::StaticUser;

pub use store::{UserRecord, UserStore};

/// Most names printed in an error about users of another realm.
const NAMES_SHOWN: usize = 5;

/// The users of the database at `path`, for a server whose realm is `realm`.
///
/// Opens the file read-only; fails when it is missing, is not a user database of the current
/// schema, or holds any user of another realm (the error names them and says how to re-add
/// them).
pub fn load(path: &Path, realm: &str) -> anyhow::Result<Vec<StaticUser>> {
    let records = UserStore::open_read_only(path)?.list()?;
    let (ours, others): (Vec<UserRecord>, Vec<UserRecord>) =
        records.into_iter().partition(|user| user.realm == realm);
    if !others.is_empty() {
        let mut names: Vec<String> = others
            .iter()
            .take(NAMES_SHOWN)
            .map(|user| format!("`{}` (realm `{}`)", user.name, user.realm))
            .collect();
        if others.len() > NAMES_SHOWN {
            names.push(format!("and {} more", others.len() - NAMES_SHOWN));
        }
        bail!(
            "the user database `{}` has {} user(s) of another realm than `{realm}`: {}; \
             their keys only work in their own realm: re-add them with \
             `turnpike user add --update --realm {realm} NAME` or remove them",
            path.display(),
            others.len(),
            names.join(", ")
        );
    }
    Ok(ours
        .into_iter()
        .map(|user| StaticUser {
            username: user.name,
            keys: user.keys,
        })
        .collect())
}
