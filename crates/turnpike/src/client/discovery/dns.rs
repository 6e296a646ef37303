//! The DNS queries of server discovery: hickory-resolver with the system's configuration,
//! or only the server given by `--dns-server`.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Name, ResolveError, TokioResolver};

use super::naptr::NaptrRecord;
use super::srv::SrvRecord;

/// The answer to one NAPTR or SRV query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// The records found.
    Records(Vec<T>),
    /// The name has no record of this type (NXDOMAIN or an empty answer).
    None,
    /// The query failed (timeout, SERVFAIL, no resolver configured): the client goes on as
    /// if there were no records, and says so.
    Failed(String),
}

/// The queries discovery makes; [`Dns`] asks real servers, tests answer from a table.
#[allow(async_fn_in_trait)]
pub trait Lookups {
    /// NAPTR records of `name`.
    async fn naptr(&self, name: &str) -> Answer<NaptrRecord>;
    /// SRV records of `name`.
    async fn srv(&self, name: &str) -> Answer<SrvRecord>;
    /// The addresses of `host` (A and AAAA), with `port`.
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String>;
}

/// The shortest wait for one answer: a loopback or LAN server answers well within it.
const MIN_QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest: past it, a resolver is not going to answer.
const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The DNS client of the client commands.
#[derive(Debug)]
pub struct Dns {
    /// `--dns-server`: every query goes there, A/AAAA too.
    server: Option<SocketAddr>,
    /// How long one query to a DNS server may take.
    timeout: Duration,
    /// How long the system's address lookup may take, as before discovery: all of it.
    budget: Duration,
    /// Built on first use: a URI with an IP or a port never reads the system configuration.
    resolver: OnceLock<Result<TokioResolver, String>>,
}

impl Dns {
    /// A client for `server` (`--dns-server`), or the system's resolvers with `None`, whose
    /// whole resolution should fit in `budget`.
    pub fn new(server: Option<SocketAddr>, budget: Duration) -> Dns {
        Dns {
            server,
            // A third of the budget per query: a NAPTR or SRV query that times out still
            // leaves time for the fallback to the host's addresses (RFC 5928 §3).
            timeout: (budget / 3).clamp(MIN_QUERY_TIMEOUT, MAX_QUERY_TIMEOUT),
            budget,
            resolver: OnceLock::new(),
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, String> {
        self.resolver
            .get_or_init(|| self.build())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build(&self) -> Result<TokioResolver, String> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match self.server {
            Some(server) => {
                let servers =
                    NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
                let config = ResolverConfig::from_parts(None, Vec::new(), servers);
                TokioResolver::builder_with_config(config, provider)
            }
            None => TokioResolver::builder(provider)
                .map_err(|e| format!("no system DNS configuration: {e}"))?,
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = self.timeout;
        options.attempts = 1;
        Ok(builder.build())
    }

    async fn records(&self, name: &str, kind: RecordType) -> Answer<RData> {
        let resolver = match self.resolver() {
            Ok(resolver) => resolver,
            Err(error) => return Answer::Failed(error),
        };
        // Fully qualified: no search domain is appended to a service name.
        let Ok(fqdn) = Name::from_ascii(format!("{name}.")) else {
            return Answer::Failed(format!("{name} is not a DNS name"));
        };
        match resolver.lookup(fqdn, kind).await {
            Ok(lookup) => Answer::Records(lookup.record_iter().map(|r| r.data().clone()).collect()),
            Err(error) if is_empty(&error) => Answer::None,
            Err(error) => Answer::Failed(error.to_string()),
        }
    }
}

fn is_empty(error: &ResolveError) -> bool {
    error.is_no_records_found() || error.is_nx_domain()
}

/// A name as the records and the steps show it: without its trailing dot.
fn bare(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_owned()
}

impl Lookups for Dns {
    async fn naptr(&self, name: &str) -> Answer<NaptrRecord> {
        map(
            self.records(name, RecordType::NAPTR).await,
            |data| match data {
                RData::NAPTR(naptr) => Some(NaptrRecord {
                    order: naptr.order(),
                    preference: naptr.preference(),
                    flags: String::from_utf8_lossy(naptr.flags()).into_owned(),
                    services: String::from_utf8_lossy(naptr.services()).into_owned(),
                    replacement: bare(naptr.replacement()),
                }),
                _ => None,
            },
        )
    }

    async fn srv(&self, name: &str) -> Answer<SrvRecord> {
        map(
            self.records(name, RecordType::SRV).await,
            |data| match data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority(),
                    weight: srv.weight(),
                    port: srv.port(),
                    target: bare(srv.target()),
                }),
                _ => None,
            },
        )
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        // Without --dns-server, the system's getaddrinfo as before discovery existed:
        // /etc/hosts, nsswitch and the address order of RFC 6724 apply.
        if self.server.is_none() {
            let found = tokio::time::timeout(self.budget, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| "no answer".to_owned())?
                .map_err(|e| e.to_string())?;
            return Ok(found.collect());
        }
        let resolver = self.resolver()?;
        let fqdn = Name::from_ascii(format!("{}.", host.trim_end_matches('.')))
            .map_err(|_| format!("{host} is not a DNS name"))?;
        match resolver.lookup_ip(fqdn).await {
            Ok(found) => Ok(found.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
            Err(error) if is_empty(&error) => Ok(Vec::new()),
            Err(error) => Err(error.to_string()),
        }
    }
}

fn map<T>(answer: Answer<RData>, convert: impl Fn(RData) -> Option<T>) -> Answer<T> {
    match answer {
        Answer::Records(records) => {
            let records: Vec<T> = records.into_iter().filter_map(convert).collect();
            if records.is_empty() {
                Answer::None
            } else {
                Answer::Records(records)
            }
        }
        Answer::None => Answer::None,
        Answer::Failed(error) => Answer::Failed(error),
    }
}
