//! What a Binding request carries besides its header, and its encoding.

use stun::attributes::{ChangeRequest, Padding, ResponsePort, Software};
use stun::{EncodeError, MessageType, MessageWriter, TransactionId};

/// The largest request a transaction holds: one Ethernet MTU less the IPv4 and UDP headers.
/// Only PADDING (RFC 5780 §7.6) makes a Binding request come near it.
pub const MAX_REQUEST_LEN: usize = 1500 - 28;

/// Zeros to take PADDING values from.
static ZEROS: [u8; MAX_REQUEST_LEN] = [0; MAX_REQUEST_LEN];

/// The attributes of a Binding request. The default is a plain RFC 8489 request with
/// FINGERPRINT and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// CHANGE-REQUEST (RFC 5780 §7.2): ask for the answer from the server's other IP and/or
    /// port. Sent only when a flag is set.
    pub change_request: ChangeRequest,
    /// RESPONSE-PORT (RFC 5780 §7.5): ask for the answer on another port of ours.
    pub response_port: Option<u16>,
    /// Length of a PADDING value (RFC 5780 §7.6) to grow the request, and the answer, by;
    /// 0 sends none.
    pub padding: usize,
    /// SOFTWARE (RFC 8489 §14.14) describing the client; `None` sends none.
    pub software: Option<String>,
    /// Close the request with FINGERPRINT (RFC 8489 §14.7); the server then adds one to its
    /// answer, which tells STUN from other protocols on a shared port.
    pub fingerprint: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            change_request: ChangeRequest::default(),
            response_port: None,
            padding: 0,
            software: None,
            fingerprint: true,
        }
    }
}

impl RequestOptions {
    /// Writes the Binding request into `buf`; returns its length.
    pub fn encode(
        &self,
        transaction_id: TransactionId,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let mut w = MessageWriter::new(buf, MessageType::BINDING_REQUEST, transaction_id)?;
        let change = self.change_request;
        if change.change_ip || change.change_port {
            w.add(&change)?;
        }
        if let Some(port) = self.response_port {
            w.add(&ResponsePort(port))?;
        }
        if let Some(software) = &self.software {
            w.add(&Software(software))?;
        }
        if self.padding > 0 {
            let zeros = ZEROS
                .get(..self.padding)
                .ok_or(EncodeError::BufferTooSmall)?;
            w.add(&Padding(zeros))?;
        }
        if self.fingerprint {
            w.add_fingerprint()?;
        }
        Ok(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun::Message;

    #[test]
    fn default_request_is_header_and_fingerprint() {
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let len = RequestOptions::default()
            .encode(TransactionId([9; 12]), &mut buf)
            .unwrap();
        assert_eq!(len, 20 + 8);
        let message = Message::decode(&buf[..len]).unwrap();
        assert_eq!(message.header().message_type, MessageType::BINDING_REQUEST);
        assert!(message.has_fingerprint());
    }

    // RFC 5780 §7.2, §7.5, §7.6: the behaviour-discovery attributes.
    #[test]
    fn behaviour_discovery_attributes() {
        let options = RequestOptions {
            change_request: ChangeRequest {
                change_ip: true,
                change_port: false,
            },
            response_port: Some(40000),
            padding: 100,
            software: Some("turnpike".into()),
            fingerprint: false,
        };
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let len = options.encode(TransactionId([1; 12]), &mut buf).unwrap();
        let message = Message::decode(&buf[..len]).unwrap();
        assert_eq!(
            message.get::<ChangeRequest>(),
            Some(Ok(options.change_request))
        );
        assert_eq!(message.get::<ResponsePort>(), Some(Ok(ResponsePort(40000))));
        assert_eq!(
            message.get::<Software<'_>>(),
            Some(Ok(Software("turnpike")))
        );
        assert_eq!(
            message.get::<Padding<'_>>().map(|p| p.map(|p| p.0.len())),
            Some(Ok(100))
        );
        assert!(!message.has_fingerprint());
    }

    #[test]
    fn too_much_padding_is_an_error() {
        let options = RequestOptions {
            padding: MAX_REQUEST_LEN,
            ..RequestOptions::default()
        };
        let mut buf = [0u8; MAX_REQUEST_LEN];
        assert_eq!(
            options.encode(TransactionId([1; 12]), &mut buf),
            Err(EncodeError::BufferTooSmall)
        );
    }
}
