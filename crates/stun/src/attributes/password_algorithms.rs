//! PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS (RFC 8489 §14.11, §14.12, §18.5).

use crate::attribute::{invalid_length, padded_len, Attribute, AttributeError, AttributeType};
use crate::header::TransactionId;

/// A password algorithm number (RFC 8489 §18.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PasswordAlgorithmId(pub u16);

impl PasswordAlgorithmId {
    /// MD5: the key is MD5(username ":" realm ":" password), 16 bytes.
    pub const MD5: PasswordAlgorithmId = PasswordAlgorithmId(0x0001);
    /// SHA-256: the key is SHA-256(username ":" realm ":" password), 32 bytes.
    pub const SHA256: PasswordAlgorithmId = PasswordAlgorithmId(0x0002);
}

/// PASSWORD-ALGORITHM (RFC 8489 §14.12): the algorithm a client chose, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithm<'a> {
    /// The algorithm.
    pub algorithm: PasswordAlgorithmId,
    /// Its parameters; empty for MD5 and SHA-256.
    pub parameters: &'a [u8],
}

impl<'a> Attribute<'a> for PasswordAlgorithm<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHM;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        // The one entry must fill the value: no bytes after its padded parameters.
        match split_algorithm(value) {
            Some((algorithm, padded)) if 4 + padded.len() == value.len() => Ok(algorithm),
            _ => invalid_length(Self::TYPE, value),
        }
    }

    fn encoded_len(&self) -> usize {
        4 + padded_len(self.parameters.len())
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        encode_algorithm(self.algorithm, self.parameters, out);
    }
}

/// Reads one algorithm entry; returns it and the padded parameter bytes it spans.
fn split_algorithm(value: &[u8]) -> Option<(PasswordAlgorithm<'_>, &[u8])> {
    let head = value.get(..4)?;
    let algorithm = PasswordAlgorithmId(u16::from_be_bytes([head[0], head[1]]));
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let padded = value.get(4..4 + padded_len(len))?;
    Some((
        PasswordAlgorithm {
            algorithm,
            parameters: &padded[..len],
        },
        padded,
    ))
}

fn encode_algorithm(algorithm: PasswordAlgorithmId, parameters: &[u8], out: &mut [u8]) -> usize {
    let len = parameters.len();
    out[0..2].copy_from_slice(&algorithm.0.to_be_bytes());
    // Parameters longer than 65535 bytes cannot be expressed; none are defined.
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    out[4..4 + len].copy_from_slice(parameters);
    out[4 + len..4 + padded_len(len)].fill(0);
    4 + padded_len(len)
}

/// PASSWORD-ALGORITHMS (RFC 8489 §14.11): the algorithms a server accepts. Decoded as a view
/// over the wire bytes; built from a list of parameterless algorithms.
#[derive(Debug, Clone, Copy)]
pub struct PasswordAlgorithms<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Wire(&'a [u8]),
    Ids(&'a [PasswordAlgorithmId]),
}

impl<'a> PasswordAlgorithms<'a> {
    /// The list a server advertises, e.g. `[SHA256, MD5]`.
    pub fn new(ids: &'a [PasswordAlgorithmId]) -> Self {
        PasswordAlgorithms(Repr::Ids(ids))
    }

    /// The listed algorithms in order.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm<'a>> + 'a {
        let (mut wire, ids): (&'a [u8], &'a [PasswordAlgorithmId]) = match self.0 {
            Repr::Wire(w) => (w, &[]),
            Repr::Ids(i) => (&[], i),
        };
        std::iter::from_fn(move || {
            let (algorithm, padded) = split_algorithm(wire)?;
            wire = &wire[4 + padded.len()..];
            Some(algorithm)
        })
        .chain(ids.iter().map(|&algorithm| PasswordAlgorithm {
            algorithm,
            parameters: &[],
        }))
    }
}

impl PartialEq for PasswordAlgorithms<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for PasswordAlgorithms<'_> {}

impl<'a> Attribute<'a> for PasswordAlgorithms<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHMS;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        // Walk the entries once so that `iter` never meets a truncated one.
        let mut rest = value;
        while !rest.is_empty() {
            match split_algorithm(rest) {
                Some((_, padded)) => rest = &rest[4 + padded.len()..],
                None => return invalid_length(Self::TYPE, value),
            }
        }
        Ok(PasswordAlgorithms(Repr::Wire(value)))
    }

    fn encoded_len(&self) -> usize {
        self.iter()
            .map(|a| 4 + padded_len(a.parameters.len()))
            .sum()
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        let mut at = 0;
        for a in self.iter() {
            at += encode_algorithm(a.algorithm, a.parameters, &mut out[at..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_round_trip() {
        let tid = TransactionId::default();
        let ids = [PasswordAlgorithmId::SHA256, PasswordAlgorithmId::MD5];
        let list = PasswordAlgorithms::new(&ids);
        let mut out = [0u8; 8];
        list.encode(&mut out, &tid);
        assert_eq!(out, [0, 2, 0, 0, 0, 1, 0, 0]);
        assert_eq!(PasswordAlgorithms::decode(&out, &tid).unwrap(), list);
        assert!(PasswordAlgorithms::decode(&out[..6], &tid).is_err());
        let one = PasswordAlgorithm::decode(&out[..4], &tid).unwrap();
        assert_eq!(one.algorithm, PasswordAlgorithmId::SHA256);
        // RFC 8489 §14.12: one algorithm and its padded parameters, nothing after them.
        assert!(PasswordAlgorithm::decode(&out, &tid).is_err());
    }
}
