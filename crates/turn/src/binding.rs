//! The STUN Binding service (RFC 8489 §6.3, RFC 3489 §8.2, RFC 5780 §6).
//!
//! One request in, at most one answer out, nothing remembered: Binding is idempotent, so a
//! retransmission is simply answered again (RFC 8489 §6.3.1), and an unauthenticated packet
//! creates no state of its own. Over UDP, an answer larger than its request is charged to
//! the source's [`ResponseBudget`] (shared with the TURN core) and dropped when the budget is
//! spent: the client retransmits (RFC 8489 §6.2.1), a spoofed victim gets no more than the
//! budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use stun::attributes::ErrorCode;
use stun::attributes::{
    ChangeRequest, ChangedAddress, MappedAddress, OtherAddress, Padding, ResponseOrigin,
    ResponsePort, Software, SourceAddress, UnknownAttributes, XorMappedAddress,
};
use stun::{error_code, AttributeType, Class, Message, MessageType, MessageWriter};

use crate::budget::ResponseBudget;
use crate::sockets::{ServerSockets, SocketId, Transmit, Transport};

/// How the Binding service is set up.
#[derive(Debug, Clone)]
pub struct BindingConfig {
    /// The server's sockets; a second IP and/or port turns on RFC 5780 behaviour discovery.
    pub sockets: ServerSockets,
    /// SOFTWARE text to add to responses; `None` (the default) keeps responses minimal.
    pub software: Option<String>,
}

/// At most this many types are listed in UNKNOWN-ATTRIBUTES; a request with more unknown
/// comprehension-required attributes still gets a 420, listing the first ones.
const MAX_UNKNOWN_LISTED: usize = 8;

/// A PADDING response is sized to fit one Ethernet MTU less IPv4 and UDP headers
/// (RFC 5780 §7.6: "equal in length to the MTU of the outgoing interface")...
const PADDED_RESPONSE_MAX: usize = 1500 - 28;
/// ...and is never larger than the request (see [`BindingServer::padding_len`]).
static PADDING_BYTES: [u8; PADDED_RESPONSE_MAX] = [0; PADDED_RESPONSE_MAX];

/// Why a Binding request is refused. The one place where refusals map to error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// 400: an attribute we act on is malformed, or RESPONSE-PORT came with PADDING.
    BadRequest,
    /// 420: comprehension-required attributes we do not understand or cannot honour here.
    Unknown([AttributeType; MAX_UNKNOWN_LISTED], usize),
}

impl Refusal {
    fn unknown(first: AttributeType) -> Refusal {
        let mut list = [AttributeType(0); MAX_UNKNOWN_LISTED];
        list[0] = first;
        Refusal::Unknown(list, 1)
    }

    fn error_code(&self) -> ErrorCode<'static> {
        match self {
            Refusal::BadRequest => error_code::BAD_REQUEST,
            Refusal::Unknown(..) => error_code::UNKNOWN_ATTRIBUTE,
        }
    }
}

/// Where and how a success response goes.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// The socket the request came in on (Da:Dp).
    received_on: SocketId,
    /// The socket the response leaves from.
    from: SocketId,
    to: SocketAddr,
    padding: bool,
}

/// Answers Binding requests.
#[derive(Debug, Clone)]
pub struct BindingServer {
    config: BindingConfig,
    budget: Arc<ResponseBudget>,
}

impl BindingServer {
    /// A Binding service with this configuration and no amplification budget.
    pub fn new(config: BindingConfig) -> Self {
        Self::with_budget(config, Arc::new(ResponseBudget::unlimited()))
    }

    /// A Binding service whose UDP answers ([`BindingServer::handle_udp`]) are charged to
    /// `budget`, which the TURN cores share.
    pub fn with_budget(config: BindingConfig, budget: Arc<ResponseBudget>) -> Self {
        BindingServer { config, budget }
    }

    /// [`BindingServer::handle`] for a UDP datagram received at `now`, with the answer
    /// charged to the source's budget: `None` when it is larger than the request and the
    /// budget cannot pay for it.
    pub fn handle_udp(
        &self,
        now: Instant,
        local: SocketId,
        source: SocketAddr,
        request: &[u8],
        out: &mut [u8],
    ) -> Option<Transmit> {
        let answer = self.handle(Transport::Udp, local, source, request, out)?;
        self.budget
            .allow(now, answer.to.ip(), request.len(), answer.len)
            .then_some(answer)
    }

    /// The configuration.
    pub fn config(&self) -> &BindingConfig {
        &self.config
    }

    /// Handles one packet that arrived on socket `local` from `source`; writes the answer, if
    /// any, into `out` and says where to send it. No budget is charged: use
    /// [`BindingServer::handle_udp`] for UDP.
    ///
    /// Returns `None` (drop silently, RFC 8489 §6.3) for anything that is not a well-formed
    /// STUN Binding request: other methods, indications, responses, bad FINGERPRINT,
    /// truncated or inconsistent packets. `out` should hold at least 1500 bytes; an answer
    /// that does not fit is dropped.
    pub fn handle(
        &self,
        transport: Transport,
        local: SocketId,
        source: SocketAddr,
        request: &[u8],
        out: &mut [u8],
    ) -> Option<Transmit> {
        let message = Message::decode(request).ok()?;
        if message.header().message_type != MessageType::BINDING_REQUEST {
            return None;
        }
        match self.plan(&message, transport, local, source) {
            Ok(plan) => {
                let len = self.write_success(&message, plan, source, out)?;
                Some(Transmit {
                    from: plan.from,
                    to: plan.to,
                    len,
                })
            }
            Err(refusal) => {
                let len = write_error(&message, refusal, out)?;
                Some(Transmit {
                    from: local,
                    to: source,
                    len,
                })
            }
        }
    }

    /// Decides the answer from the attributes we act on; all others are ignored
    /// (RFC 8489 §6.3: known-but-unexpected attributes SHOULD be ignored).
    fn plan(
        &self,
        message: &Message<'_>,
        transport: Transport,
        local: SocketId,
        source: SocketAddr,
    ) -> Result<Plan, Refusal> {
        // RFC 8489 §6.3.1: unknown comprehension-required attributes → 420.
        let mut unknown = [AttributeType(0); MAX_UNKNOWN_LISTED];
        let mut count = 0;
        for t in message
            .unknown_comprehension_required()
            .take(MAX_UNKNOWN_LISTED)
        {
            unknown[count] = t;
            count += 1;
        }
        if count > 0 {
            return Err(Refusal::Unknown(unknown, count));
        }

        let discovery = self.config.sockets.behaviour_discovery();
        let change = match message.get::<ChangeRequest>() {
            None => ChangeRequest::default(),
            Some(Ok(change)) => change,
            Some(Err(_)) => return Err(Refusal::BadRequest),
        };
        let from = SocketId {
            alternate_ip: local.alternate_ip ^ change.change_ip,
            alternate_port: local.alternate_port ^ change.change_port,
        };
        // RFC 5780 §6.1: CHANGE-REQUEST the server cannot honour → 420. On a stream the
        // answer must use the request's connection, so no change can be honoured there.
        let changes = change.change_ip || change.change_port;
        if changes
            && (transport == Transport::Stream || self.config.sockets.address(from).is_none())
        {
            return Err(Refusal::unknown(AttributeType::CHANGE_REQUEST));
        }

        let padding = message.contains::<Padding<'_>>();
        let mut to = source;
        if let Some(port) = message.get::<ResponsePort>() {
            if !discovery {
                return Err(Refusal::unknown(AttributeType::RESPONSE_PORT));
            }
            // RFC 5780 §6.1: RESPONSE-PORT with PADDING → 400.
            match port {
                Ok(ResponsePort(p)) if p != 0 && !padding => {
                    if transport == Transport::Udp {
                        to.set_port(p);
                    }
                }
                _ => return Err(Refusal::BadRequest),
            }
        }
        if padding && !discovery {
            return Err(Refusal::unknown(AttributeType::PADDING));
        }
        Ok(Plan {
            received_on: local,
            from,
            to,
            padding,
        })
    }

    fn write_success(
        &self,
        message: &Message<'_>,
        plan: Plan,
        source: SocketAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        let request = message.header();
        let sockets = &self.config.sockets;
        let discovery = sockets.behaviour_discovery();
        // RFC 5780 §6.1, table 1: OTHER-ADDRESS is Ca:Cp, the opposite of where the request
        // arrived, whatever the flags; only with a second IP (§7.4). With no second port,
        // Cp is the one port there is.
        let other = sockets.alternate_ip.and_then(|_| {
            let here = plan.received_on;
            let id = SocketId {
                alternate_ip: !here.alternate_ip,
                alternate_port: !here.alternate_port,
            };
            sockets.address(id).or_else(|| {
                sockets.address(SocketId {
                    alternate_port: here.alternate_port,
                    ..id
                })
            })
        });
        // Where the response leaves from, when the socket is bound to a specific address.
        let origin = sockets
            .address(plan.from)
            .filter(|a| !a.ip().is_unspecified());

        let mut w = MessageWriter::response(out, request, Class::Success).ok()?;
        if request.is_rfc3489() {
            // RFC 3489 §8.2: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS.
            w.add(&MappedAddress(source)).ok()?;
            if let Some(origin) = origin {
                w.add(&SourceAddress(origin)).ok()?;
            }
            if let Some(other) = other {
                w.add(&ChangedAddress(other)).ok()?;
            }
        } else {
            w.add(&XorMappedAddress(source)).ok()?;
            if discovery {
                // RFC 5780 §6.1: both MAPPED-ADDRESS and XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN,
                // and OTHER-ADDRESS when there is a second IP.
                w.add(&MappedAddress(source)).ok()?;
                if let Some(origin) = origin {
                    w.add(&ResponseOrigin(origin)).ok()?;
                }
                if let Some(other) = other {
                    w.add(&OtherAddress(other)).ok()?;
                }
            }
        }
        if let Some(software) = &self.config.software {
            w.add(&Software(software)).ok()?;
        }
        if plan.padding {
            let len = padding_len(w.len(), message);
            w.add(&Padding(&PADDING_BYTES[..len])).ok()?;
        }
        if message.has_fingerprint() {
            w.add_fingerprint().ok()?;
        }
        Some(w.finish())
    }
}

/// Length of the PADDING value in a response that has `written` bytes so far: the response
/// grows to one MTU (RFC 5780 §7.6) but never beyond the request's own size, so that
/// PADDING cannot turn the server into an amplifier. A client that wants a big padded
/// response pads its request.
fn padding_len(written: usize, request: &Message<'_>) -> usize {
    let fingerprint = if request.has_fingerprint() { 8 } else { 0 };
    let target = request.as_bytes().len().min(PADDED_RESPONSE_MAX);
    target.saturating_sub(written + 4 + fingerprint) & !3
}

/// Writes the error response for `refusal`. The reason phrase is included only when the
/// response stays within the request's size, so that errors never amplify.
fn write_error(message: &Message<'_>, refusal: Refusal, out: &mut [u8]) -> Option<usize> {
    let full = refusal.error_code();
    let len = write_error_with(message, refusal, full, out)?;
    if len <= message.as_bytes().len() {
        return Some(len);
    }
    write_error_with(
        message,
        refusal,
        ErrorCode {
            code: full.code,
            reason: "",
        },
        out,
    )
}

fn write_error_with(
    message: &Message<'_>,
    refusal: Refusal,
    code: ErrorCode<'_>,
    out: &mut [u8],
) -> Option<usize> {
    let mut w = MessageWriter::response(out, message.header(), Class::Error).ok()?;
    w.add(&code).ok()?;
    if let Refusal::Unknown(list, count) = &refusal {
        w.add(&UnknownAttributes::new(&list[..*count])).ok()?;
    }
    if message.has_fingerprint() {
        w.add_fingerprint().ok()?;
    }
    Some(w.finish())
}
