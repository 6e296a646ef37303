//! The room page's signaling payloads (web/static/room.js), read and written exactly as the page
//! does: the `data` of `offer`/`answer` frames is an `RTCSessionDescriptionInit` (RFC 8829
//! §5.2: `{type, sdp}`), the `data` of `candidate` frames an `RTCIceCandidateInit`
//! (`{candidate, sdpMid, sdpMLineIndex, usernameFragment}`, RFC 8839 §5.1 candidate-attribute
//! without the `a=`). The page adds its session id `sid` to every frame and, once known, ours
//! as `rsid`: frames for a connection it has since replaced are dropped by that tag.

use serde_json::{json, Value};

/// Longest SDP we accept from a peer: a browser's offer with audio, video and a data channel
/// is a few KiB; this bound keeps a hostile peer from making us parse megabytes.
const MAX_SDP: usize = 64 * 1024;

/// Why a page's frame could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// `data.type` is neither `offer` nor `answer`.
    #[error("the description's type is {0:?}, not \"offer\" or \"answer\"")]
    BadType(String),
    /// `data.sdp` is absent or not a string.
    #[error("the description has no `sdp` string")]
    NoSdp,
    /// `data.sdp` is longer than [`MAX_SDP`].
    #[error("the SDP is {0} bytes long, more than the {MAX_SDP} accepted")]
    SdpTooLong(usize),
}

/// Offer or answer (RFC 8866 §5, the `type` of an `RTCSessionDescriptionInit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpType {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
}

/// A session description from the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserDescription {
    /// Offer or answer.
    pub kind: SdpType,
    /// The SDP text.
    pub sdp: String,
    /// The page's session id for this connection (absent from other WebRTC clients).
    pub sid: Option<String>,
}

impl BrowserDescription {
    /// Whether `data` (an `offer`/`answer` frame's payload) is an SDP description rather than
    /// our own `turnpike-p2p/1` one: the way the CLI tells a browser from another CLI.
    pub fn is_sdp(data: &Value) -> bool {
        data.get("sdp").is_some()
    }

    /// Reads the payload of an `offer` or `answer` frame (`frame_type`; the payload's own
    /// `type`, when present, wins, as the page reads it).
    pub fn parse(frame_type: &str, data: &Value) -> Result<Self, FrameError> {
        let kind = data["type"].as_str().unwrap_or(frame_type);
        let kind = match kind {
            "offer" => SdpType::Offer,
            "answer" => SdpType::Answer,
            other => return Err(FrameError::BadType(other.to_owned())),
        };
        let sdp = data["sdp"].as_str().ok_or(FrameError::NoSdp)?;
        if sdp.len() > MAX_SDP {
            return Err(FrameError::SdpTooLong(sdp.len()));
        }
        Ok(BrowserDescription {
            kind,
            sdp: sdp.to_owned(),
            sid: data["sid"].as_str().map(str::to_owned),
        })
    }
}

/// The first `a=mid:` of an SDP (RFC 8866 §5, RFC 5888 §4): the media id of its first section.
pub fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end_matches('\r').strip_prefix("a=mid:"))
        .map(str::to_owned)
}

/// Our side of one page connection: our session id, and the page's, echoed as `rsid` so that
/// the page matches our frames to its current connection.
#[derive(Debug, Clone)]
pub struct SessionTags {
    /// Our session id (random, per run).
    pub sid: String,
    /// The page's session id, from its offer.
    pub rsid: Option<String>,
    /// The media id our trickled candidates name (`sdpMid`): the offer's first section, which
    /// heads its BUNDLE group (RFC 8843), so every section's transport is this one.
    pub mid: Option<String>,
}

impl SessionTags {
    /// The `data` of our `answer` frame.
    pub fn answer(&self, sdp: &str) -> Value {
        self.tagged(json!({"type": "answer", "sdp": sdp}))
    }

    /// The `data` of a `candidate` frame: an `RTCIceCandidateInit` as the page's own
    /// `candidate.toJSON()` (RFC 8839 §5.1 candidate-attribute without the `a=`).
    pub fn candidate(&self, candidate: &str) -> Value {
        self.tagged(json!({
            "candidate": candidate,
            "sdpMid": self.mid,
            "sdpMLineIndex": 0,
            "usernameFragment": null,
        }))
    }

    /// `bye`: the page closes its connection to us.
    pub fn bye(&self) -> Value {
        self.tagged(json!({}))
    }

    fn tagged(&self, mut data: Value) -> Value {
        data["sid"] = json!(self.sid);
        // We never offer SDP: the page replaces a connection to us itself (its relay-only
        // switch) rather than ask us to with `bye {reset: true}` when it is the polite side.
        data["answersOnly"] = json!(true);
        if let Some(rsid) = &self.rsid {
            data["rsid"] = json!(rsid);
        }
        data
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pages_offer_is_read_with_its_session_id() {
        let data = json!({"type": "offer", "sdp": "v=0\r\na=mid:0\r\n", "sid": "a1b2c3"});
        assert!(BrowserDescription::is_sdp(&data));
        let offer = BrowserDescription::parse("offer", &data).unwrap();
        assert_eq!(offer.kind, SdpType::Offer);
        assert_eq!(offer.sid.as_deref(), Some("a1b2c3"));
    }

    #[test]
    fn malformed_descriptions_are_clear_errors() {
        let ours =
            json!({"protocol": "turnpike-p2p/1", "ufrag": "u", "pwd": "p", "fingerprint": "f"});
        assert!(!BrowserDescription::is_sdp(&ours));
        assert_eq!(
            BrowserDescription::parse("offer", &json!({"type": "pranswer", "sdp": ""})),
            Err(FrameError::BadType("pranswer".into()))
        );
        assert_eq!(
            BrowserDescription::parse("offer", &json!({"sdp": 5})),
            Err(FrameError::NoSdp)
        );
        let long = "a".repeat(MAX_SDP + 1);
        assert_eq!(
            BrowserDescription::parse("offer", &json!({"sdp": long})),
            Err(FrameError::SdpTooLong(MAX_SDP + 1))
        );
    }

    #[test]
    fn our_frames_carry_both_session_ids_as_the_page_expects() {
        let tags = SessionTags {
            sid: "ours".into(),
            rsid: Some("theirs".into()),
            mid: first_mid("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n"),
        };
        let answer = tags.answer("v=0");
        assert_eq!(answer["type"], "answer");
        assert_eq!(answer["sid"], "ours");
        assert_eq!(answer["rsid"], "theirs");
        assert_eq!(tags.bye()["rsid"], "theirs");
        assert_eq!(
            answer["answersOnly"], true,
            "the page must not wait for our offer"
        );
        let candidate = tags.candidate("candidate:1 1 udp 1 192.0.2.1 5000 typ relay");
        assert_eq!(
            candidate["candidate"],
            "candidate:1 1 udp 1 192.0.2.1 5000 typ relay"
        );
        assert_eq!(candidate["sdpMid"], "0", "the BUNDLE-tagged first section");
        assert_eq!(candidate["sdpMLineIndex"], 0);
        assert_eq!(candidate["rsid"], "theirs");
        assert_eq!(first_mid("v=0\r\n"), None);
    }
}
