//! Every attribute the codec knows, one typed struct each, and [`AnyAttribute`] for callers
//! that walk a message without knowing what is in it.

pub mod address;
pub mod bytes;
pub mod errors;
pub mod numbers;
pub mod password_algorithms;
pub mod text;

pub use address::*;
pub use bytes::*;
pub use errors::*;
pub use numbers::*;
pub use password_algorithms::*;
pub use text::*;

use crate::attribute::{Attribute, AttributeError, AttributeType};
use crate::header::TransactionId;

macro_rules! any_attribute {
    ($( $variant:ident($ty:ty), )*) => {
        /// Any attribute: a known one, typed, or an unknown one, kept as raw bytes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum AnyAttribute<'a> {
            $( $variant($ty), )*
            /// A type this codec does not know, kept so that it can be relayed or reported.
            Unknown { attribute: AttributeType, value: &'a [u8] },
        }

        impl<'a> AnyAttribute<'a> {
            /// Decodes a value of type `attribute`; unknown types become [`AnyAttribute::Unknown`].
            pub fn decode(
                attribute: AttributeType,
                value: &'a [u8],
                tid: &TransactionId,
            ) -> Result<Self, AttributeError> {
                Ok(match attribute {
                    $( <$ty as Attribute<'a>>::TYPE => AnyAttribute::$variant(<$ty>::decode(value, tid)?), )*
                    _ => AnyAttribute::Unknown { attribute, value },
                })
            }

            /// The attribute's type.
            pub fn attribute_type(&self) -> AttributeType {
                match self {
                    $( AnyAttribute::$variant(_) => <$ty as Attribute<'a>>::TYPE, )*
                    AnyAttribute::Unknown { attribute, .. } => *attribute,
                }
            }

            /// Length of the value, before padding.
            pub fn encoded_len(&self) -> usize {
                match self {
                    $( AnyAttribute::$variant(a) => a.encoded_len(), )*
                    AnyAttribute::Unknown { value, .. } => value.len(),
                }
            }

            /// Writes the value into `out` (exactly `encoded_len()` bytes).
            pub fn encode(&self, out: &mut [u8], tid: &TransactionId) {
                match self {
                    $( AnyAttribute::$variant(a) => a.encode(out, tid), )*
                    AnyAttribute::Unknown { value, .. } => out.copy_from_slice(value),
                }
            }
        }
    };
}

any_attribute! {
    MappedAddress(MappedAddress),
    XorMappedAddress(XorMappedAddress),
    XorPeerAddress(XorPeerAddress),
    XorRelayedAddress(XorRelayedAddress),
    AlternateServer(AlternateServer),
    ResponseOrigin(ResponseOrigin),
    OtherAddress(OtherAddress),
    ResponseAddress(ResponseAddress),
    SourceAddress(SourceAddress),
    ChangedAddress(ChangedAddress),
    ReflectedFrom(ReflectedFrom),
    Username(Username<'a>),
    Realm(Realm<'a>),
    Nonce(Nonce<'a>),
    Software(Software<'a>),
    AlternateDomain(AlternateDomain<'a>),
    Priority(Priority),
    IceControlled(IceControlled),
    IceControlling(IceControlling),
    UseCandidate(UseCandidate),
    Lifetime(Lifetime),
    ConnectionId(ConnectionId),
    CacheTimeout(CacheTimeout),
    ChannelNumber(ChannelNumber),
    ResponsePort(ResponsePort),
    RequestedTransport(RequestedTransport),
    RequestedAddressFamily(RequestedAddressFamily),
    AdditionalAddressFamily(AdditionalAddressFamily),
    EvenPort(EvenPort),
    ChangeRequest(ChangeRequest),
    DontFragment(DontFragment),
    Data(Data<'a>),
    Padding(Padding<'a>),
    Password(Password<'a>),
    ReservationToken(ReservationToken),
    Userhash(Userhash),
    MessageIntegrity(MessageIntegrity),
    MessageIntegritySha256(MessageIntegritySha256<'a>),
    Fingerprint(Fingerprint),
    ErrorCode(ErrorCode<'a>),
    AddressErrorCode(AddressErrorCode<'a>),
    UnknownAttributes(UnknownAttributes<'a>),
    Icmp(Icmp),
    PasswordAlgorithm(PasswordAlgorithm<'a>),
    PasswordAlgorithms(PasswordAlgorithms<'a>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every type the registry names is decoded to a typed variant, never to `Unknown`: the
    /// registry and the enum cannot drift apart.
    #[test]
    fn every_known_type_has_a_typed_variant() {
        let tid = TransactionId::default();
        for t in 0..=u16::MAX {
            let typ = AttributeType(t);
            if !typ.is_known() {
                continue;
            }
            // Any decode error is fine here; a result of `Unknown` is not.
            for value in [
                &[][..],
                &[0u8; 4],
                &[0u8; 8],
                &[0u8; 20],
                &[0u8; 32],
                &[0, 1, 0, 0, 1, 2, 3, 4],
            ] {
                if let Ok(AnyAttribute::Unknown { .. }) = AnyAttribute::decode(typ, value, &tid) {
                    panic!("{typ:?} is named but has no typed variant");
                }
            }
        }
    }
}
