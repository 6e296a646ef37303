//! `--dns-server`, shared by the client commands.

use std::net::{IpAddr, SocketAddr};

/// Where the client commands send their DNS queries.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DnsArgs {
    /// Send every DNS query (NAPTR, SRV, A/AAAA) to this server only, instead of the system's
    /// resolvers: `IP` or `IP:PORT` (`[IPv6]:PORT`), port 53 by default. For tests, and to
    /// debug a zone before it is published.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_dns_server)]
    pub dns_server: Option<SocketAddr>,
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`.
fn parse_dns_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("\"{text}\" is not IP or IP:PORT (write [IPv6]:PORT with a port)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_servers_are_addresses_with_an_optional_port() {
        assert_eq!(
            parse_dns_server("127.0.0.1:5353"),
            Ok(([127, 0, 0, 1], 5353).into())
        );
        assert_eq!(
            parse_dns_server("192.0.2.53"),
            Ok(([192, 0, 2, 53], 53).into())
        );
        assert_eq!(
            parse_dns_server("::1"),
            Ok(SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), 53))
        );
        assert!(parse_dns_server("[::1]:5353").is_ok());
        assert!(parse_dns_server("dns.example.org").is_err());
        assert!(parse_dns_server("127.0.0.1:x").is_err());
    }
}
