//! One WebRTC peer connection with a browser, on str0m's sans-IO `Rtc`: we answer the page's
//! SDP offer (RFC 8829 §5.3, JSEP answers; RFC 8866 SDP), run ICE (RFC 8445) as the controlled
//! agent over the candidates we add, DTLS and SCTP (RFC 8261, RFC 8831), and carry the page's
//! data channels (RFC 8832: DCEP, or pre-negotiated ids as the page's `chat` channel).
//!
//! Like every core here it owns no socket and reads no clock: [`WebRtcPeer::receive`] and
//! [`WebRtcPeer::timeout`] take `now`, [`WebRtcPeer::poll`] hands back what to send, what
//! happened, and when to call again.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};

use super::file_transfer::{FILE_LABEL, FILE_STREAM};
use super::transport::Arrived;

/// The page's chat channel: pre-negotiated (RFC 8831 §6.5, `negotiated: true, id: 0` in
/// web/static/room.js), so both ends create it and no DCEP message opens it.
pub const CHAT_LABEL: &str = "chat";
/// Its SCTP stream id.
pub const CHAT_STREAM: u16 = 0;

/// Why the peer connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The offer is not SDP we understand.
    #[error("the browser's offer is not valid SDP: {0}")]
    BadOffer(String),
    /// str0m refused the offer (e.g. no data channel section, unsupported setup).
    #[error("cannot answer the browser's offer: {0}")]
    Answer(RtcError),
    /// The DTLS, SCTP or ICE state machine failed.
    #[error("WebRTC failed: {0}")]
    Rtc(RtcError),
    /// A candidate string from the peer is malformed.
    #[error("malformed ICE candidate {0:?}")]
    BadCandidate(String),
}

/// What the I/O loop must do or know, from [`WebRtcPeer::poll`].
#[derive(Debug)]
pub enum PeerOutput {
    /// Send `contents` from the local address `source` to `destination`.
    Transmit {
        /// Our address (a host socket, or a relayed address).
        source: SocketAddr,
        /// The peer's address.
        destination: SocketAddr,
        /// The datagram.
        contents: Vec<u8>,
    },
    /// A data channel opened (the chat channel, or one the page opened with DCEP).
    ChannelOpen(ChannelId, String),
    /// A message on a data channel.
    ChannelData {
        /// Which channel.
        channel: ChannelId,
        /// Binary (RFC 8831 §6.6: PPID 53) or string (PPID 51).
        binary: bool,
        /// The message.
        data: Vec<u8>,
    },
    /// A channel's buffered amount fell under its threshold: more may be written.
    BufferedAmountLow(ChannelId),
    /// A data channel closed.
    ChannelClose(ChannelId),
    /// The ICE connection state changed.
    IceState(IceConnectionState),
    /// Nothing more now: call again at this instant, or on input.
    Wait(Instant),
}

/// A peer connection answering a browser.
pub struct WebRtcPeer {
    rtc: Rtc,
    chat: ChannelId,
    file: ChannelId,
}

impl WebRtcPeer {
    /// A connection with our `host` candidates, answering `offer`; returns it and the answer SDP.
    pub fn answer(
        now: Instant,
        offer_sdp: &str,
        candidates: Vec<Candidate>,
    ) -> Result<(Self, String), PeerError> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| PeerError::BadOffer(e.to_string()))?;
        // The page's audio and video sections are accepted with str0m's default codecs (an
        // answer without any codec in a section is not valid SDP to Chrome, and declining a
        // section still needs one); we send no media and ignore what arrives. Only the data
        // channel section (m=application, RFC 8841) is used.
        let mut rtc = Rtc::builder().build(now);
        for candidate in candidates {
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(PeerError::Answer)?;
        let chat = rtc.direct_api().create_data_channel(ChannelConfig {
            label: CHAT_LABEL.to_owned(),
            negotiated: Some(CHAT_STREAM),
            ..ChannelConfig::default()
        });
        let file = rtc.direct_api().create_data_channel(ChannelConfig {
            label: FILE_LABEL.to_owned(),
            negotiated: Some(FILE_STREAM),
            ..ChannelConfig::default()
        });
        Ok((WebRtcPeer { rtc, chat, file }, answer.to_sdp_string()))
    }

    /// Accepts a later offer of the same connection (the page restarts ICE when the
    /// connection fails, RFC 8445 §9); returns the answer.
    pub fn renegotiate(&mut self, offer_sdp: &str) -> Result<String, PeerError> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| PeerError::BadOffer(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(PeerError::Answer)?;
        Ok(answer.to_sdp_string())
    }

    /// Adds a candidate of ours gathered after the answer (server-reflexive, relayed); returns
    /// its RFC 8839 `candidate:` string to trickle, or `None` when str0m found it redundant
    /// with one it has (RFC 8445 §5.1.3).
    pub fn add_local_candidate(&mut self, candidate: Candidate) -> Option<String> {
        self.rtc
            .add_local_candidate(candidate)
            .map(Candidate::to_sdp_string)
    }

    /// Adds a trickled remote candidate (RFC 8838 §11.4), an RFC 8839 `candidate:` string;
    /// returns its address.
    pub fn add_remote_candidate(&mut self, text: &str) -> Result<SocketAddr, PeerError> {
        let candidate = Candidate::from_sdp_string(text)
            .map_err(|_| PeerError::BadCandidate(text.to_owned()))?;
        let address = candidate.addr();
        self.rtc.add_remote_candidate(candidate);
        Ok(address)
    }

    /// The pre-negotiated chat channel.
    pub fn chat_channel(&self) -> ChannelId {
        self.chat
    }

    /// The pre-negotiated file channel ([`super::file_transfer`]).
    pub fn file_channel(&self) -> ChannelId {
        self.file
    }

    /// A datagram that arrived on `destination` (our address) from `source`. A datagram that
    /// is neither STUN, DTLS, RTP nor RTCP is dropped (RFC 7983 demultiplexing).
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> Result<(), PeerError> {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            tracing::trace!(%source, "datagram dropped: not STUN, DTLS, RTP or RTCP");
            return Ok(());
        };
        self.rtc
            .handle_input(Input::Receive(now, receive))
            .map_err(PeerError::Rtc)
    }

    /// Whether `arrived` belongs to this connection (str0m's test for several connections on
    /// one socket: STUN with our credentials, or traffic from a remote address whose candidate
    /// pair succeeded).
    pub fn accepts(&self, now: Instant, arrived: &Arrived) -> bool {
        Receive::new(
            Protocol::Udp,
            arrived.source,
            arrived.destination,
            &arrived.contents,
        )
        .is_ok_and(|receive| self.rtc.accepts(&Input::Receive(now, receive)))
    }

    /// Time passed.
    pub fn timeout(&mut self, now: Instant) -> Result<(), PeerError> {
        self.rtc
            .handle_input(Input::Timeout(now))
            .map_err(PeerError::Rtc)
    }

    /// The next output; [`PeerOutput::Wait`] when there is nothing more until then.
    pub fn poll(&mut self) -> Result<PeerOutput, PeerError> {
        loop {
            let output = self.rtc.poll_output().map_err(PeerError::Rtc)?;
            let event = match output {
                Output::Timeout(at) => return Ok(PeerOutput::Wait(at)),
                Output::Transmit(transmit) => {
                    return Ok(PeerOutput::Transmit {
                        source: transmit.source,
                        destination: transmit.destination,
                        contents: transmit.contents.to_vec(),
                    })
                }
                Output::Event(event) => event,
            };
            match event {
                Event::ChannelOpen(id, label) => return Ok(PeerOutput::ChannelOpen(id, label)),
                Event::ChannelData(data) => {
                    return Ok(PeerOutput::ChannelData {
                        channel: data.id,
                        binary: data.binary,
                        data: data.data,
                    })
                }
                Event::ChannelClose(id) => return Ok(PeerOutput::ChannelClose(id)),
                Event::ChannelBufferedAmountLow(id) => {
                    return Ok(PeerOutput::BufferedAmountLow(id))
                }
                Event::IceConnectionStateChange(state) => return Ok(PeerOutput::IceState(state)),
                // Media events (none: no codecs), stats: nothing to do.
                other => tracing::trace!(?other, "WebRTC event"),
            }
        }
    }

    /// Writes a message on `channel`; `false` when the channel is not open.
    pub fn write(
        &mut self,
        channel: ChannelId,
        binary: bool,
        data: &[u8],
    ) -> Result<bool, PeerError> {
        match self.rtc.channel(channel) {
            Some(mut channel) => channel.write(binary, data).map_err(PeerError::Rtc),
            None => Ok(false),
        }
    }

    /// Bytes written on `channel` and not yet acknowledged by the peer's SCTP.
    pub fn buffered_amount(&mut self, channel: ChannelId) -> usize {
        self.rtc
            .channel(channel)
            .map_or(0, |mut channel| channel.buffered_amount())
    }

    /// Asks for [`PeerOutput::BufferedAmountLow`] when `channel`'s buffer falls under
    /// `threshold` bytes.
    pub fn set_buffered_amount_low_threshold(&mut self, channel: ChannelId, threshold: usize) {
        if let Some(mut channel) = self.rtc.channel(channel) {
            channel.set_buffered_amount_low_threshold(threshold);
        }
    }

    /// Whether the connection is still usable (str0m gave up after a fatal error otherwise).
    pub fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }

    /// Closes the connection (DTLS close_notify, SCTP abort).
    pub fn disconnect(&mut self) {
        self.rtc.disconnect();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A data-channel-only offer as Chromium writes it (RFC 8841 m=application), trimmed.
    const OFFER: &str = "v=0\r\n\
        o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0\r\n\
        a=msid-semantic: WMS\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:Ab3d\r\n\
        a=ice-pwd:0123456789abcdefghijklmn\r\n\
        a=ice-options:trickle\r\n\
        a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:79:F2\r\n\
        a=setup:actpass\r\n\
        a=mid:0\r\n\
        a=sctp-port:5000\r\n\
        a=max-message-size:262144\r\n";

    fn host() -> Candidate {
        Candidate::host("127.0.0.1:5000".parse().unwrap(), "udp").unwrap()
    }

    #[test]
    fn a_data_channel_offer_is_answered_with_our_candidate_and_a_candidate_added_later_is_trickled()
    {
        let (mut peer, answer) = WebRtcPeer::answer(Instant::now(), OFFER, vec![host()]).unwrap();
        assert!(answer.contains("a=setup:active") || answer.contains("a=setup:passive"));
        assert!(answer.contains("127.0.0.1 5000 typ host"), "{answer}");
        let relayed = Candidate::relayed(
            "192.0.2.9:49170".parse().unwrap(),
            "127.0.0.1:5001".parse().unwrap(),
            "udp",
        )
        .unwrap();
        let text = peer.add_local_candidate(relayed).unwrap();
        assert!(text.starts_with("candidate:"), "{text}");
        assert!(text.contains("192.0.2.9 49170 typ relay"), "{text}");
        // RFC 8445 §5.1.3: a server-reflexive address equal to its base is redundant.
        let redundant = Candidate::server_reflexive(
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:5000".parse().unwrap(),
            "udp",
        )
        .unwrap();
        assert_eq!(peer.add_local_candidate(redundant), None);
    }

    #[test]
    fn malformed_offers_and_candidates_are_clear_errors_never_panics() {
        for sdp in [
            "",
            "v=0\r\n",
            "not sdp at all",
            "v=0\r\nm=application x\r\n",
            &OFFER[..200],
        ] {
            match WebRtcPeer::answer(Instant::now(), sdp, vec![host()]) {
                Err(PeerError::BadOffer(_) | PeerError::Answer(_)) => {}
                Err(other) => panic!("{sdp:?}: unexpected error {other}"),
                Ok(_) => panic!("{sdp:?} was answered"),
            }
        }
        let (mut peer, _) = WebRtcPeer::answer(Instant::now(), OFFER, vec![host()]).unwrap();
        for text in [
            "",
            "candidate:",
            "candidate:1 1 udp x 1.2.3.4 5 typ host",
            "garbage",
        ] {
            assert!(
                matches!(peer.add_remote_candidate(text), Err(PeerError::BadCandidate(t)) if t == text),
                "{text:?}"
            );
        }
        let address = peer
            .add_remote_candidate("candidate:1 1 udp 2122260223 192.0.2.7 40000 typ host")
            .unwrap();
        assert_eq!(address, "192.0.2.7:40000".parse().unwrap());
    }
}
