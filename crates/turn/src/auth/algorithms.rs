//! PASSWORD-ALGORITHMS negotiation (RFC 8489 §9.2.4, §14.11, §14.12).

use stun::attributes::{PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms};
use stun::Message;

/// What the server offers, in order of preference (RFC 8489 §9.2.4: "in preferential
/// order"): SHA-256 first, MD5 for the clients that know nothing else.
pub const ADVERTISED: [PasswordAlgorithmId; 2] =
    [PasswordAlgorithmId::SHA256, PasswordAlgorithmId::MD5];

/// The request does not follow the negotiation rules: answer 400 (Bad Request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch;

/// The algorithm of the request's key, for a NONCE whose cookie has the "Password
/// algorithms" bit set (RFC 8489 §9.2.4, in order):
/// - neither PASSWORD-ALGORITHMS nor PASSWORD-ALGORITHM: MD5, the RFC 5389 behaviour of
///   nearly every deployed client;
/// - otherwise both must be present, PASSWORD-ALGORITHMS must equal [`ADVERTISED`] and
///   PASSWORD-ALGORITHM must be one of its entries, else 400. A malformed value is a 400
///   too (RFC 8489 §6.3.1).
pub fn negotiate(request: &Message<'_>) -> Result<PasswordAlgorithmId, Mismatch> {
    let chosen = request.get::<PasswordAlgorithm<'_>>();
    let offered = request.get::<PasswordAlgorithms<'_>>();
    match (chosen, offered) {
        (None, None) => Ok(PasswordAlgorithmId::MD5),
        (Some(Ok(chosen)), Some(Ok(offered))) => {
            let ours = PasswordAlgorithms::new(&ADVERTISED);
            if offered == ours && ours.iter().any(|a| a == chosen) {
                Ok(chosen.algorithm)
            } else {
                Err(Mismatch)
            }
        }
        _ => Err(Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun::{MessageType, MessageWriter, TransactionId};

    fn request(
        chosen: Option<PasswordAlgorithm<'_>>,
        offered: Option<&[PasswordAlgorithmId]>,
    ) -> Result<PasswordAlgorithmId, Mismatch> {
        let mut buf = [0u8; 128];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([1; 12]),
        )
        .unwrap();
        if let Some(offered) = offered {
            w.add(&PasswordAlgorithms::new(offered)).unwrap();
        }
        if let Some(chosen) = chosen {
            w.add(&chosen).unwrap();
        }
        let len = w.finish();
        negotiate(&Message::decode(&buf[..len]).unwrap())
    }

    fn alg(id: PasswordAlgorithmId) -> Option<PasswordAlgorithm<'static>> {
        Some(PasswordAlgorithm {
            algorithm: id,
            parameters: &[],
        })
    }

    // RFC 8489 §9.2.4, first sub-bullet: neither attribute → processed as MD5.
    #[test]
    fn neither_means_md5() {
        assert_eq!(request(None, None), Ok(PasswordAlgorithmId::MD5));
    }

    // RFC 8489 §9.2.4, second sub-bullet: both present, list as sent, choice in the list.
    #[test]
    fn both_must_match_what_was_sent() {
        use PasswordAlgorithmId as Id;
        assert_eq!(request(alg(Id::SHA256), Some(&ADVERTISED)), Ok(Id::SHA256));
        assert_eq!(request(alg(Id::MD5), Some(&ADVERTISED)), Ok(Id::MD5));
        assert_eq!(request(alg(Id::SHA256), None), Err(Mismatch));
        assert_eq!(request(None, Some(&ADVERTISED)), Err(Mismatch));
        assert_eq!(
            request(alg(Id::SHA256), Some(&[Id::MD5, Id::SHA256])),
            Err(Mismatch),
            "order is part of the value"
        );
        assert_eq!(request(alg(Id::MD5), Some(&[Id::MD5])), Err(Mismatch));
        assert_eq!(request(alg(Id(7)), Some(&ADVERTISED)), Err(Mismatch));
        let with_parameters = Some(PasswordAlgorithm {
            algorithm: Id::SHA256,
            parameters: &[1, 2, 3, 4],
        });
        assert_eq!(request(with_parameters, Some(&ADVERTISED)), Err(Mismatch));
    }
}
