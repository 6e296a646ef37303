//! Client → server frames, parsed into a typed value ("parse, don't validate"). `data` is
//! kept as the exact slice of the frame it came in ([`RawValue`]): it is never decoded or
//! re-encoded. Unknown members are ignored (a client's `from` among them).

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::ids::is_room_name;

/// The `type`s of directed frames, relayed as `{type, from, data}` to peer `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directed {
    Offer,
    Answer,
    Candidate,
    Bye,
    Message,
}

impl Directed {
    /// The wire `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Directed::Offer => "offer",
            Directed::Answer => "answer",
            Directed::Candidate => "candidate",
            Directed::Bye => "bye",
            Directed::Message => "message",
        }
    }

    fn from_wire(kind: &str) -> Option<Directed> {
        [
            Directed::Offer,
            Directed::Answer,
            Directed::Candidate,
            Directed::Bye,
            Directed::Message,
        ]
        .into_iter()
        .find(|d| d.as_str() == kind)
    }
}

/// A well-formed client frame.
#[derive(Debug)]
pub(crate) enum Inbound<'a> {
    /// `join`: a valid room name, an optional join token, an optional resume token.
    Join {
        room: String,
        token: Option<String>,
        resume: Option<String>,
    },
    /// A directed frame; `to` is not checked here (a bad id is `unknown-peer`).
    Directed {
        kind: Directed,
        to: String,
        data: &'a RawValue,
    },
    /// `broadcast`.
    Broadcast { data: &'a RawValue },
    /// `ping`.
    Ping,
    /// `pong`.
    Pong,
    /// `leave`.
    Leave,
}

impl Inbound<'_> {
    /// The frame's `type`, for an error's `ref`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Inbound::Join { .. } => "join",
            Inbound::Directed { kind, .. } => kind.as_str(),
            Inbound::Broadcast { .. } => "broadcast",
            Inbound::Ping => "ping",
            Inbound::Pong => "pong",
            Inbound::Leave => "leave",
        }
    }
}

/// Why a frame is `bad-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadMessage {
    /// The frame's `type`, when it had a string one.
    pub(crate) kind: Option<String>,
    /// A human reason.
    pub(crate) reason: String,
}

/// The members the hub reads, as raw JSON: each is checked only for the types that use it,
/// so a member not listed for a `type` is ignored whatever it holds.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, borrow, deserialize_with = "present")]
    room: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    token: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    resume: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    to: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

/// A member that is there is `Some`, even when it is `null` (`data` may be any JSON).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Parses one text frame.
pub(crate) fn parse(text: &str) -> Result<Inbound<'_>, BadMessage> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| BadMessage {
        kind: serde_json::from_str::<TypeOnly>(text)
            .ok()
            .and_then(|t| t.kind),
        reason: e.to_string(),
    })?;
    let kind = envelope.kind.as_str();
    let bad = |reason: &str| BadMessage {
        kind: Some(kind.to_owned()),
        reason: reason.to_owned(),
    };
    // An optional string member: absent or `null` is `None`, anything but a string is bad.
    let string = |raw: Option<&RawValue>, name: &str| match raw {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Option<String>>(raw.get())
            .map_err(|_| bad(&format!("`{name}` must be a string"))),
    };
    let required = |raw: Option<&RawValue>, name: &str| {
        string(raw, name)?.ok_or_else(|| bad(&format!("`{name}` is missing")))
    };
    let data = || envelope.data.ok_or_else(|| bad("`data` is missing"));
    let inbound = match kind {
        "join" => {
            let room = required(envelope.room, "room")?;
            if !is_room_name(&room) {
                return Err(bad("`room` must be 1-64 characters of [A-Za-z0-9._-]"));
            }
            Inbound::Join {
                room,
                token: string(envelope.token, "token")?,
                resume: string(envelope.resume, "resume")?,
            }
        }
        "broadcast" => Inbound::Broadcast { data: data()? },
        "ping" => Inbound::Ping,
        "pong" => Inbound::Pong,
        "leave" => Inbound::Leave,
        other => match Directed::from_wire(other) {
            Some(directed) => Inbound::Directed {
                kind: directed,
                to: required(envelope.to, "to")?,
                data: data()?,
            },
            None => return Err(bad("unknown `type`")),
        },
    };
    Ok(inbound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_the_exact_slice() {
        // docs/signaling.md: `data` is forwarded verbatim, byte for byte.
        let text = r#"{"type":"broadcast","data": {"b" : 1.5e+10, "a":"\u00e9"} }"#;
        let Ok(Inbound::Broadcast { data }) = parse(text) else {
            panic!("a broadcast");
        };
        assert_eq!(data.get(), r#"{"b" : 1.5e+10, "a":"\u00e9"}"#);
    }

    #[test]
    fn null_data_is_present() {
        let Ok(Inbound::Directed { data, to, kind }) =
            parse(r#"{"type":"offer","to":"0000000a","data":null}"#)
        else {
            panic!("an offer");
        };
        assert_eq!(
            (data.get(), to.as_str(), kind),
            ("null", "0000000a", Directed::Offer)
        );
    }

    #[test]
    fn bad_frames_name_their_type_when_they_can() {
        // docs/signaling.md "Errors" bad-message: not JSON, unknown type, missing or
        // ill-typed member, bad room name.
        let cases = [
            ("nope", None),
            ("[1]", None),
            (r#"{"data":1}"#, None),
            (r#"{"type":7}"#, None),
            (r#"{"type":"dance"}"#, Some("dance")),
            (r#"{"type":"join"}"#, Some("join")),
            (r#"{"type":"join","room":"a b"}"#, Some("join")),
            (r#"{"type":"join","room":5}"#, Some("join")),
            (r#"{"type":"offer","data":1}"#, Some("offer")),
            (r#"{"type":"offer","to":"x"}"#, Some("offer")),
            (r#"{"type":"broadcast"}"#, Some("broadcast")),
            (r#"{"type":"ping","type":"pong"}"#, None),
        ];
        for (text, kind) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.kind.as_deref(), kind, "{text}");
        }
    }

    #[test]
    fn members_not_listed_for_the_type_are_ignored_whatever_they_hold() {
        // docs/signaling.md "Frames": members not listed for a `type` are ignored.
        for text in [
            r#"{"type":"ping","room":5,"to":[],"data":1}"#,
            r#"{"type":"broadcast","to":{},"room":null,"data":1}"#,
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
        let Ok(Inbound::Join { token, resume, .. }) =
            parse(r#"{"type":"join","room":"r","token":null,"resume":null,"to":1}"#)
        else {
            panic!("a join");
        };
        assert_eq!((token, resume), (None, None));
        let err = parse(r#"{"type":"join","room":"r","resume":1}"#).expect_err("ill-typed");
        assert_eq!(err.reason, "`resume` must be a string");
    }

    #[test]
    fn unknown_members_are_ignored() {
        let Ok(Inbound::Broadcast { data }) =
            parse(r#"{"type":"broadcast","from":"evil","x":[1],"data":2}"#)
        else {
            panic!("a broadcast");
        };
        assert_eq!(data.get(), "2");
    }
}
