//! The NAPTR step of RFC 5928 §3 (S-NAPTR, RFC 3958): which SRV names (or hosts) the records
//! of a TURN server's domain point to, in the order to try them.
//!
//! Pure: the records come in, the SRV queries go out.

use super::Transport;

/// One NAPTR record (RFC 3403 §4.1), the fields S-NAPTR uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Lower first; records of a higher order are used only when none of a lower one fits.
    pub order: u16,
    /// Within one order, lower first.
    pub preference: u16,
    /// `S`: the replacement is an SRV name; `A`: a host name (RFC 3958 §2.2.1).
    pub flags: String,
    /// `RELAY:turn.udp`, `RELAY:turn.tcp` or `RELAY:turn.tls` (RFC 5928 §3, §6).
    pub services: String,
    /// The SRV name, without its trailing dot.
    pub replacement: String,
}

impl std::fmt::Display for NaptrRecord {
    /// `10 50 "S" "RELAY:turn.udp" _turn._udp.example.org`, as in a zone file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} \"{}\" \"{}\" {}",
            self.order, self.preference, self.flags, self.services, self.replacement
        )
    }
}

/// The transport a record's service field names: RFC 5928 §3 registers the application
/// service `RELAY` with the protocols `turn.udp`, `turn.tcp` and `turn.tls`. Case-insensitive
/// (RFC 3958 §6.5).
fn transport_of(services: &str) -> Option<Transport> {
    let (application, protocol) = services.split_once(':')?;
    if !application.eq_ignore_ascii_case("RELAY") {
        return None;
    }
    match protocol.to_ascii_lowercase().as_str() {
        "turn.udp" => Some(Transport::Udp),
        "turn.tcp" => Some(Transport::Tcp),
        "turn.tls" => Some(Transport::Tls),
        // RFC 7350 adds DTLS to RFC 5928's protocols.
        "turn.dtls" => Some(Transport::Dtls),
        _ => None,
    }
}

/// What a NAPTR record leads to (RFC 3958 §2.2.1: the two terminal flags of S-NAPTR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// `S`: SRV records of the replacement.
    Srv,
    /// `A`: the A/AAAA records of the replacement, on the transport's default port.
    Address,
}

/// The next queries, in order, for the transports the client supports: records with the
/// `S` or `A` flag and a `RELAY:turn.*` service, sorted by order then preference (RFC 3403
/// §4.1, RFC 3958 §2.2.1). Records of other services, other flags or unsupported transports
/// are skipped; an empty list means the client falls back to SRV of its own choice.
pub fn next_queries(
    mut records: Vec<NaptrRecord>,
    supported: &[Transport],
) -> Vec<(Transport, String, Lookup)> {
    records.sort_by_key(|r| (r.order, r.preference));
    let mut queries: Vec<(Transport, String, Lookup)> = Vec::new();
    for record in records {
        let lookup = match record.flags.to_ascii_lowercase().as_str() {
            "s" => Lookup::Srv,
            "a" => Lookup::Address,
            _ => continue,
        };
        let Some(transport) = transport_of(&record.services) else {
            continue;
        };
        let query = (transport, record.replacement, lookup);
        if supported.contains(&transport) && !queries.contains(&query) {
            queries.push(query);
        }
    }
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(order: u16, preference: u16, flags: &str, services: &str, to: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            replacement: to.into(),
        }
    }

    const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    // RFC 5928 §4.1 ("Multiple Protocols"): the client uses the records in the order of
    // their order and preference fields.
    #[test]
    fn records_in_order_then_preference() {
        let records = vec![
            naptr(100, 10, "S", "RELAY:turn.tls", "_turns._tcp.example.net"),
            naptr(100, 20, "S", "RELAY:turn.tcp", "_turn._tcp.example.net"),
            naptr(50, 30, "s", "relay:TURN.UDP", "_turn._udp.example.net"),
        ];
        assert_eq!(
            next_queries(records, &ALL),
            vec![
                (
                    Transport::Udp,
                    "_turn._udp.example.net".to_owned(),
                    Lookup::Srv
                ),
                (
                    Transport::Tls,
                    "_turns._tcp.example.net".to_owned(),
                    Lookup::Srv
                ),
                (
                    Transport::Tcp,
                    "_turn._tcp.example.net".to_owned(),
                    Lookup::Srv
                ),
            ]
        );
    }

    // RFC 5928 §3: only the transports the client supports; RFC 3958: other services and
    // flags other than S are not for us.
    #[test]
    fn unsupported_transports_services_and_flags_are_skipped() {
        let records = vec![
            naptr(10, 10, "S", "RELAY:turn.tcp", "_turn._tcp.example.net"),
            naptr(10, 20, "U", "RELAY:turn.udp", "!.*!turn:relay.example.net!"),
            naptr(10, 30, "S", "SIP+D2U", "_sip._udp.example.net"),
            naptr(10, 40, "S", "RELAY:turn.dtls", "_turns._udp.example.net"),
            naptr(10, 50, "S", "RELAY:turn.udp", "_turn._udp.example.net"),
        ];
        assert_eq!(
            next_queries(records, &[Transport::Udp]),
            vec![(
                Transport::Udp,
                "_turn._udp.example.net".to_owned(),
                Lookup::Srv
            )]
        );
    }

    // RFC 3958 §2.2.1: "A" leads to the replacement's addresses, without SRV.
    #[test]
    fn the_a_flag_names_a_host() {
        let records = vec![naptr(10, 10, "A", "RELAY:turn.tcp", "relay.example.net")];
        assert_eq!(
            next_queries(records, &ALL),
            vec![(
                Transport::Tcp,
                "relay.example.net".to_owned(),
                Lookup::Address
            )]
        );
    }
}
