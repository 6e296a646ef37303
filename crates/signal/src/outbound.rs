//! Server → client frames, written as text directly. Relayed `data` and the I/O layer's
//! `iceServers` are copied in as they are: never decoded, never re-encoded. Strings that
//! came from a client (an error's `ref`) are escaped by `serde_json`.

use serde_json::value::RawValue;

use crate::config::IceConfig;
use crate::error::ErrorCode;
use crate::ids::PeerId;

/// `{"type":"ping"}`.
pub(crate) const PING: &str = r#"{"type":"ping"}"#;
/// `{"type":"pong"}`.
pub(crate) const PONG: &str = r#"{"type":"pong"}"#;

/// A JSON string literal for `s`.
fn string(s: &str) -> String {
    serde_json::to_string(s).expect("a str serializes")
}

/// What a `joined` frame says.
pub(crate) struct Joined<'a> {
    pub(crate) id: PeerId,
    pub(crate) room: &'a str,
    pub(crate) peers: &'a [PeerId],
    pub(crate) resume: &'a str,
    pub(crate) resumed: bool,
    pub(crate) ice: &'a IceConfig,
}

/// `{"type":"joined","id":…,"room":…,"peers":[…],"resume":…,"resumed":…,"iceServers":[…],"iceTtl":…}`.
pub(crate) fn joined(j: &Joined<'_>) -> String {
    let peers: Vec<String> = j.peers.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        r#"{{"type":"joined","id":"{}","room":{},"peers":[{}],"resume":{},"resumed":{},"iceServers":{},"iceTtl":{}}}"#,
        j.id,
        string(j.room),
        peers.join(","),
        string(j.resume),
        j.resumed,
        j.ice.servers.get(),
        j.ice.ttl,
    )
}

/// `{"type":"peer-joined","id":…}`.
pub(crate) fn peer_joined(id: PeerId) -> String {
    format!(r#"{{"type":"peer-joined","id":"{id}"}}"#)
}

/// `{"type":"peer-left","id":…}`.
pub(crate) fn peer_left(id: PeerId) -> String {
    format!(r#"{{"type":"peer-left","id":"{id}"}}"#)
}

/// `{"type":KIND,"from":…,"data":DATA}` with `data` copied byte for byte.
pub(crate) fn relayed(kind: &str, from: PeerId, data: &RawValue) -> String {
    let data = data.get();
    let mut text = String::with_capacity(40 + kind.len() + data.len());
    text.push_str(r#"{"type":""#);
    text.push_str(kind);
    text.push_str(r#"","from":""#);
    text.push_str(&from.to_string());
    text.push_str(r#"","data":"#);
    text.push_str(data);
    text.push('}');
    text
}

/// `{"type":"error","code":…,"message":…}` plus `"ref":…` when the offending frame's
/// `type` is known.
pub(crate) fn error(code: ErrorCode, message: &str, kind: Option<&str>) -> String {
    let mut text = format!(
        r#"{{"type":"error","code":"{code}","message":{}"#,
        string(message)
    );
    if let Some(kind) = kind {
        text.push_str(r#","ref":"#);
        text.push_str(&string(kind));
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_copies_data_verbatim() {
        let data = RawValue::from_string(r#"{ "x" : 1E+2 }"#.to_owned()).expect("JSON");
        let id = PeerId::parse("0000abcd").expect("an id");
        assert_eq!(
            relayed("offer", id, &data),
            r#"{"type":"offer","from":"0000abcd","data":{ "x" : 1E+2 }}"#
        );
    }

    #[test]
    fn error_escapes_the_ref() {
        let text = error(ErrorCode::BadMessage, "m\"", Some("a\"b"));
        assert_eq!(
            text,
            r#"{"type":"error","code":"bad-message","message":"m\"","ref":"a\"b"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["ref"], "a\"b");
    }
}
