//! Running the plan: the queries in RFC 5928 §3 / RFC 8489 §8 order, each one recorded, to
//! the list of addresses to try.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::dns::{Answer, Lookups};
use super::naptr::{next_queries, Lookup};
use super::plan::{default_port, fallback_transport, plan, srv_names, Plan, ServerName};
use super::srv::{order, SrvRecord};
use super::Transport;

/// One query and what it returned, for `turnpike check` and debug logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsStep {
    /// `NAPTR example.org`, `SRV _turn._udp.example.org`, `A/AAAA relay.example.org`.
    pub query: String,
    /// The records, in the order they will be used, or why there are none.
    pub answer: String,
    /// The query failed (rather than having no records).
    pub failed: bool,
    /// How long it took.
    pub took: Duration,
}

impl fmt::Display for DnsStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.query, self.answer)
    }
}

/// One address to try, with how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The transport its record is for.
    pub transport: Transport,
    /// The address and port.
    pub address: SocketAddr,
    /// The host name (SRV target) or literal the address came from.
    pub host: String,
}

/// The queries made and the addresses found, in the order to try them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Every query, in order.
    pub steps: Vec<DnsStep>,
    /// The addresses, in the order to try them (a client moves to the next on failure).
    pub candidates: Vec<Candidate>,
}

impl Resolution {
    fn step(&mut self, started: Instant, query: String, answer: String, failed: bool) {
        tracing::debug!(%query, %answer, failed, "DNS");
        self.steps.push(DnsStep {
            query,
            answer,
            failed,
            took: started.elapsed(),
        });
    }

    /// The first address that `wanted` accepts of each target (an SRV target and port), in
    /// order: a client that moves on when a server is silent tries the next target rather
    /// than another address of the same host.
    pub fn first_per_target(&self, wanted: impl Fn(&SocketAddr) -> bool) -> Vec<SocketAddr> {
        let mut targets: Vec<(&str, u16)> = Vec::new();
        let mut addresses = Vec::new();
        for candidate in &self.candidates {
            let target = (candidate.host.as_str(), candidate.address.port());
            if wanted(&candidate.address) && !targets.contains(&target) {
                targets.push(target);
                addresses.push(candidate.address);
            }
        }
        addresses
    }

    /// Why there is no candidate: the last step, named when there were several (a single
    /// A/AAAA lookup says only its error, as before discovery).
    pub fn error(&self) -> String {
        match self.steps.as_slice() {
            [] => "no address".to_owned(),
            [only] => only.answer.clone(),
            [.., last] => last.to_string(),
        }
    }
}

/// Resolves `name` for a client that speaks `supported` (in its order of preference), with
/// the system's random source for SRV weights.
pub async fn resolve(dns: &impl Lookups, name: &ServerName, supported: &[Transport]) -> Resolution {
    // RFC 2782: a uniform number from 0 to the sum of the weights, inclusive.
    let mut draw = |total: u32| rand::thread_rng().gen_range(0..=total);
    resolve_with(dns, name, supported, &mut draw).await
}

/// [`resolve`] with the random source of SRV weights given.
pub async fn resolve_with(
    dns: &impl Lookups,
    name: &ServerName,
    supported: &[Transport],
    draw: &mut impl FnMut(u32) -> u32,
) -> Resolution {
    let mut resolution = Resolution::default();
    let queries = match plan(name, supported) {
        Plan::Literal(transport, address) => {
            resolution.step(
                Instant::now(),
                "address".into(),
                format!("{} (IP literal)", address.ip()),
                false,
            );
            resolution.candidates.push(Candidate {
                transport,
                address,
                host: name.host.clone(),
            });
            return resolution;
        }
        Plan::Addresses(transport, host, port) => {
            addresses(dns, &mut resolution, transport, &host, port).await;
            return resolution;
        }
        Plan::Naptr => naptr(dns, &mut resolution, name, supported).await,
        Plan::Srv(queries) => srv_only(queries),
    };
    let mut srv_found = false;
    for (transport, query, lookup) in queries {
        srv_found |= match lookup {
            Lookup::Srv => srv(dns, &mut resolution, transport, &query, draw).await,
            Lookup::Address => {
                // RFC 3958 §2.2.1: an "A" record names the host; the port is the default.
                let port = default_port(transport);
                addresses(dns, &mut resolution, transport, &query, port).await;
                true
            }
        };
    }
    if !srv_found {
        // RFC 5928 §3, RFC 8489 §8: no SRV record: the host's A/AAAA and the default port.
        let transport = fallback_transport(name, supported);
        addresses(
            dns,
            &mut resolution,
            transport,
            &name.host,
            default_port(transport),
        )
        .await;
    }
    resolution
}

fn srv_only(queries: Vec<(Transport, String)>) -> Vec<(Transport, String, Lookup)> {
    queries
        .into_iter()
        .map(|(transport, name)| (transport, name, Lookup::Srv))
        .collect()
}

/// The NAPTR step (RFC 5928 §3): the SRV names (or hosts) its records point to, or the SRV
/// names of the supported transports when it has none for us.
async fn naptr(
    dns: &impl Lookups,
    resolution: &mut Resolution,
    name: &ServerName,
    supported: &[Transport],
) -> Vec<(Transport, String, Lookup)> {
    let started = Instant::now();
    let query = format!("NAPTR {}", name.host);
    let (answer, failed, queries) = match dns.naptr(&name.host).await {
        Answer::Records(records) => {
            let listed: Vec<String> = records.iter().map(ToString::to_string).collect();
            let queries = next_queries(records, supported);
            let used = if queries.is_empty() {
                "none for RELAY:turn.* with a supported transport".to_owned()
            } else {
                let names: Vec<&str> = queries.iter().map(|(_, n, _)| n.as_str()).collect();
                format!("using {}", names.join(", "))
            };
            (format!("{}; {used}", listed.join("; ")), false, queries)
        }
        Answer::None => ("no records".to_owned(), false, Vec::new()),
        Answer::Failed(error) => (error, true, Vec::new()),
    };
    resolution.step(started, query, answer, failed);
    if queries.is_empty() {
        srv_only(srv_names(name, supported))
    } else {
        queries
    }
}

/// One SRV query and the addresses of its targets, in RFC 2782 order. True when the name
/// has SRV records (even a "." that declines the service: no fallback to A/AAAA then).
async fn srv(
    dns: &impl Lookups,
    resolution: &mut Resolution,
    transport: Transport,
    query: &str,
    draw: &mut impl FnMut(u32) -> u32,
) -> bool {
    let started = Instant::now();
    let step = format!("SRV {query}");
    let records = match dns.srv(query).await {
        Answer::Records(records) => records,
        Answer::None => {
            resolution.step(started, step, "no records".into(), false);
            return false;
        }
        Answer::Failed(error) => {
            resolution.step(started, step, error, true);
            return false;
        }
    };
    if SrvRecord::is_not_available(&records) {
        resolution.step(
            started,
            step,
            "\".\": the service is not offered here".into(),
            false,
        );
        return true;
    }
    let ordered = order(records, draw);
    let listed: Vec<String> = ordered.iter().map(ToString::to_string).collect();
    resolution.step(started, step, listed.join(", "), false);
    for record in ordered {
        addresses(dns, resolution, transport, &record.target, record.port).await;
    }
    true
}

/// The A/AAAA step for `host`; its addresses become candidates.
async fn addresses(
    dns: &impl Lookups,
    resolution: &mut Resolution,
    transport: Transport,
    host: &str,
    port: u16,
) {
    let started = Instant::now();
    let query = format!("A/AAAA {host}");
    match dns.addresses(host, port).await {
        Ok(found) if found.is_empty() => resolution.step(started, query, "no address".into(), true),
        Ok(found) => {
            let listed: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
            resolution.step(
                started,
                query,
                format!("{} (port {port}, {})", listed.join(", "), transport.name()),
                false,
            );
            resolution
                .candidates
                .extend(found.into_iter().map(|address| Candidate {
                    transport,
                    address,
                    host: host.to_owned(),
                }));
        }
        Err(error) => resolution.step(started, query, error, true),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::super::naptr::NaptrRecord;
    use super::super::plan::Service;
    use super::*;

    /// A zone in a table: no DNS, no network.
    #[derive(Default)]
    struct Zone {
        naptr: HashMap<String, Vec<NaptrRecord>>,
        srv: HashMap<String, Vec<SrvRecord>>,
        hosts: HashMap<String, Vec<std::net::IpAddr>>,
        /// Names whose queries time out.
        broken: Vec<String>,
    }

    impl Zone {
        fn answer<T: Clone>(&self, table: &HashMap<String, Vec<T>>, name: &str) -> Answer<T> {
            if self.broken.iter().any(|b| b == name) {
                return Answer::Failed("request timed out".into());
            }
            table
                .get(name)
                .map_or(Answer::None, |r| Answer::Records(r.clone()))
        }
    }

    impl Lookups for Zone {
        async fn naptr(&self, name: &str) -> Answer<NaptrRecord> {
            self.answer(&self.naptr, name)
        }
        async fn srv(&self, name: &str) -> Answer<SrvRecord> {
            self.answer(&self.srv, name)
        }
        async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
            let ips = self.hosts.get(host).cloned().unwrap_or_default();
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect())
        }
    }

    fn zone() -> Zone {
        let mut zone = Zone::default();
        zone.hosts
            .insert("example.net".into(), vec!["192.0.2.1".parse().unwrap()]);
        zone.hosts
            .insert("a.example.net".into(), vec!["192.0.2.10".parse().unwrap()]);
        zone.hosts.insert(
            "b.example.net".into(),
            vec![
                "192.0.2.20".parse().unwrap(),
                "2001:db8::20".parse().unwrap(),
            ],
        );
        zone
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn name(service: Service, transport: Option<Transport>) -> ServerName {
        ServerName {
            service,
            host: "example.net".into(),
            port: None,
            transport,
        }
    }

    fn run(zone: &Zone, name: &ServerName, supported: &[Transport]) -> Resolution {
        let mut draw = |_| 0;
        let resolution = resolve_with(zone, name, supported, &mut draw);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(resolution)
    }

    fn addresses(resolution: &Resolution) -> Vec<String> {
        resolution
            .candidates
            .iter()
            .map(|c| format!("{} {}", c.transport.name(), c.address))
            .collect()
    }

    // RFC 5928 §3 / RFC 8489 §8: no SRV record → A/AAAA of the host with the default port.
    #[test]
    fn without_srv_records_the_host_and_default_port() {
        let zone = zone();
        let stun = run(
            &zone,
            &name(Service::Stun, Some(Transport::Udp)),
            &[Transport::Udp],
        );
        assert_eq!(addresses(&stun), ["udp 192.0.2.1:3478"]);
        assert_eq!(stun.steps[0].query, "SRV _stun._udp.example.net");
        assert_eq!(stun.steps[1].query, "A/AAAA example.net");
        let stuns = run(
            &zone,
            &name(Service::Stun, Some(Transport::Tls)),
            &[Transport::Tls],
        );
        assert_eq!(addresses(&stuns), ["tls 192.0.2.1:5349"]);
        // turn: without transport: NAPTR, then SRV of every supported transport, then A.
        let all = [Transport::Udp, Transport::Tcp];
        let turn = run(&zone, &name(Service::Turn, None), &all);
        let queries: Vec<&str> = turn.steps.iter().map(|s| s.query.as_str()).collect();
        assert_eq!(
            queries,
            [
                "NAPTR example.net",
                "SRV _turn._udp.example.net",
                "SRV _turn._tcp.example.net",
                "A/AAAA example.net"
            ]
        );
        assert_eq!(addresses(&turn), ["udp 192.0.2.1:3478"]);
    }

    // A NAPTR or SRV query that fails is shown as failed, and the client goes on as if there
    // were no records: down to the host's addresses (RFC 5928 §3).
    #[test]
    fn failed_queries_fall_back_to_the_host() {
        let mut zone = zone();
        zone.broken = vec!["example.net".into(), "_turn._udp.example.net".into()];
        let resolution = run(&zone, &name(Service::Turn, None), &[Transport::Udp]);
        let failed: Vec<bool> = resolution.steps.iter().map(|s| s.failed).collect();
        assert_eq!(failed, [true, true, false]);
        assert_eq!(resolution.steps[0].answer, "request timed out");
        assert_eq!(addresses(&resolution), ["udp 192.0.2.1:3478"]);
    }

    // RFC 2782: targets by priority, each target's addresses in turn, with the SRV's port.
    #[test]
    fn srv_targets_in_priority_order() {
        let mut zone = zone();
        zone.srv.insert(
            "_stun._udp.example.net".into(),
            vec![
                srv(20, 0, 4000, "b.example.net"),
                srv(10, 0, 3000, "a.example.net"),
            ],
        );
        let resolution = run(
            &zone,
            &name(Service::Stun, Some(Transport::Udp)),
            &[Transport::Udp],
        );
        assert_eq!(
            addresses(&resolution),
            [
                "udp 192.0.2.10:3000",
                "udp 192.0.2.20:4000",
                "udp [2001:db8::20]:4000"
            ]
        );
        assert_eq!(
            resolution.first_per_target(|_| true),
            [
                "192.0.2.10:3000".parse().unwrap(),
                "192.0.2.20:4000".parse().unwrap()
            ]
        );
        assert_eq!(
            resolution.first_per_target(SocketAddr::is_ipv6),
            ["[2001:db8::20]:4000".parse().unwrap()]
        );
        assert_eq!(
            resolution.steps[0].to_string(),
            "SRV _stun._udp.example.net: a.example.net:3000 (priority 10, weight 0), \
             b.example.net:4000 (priority 20, weight 0)"
        );
    }

    // RFC 5928 §3: NAPTR records choose the transports and their order; S → SRV.
    #[test]
    fn naptr_leads_to_srv() {
        let mut zone = zone();
        zone.naptr.insert(
            "example.net".into(),
            vec![
                NaptrRecord {
                    order: 10,
                    preference: 20,
                    flags: "S".into(),
                    services: "RELAY:turn.udp".into(),
                    replacement: "_turn._udp.example.net".into(),
                },
                NaptrRecord {
                    order: 10,
                    preference: 10,
                    flags: "S".into(),
                    services: "RELAY:turn.tcp".into(),
                    replacement: "_turn._tcp.example.net".into(),
                },
            ],
        );
        zone.srv.insert(
            "_turn._udp.example.net".into(),
            vec![srv(0, 0, 3478, "a.example.net")],
        );
        zone.srv.insert(
            "_turn._tcp.example.net".into(),
            vec![srv(0, 0, 443, "a.example.net")],
        );
        let resolution = run(
            &zone,
            &name(Service::Turn, None),
            &[Transport::Udp, Transport::Tcp],
        );
        assert_eq!(
            addresses(&resolution),
            ["tcp 192.0.2.10:443", "udp 192.0.2.10:3478"]
        );
        // A client that speaks UDP only skips the TCP record.
        let resolution = run(&zone, &name(Service::Turn, None), &[Transport::Udp]);
        assert_eq!(addresses(&resolution), ["udp 192.0.2.10:3478"]);
    }

    // RFC 3958 §2.2.1: an "A" NAPTR record names a host, used on the default port.
    #[test]
    fn naptr_a_records_name_a_host_on_the_default_port() {
        let mut zone = zone();
        zone.naptr.insert(
            "example.net".into(),
            vec![NaptrRecord {
                order: 10,
                preference: 10,
                flags: "A".into(),
                services: "RELAY:turn.tls".into(),
                replacement: "a.example.net".into(),
            }],
        );
        let all = [Transport::Udp, Transport::Tcp, Transport::Tls];
        let resolution = run(&zone, &name(Service::Turn, None), &all);
        assert_eq!(addresses(&resolution), ["tls 192.0.2.10:5349"]);
    }

    // RFC 2782: "." declines the service: no fallback to the host's address.
    #[test]
    fn a_declined_service_has_no_candidate() {
        let mut zone = zone();
        zone.srv
            .insert("_stun._udp.example.net".into(), vec![srv(0, 0, 0, ".")]);
        let resolution = run(
            &zone,
            &name(Service::Stun, Some(Transport::Udp)),
            &[Transport::Udp],
        );
        assert!(resolution.candidates.is_empty());
        assert!(
            resolution.error().contains("not offered"),
            "{}",
            resolution.error()
        );
    }

    // RFC 5928 §3: an explicit port or an IP literal: no NAPTR, no SRV.
    #[test]
    fn explicit_ports_and_literals_query_nothing_else() {
        let zone = zone();
        let mut with_port = name(Service::Turn, None);
        with_port.port = Some(8000);
        let resolution = run(&zone, &with_port, &[Transport::Udp]);
        assert_eq!(resolution.steps.len(), 1);
        assert_eq!(addresses(&resolution), ["udp 192.0.2.1:8000"]);
        let mut literal = name(Service::Turn, Some(Transport::Tcp));
        literal.host = "192.0.2.99".into();
        let resolution = run(&zone, &literal, &[Transport::Tcp]);
        assert_eq!(addresses(&resolution), ["tcp 192.0.2.99:3478"]);
        assert_eq!(resolution.steps[0].answer, "192.0.2.99 (IP literal)");
    }
}
