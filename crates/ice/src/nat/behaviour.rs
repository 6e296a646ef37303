//! The names of NAT behaviours: RFC 4787's mapping and filtering (as RFC 5780 §4 measures
//! them) and RFC 3489's classic NAT types, derived from them.

use std::fmt;

/// How a NAT maps an internal address to an external one (RFC 4787 §4.1), as RFC 5780 §4.3
/// measures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mapping {
    /// The same mapping for every destination: test II saw the mapped address of test I.
    /// Also the effective mapping when there is no NAT at all.
    EndpointIndependent,
    /// The same mapping for every port of one destination IP, another for another IP: test III
    /// saw the mapped address of test II, which differed from test I.
    AddressDependent,
    /// A new mapping for every destination address and port: tests I, II and III all differ.
    AddressAndPortDependent,
    /// Servers at different IPs saw different mapped addresses, and no RFC 5780 test told
    /// address-dependent from address-and-port-dependent.
    EndpointDependent,
}

impl Mapping {
    /// The RFC 4787 name, as printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mapping::EndpointIndependent => "endpoint-independent",
            Mapping::AddressDependent => "address-dependent",
            Mapping::AddressAndPortDependent => "address-and-port-dependent",
            Mapping::EndpointDependent => "endpoint-dependent",
        }
    }

    /// True for endpoint-independent mapping, the only kind that keeps one public address
    /// for all peers (what ICE needs for server-reflexive candidates to work).
    pub const fn is_endpoint_independent(self) -> bool {
        matches!(self, Mapping::EndpointIndependent)
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which outside packets a NAT lets in through an existing mapping (RFC 4787 §5), as RFC 5780
/// §4.4 measures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Filtering {
    /// Anyone may send to the mapped address: test II (answer from the other IP and port)
    /// came through.
    EndpointIndependent,
    /// Only IPs the client has sent to: test II was filtered, test III (answer from the
    /// server's IP but its other port) came through.
    AddressDependent,
    /// Only the exact addresses and ports the client has sent to: tests II and III were both
    /// filtered.
    AddressAndPortDependent,
}

impl Filtering {
    /// The RFC 4787 name, as printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Filtering::EndpointIndependent => "endpoint-independent",
            Filtering::AddressDependent => "address-dependent",
            Filtering::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

impl fmt::Display for Filtering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classic NAT types of RFC 3489 §5 and §10.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NatType {
    /// No NAT and no filtering: the mapped address is the local one, and test II came through.
    OpenInternet,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// Any endpoint-dependent mapping.
    Symmetric,
    /// No NAT, but a firewall that lets in only answers from where the client sent.
    SymmetricUdpFirewall,
    /// No server answered at all.
    UdpBlocked,
}

impl NatType {
    /// The RFC 3489 name, as printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            NatType::OpenInternet => "open internet",
            NatType::FullCone => "full cone",
            NatType::RestrictedCone => "restricted cone",
            NatType::PortRestrictedCone => "port restricted cone",
            NatType::Symmetric => "symmetric",
            NatType::SymmetricUdpFirewall => "symmetric UDP firewall",
            NatType::UdpBlocked => "UDP blocked",
        }
    }

    /// The RFC 3489 name for what was observed; `None` when the observations do not decide it.
    ///
    /// `answered`: some server answered test I; `behind_nat`: the mapped address differs from
    /// the local one. RFC 3489 §10.1 runs its tests in an order that decides "full cone" on a
    /// test II answer before looking at the mapping; this follows the RFC 3489 §5 definitions
    /// instead, where any endpoint-dependent mapping is "symmetric", and uses the §10.1 order
    /// only when the mapping is unknown.
    pub fn classify(
        answered: bool,
        behind_nat: bool,
        mapping: Option<Mapping>,
        filtering: Option<Filtering>,
    ) -> Option<NatType> {
        if !answered {
            return Some(NatType::UdpBlocked);
        }
        if !behind_nat {
            // RFC 3489 §10.1: not NATed; test II answered → open, else symmetric UDP firewall.
            return filtering.map(|f| match f {
                Filtering::EndpointIndependent => NatType::OpenInternet,
                _ => NatType::SymmetricUdpFirewall,
            });
        }
        match (mapping, filtering) {
            (Some(m), _) if !m.is_endpoint_independent() => Some(NatType::Symmetric),
            (_, Some(Filtering::EndpointIndependent)) => Some(NatType::FullCone),
            (Some(_), Some(Filtering::AddressDependent)) => Some(NatType::RestrictedCone),
            (Some(_), Some(Filtering::AddressAndPortDependent)) => {
                Some(NatType::PortRestrictedCone)
            }
            _ => None,
        }
    }
}

impl fmt::Display for NatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EI: Mapping = Mapping::EndpointIndependent;
    const FEI: Filtering = Filtering::EndpointIndependent;
    const FAD: Filtering = Filtering::AddressDependent;
    const FAPD: Filtering = Filtering::AddressAndPortDependent;

    // RFC 3489 §10.1: the flow chart's six outcomes.
    #[test]
    fn rfc_3489_flow_chart() {
        let classify = NatType::classify;
        assert_eq!(
            classify(false, false, None, None),
            Some(NatType::UdpBlocked)
        );
        assert_eq!(
            classify(true, false, Some(EI), Some(FEI)),
            Some(NatType::OpenInternet)
        );
        assert_eq!(
            classify(true, false, Some(EI), Some(FAPD)),
            Some(NatType::SymmetricUdpFirewall)
        );
        assert_eq!(
            classify(true, true, Some(EI), Some(FEI)),
            Some(NatType::FullCone)
        );
        assert_eq!(
            classify(true, true, Some(EI), Some(FAD)),
            Some(NatType::RestrictedCone)
        );
        assert_eq!(
            classify(true, true, Some(EI), Some(FAPD)),
            Some(NatType::PortRestrictedCone)
        );
        for mapping in [
            Mapping::AddressDependent,
            Mapping::AddressAndPortDependent,
            Mapping::EndpointDependent,
        ] {
            for filtering in [None, Some(FEI), Some(FAD), Some(FAPD)] {
                assert_eq!(
                    classify(true, true, Some(mapping), filtering),
                    Some(NatType::Symmetric)
                );
            }
        }
    }

    #[test]
    fn undecided_without_the_needed_tests() {
        assert_eq!(NatType::classify(true, false, Some(EI), None), None);
        assert_eq!(NatType::classify(true, true, Some(EI), None), None);
        assert_eq!(NatType::classify(true, true, None, Some(FAPD)), None);
        // RFC 3489 §10.1: test II answered → full cone, before the mapping is tested.
        assert_eq!(
            NatType::classify(true, true, None, Some(FEI)),
            Some(NatType::FullCone)
        );
    }
}
