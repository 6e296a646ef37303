//! Reading a server's counters the way an operator does: `GET /metrics` (OpenMetrics text),
//! rather than from its log lines.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Status and body of `GET path` (HTTP/1.1, one request per connection). A `/metrics`
/// answer must say it is OpenMetrics.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    if path == "/metrics" && status == 200 {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
    }
    (status, body.to_owned())
}

/// The samples of a scrape: series (name and labels, as written) → value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// Scrapes `addr` and returns series → value.
pub fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    samples(&body)
}

/// The value of `series` (`name{labels}` exactly as the exposition writes it).
pub fn value(scrape: &BTreeMap<String, f64>, series: &str) -> f64 {
    *scrape
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", scrape.keys()))
}

/// The sum of every series of metric `name` whose labels include all of `labels`
/// (`key="value"` as written), e.g. one direction over all workers.
pub fn sum(scrape: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    scrape
        .iter()
        .filter(|(series, _)| {
            series
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.is_empty())
                && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Scrapes until `series` has `want` (counts are updated by other tasks than the one that
/// answered the client), or fails after a generous deadline.
pub fn wait_for(addr: SocketAddr, series: &str, want: f64) -> BTreeMap<String, f64> {
    wait_until(addr, |s| s.get(series) == Some(&want), series)
}

/// Scrapes until `done` holds for a scrape, or fails after a generous deadline naming
/// `what`.
pub fn wait_until(
    addr: SocketAddr,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
    what: &str,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = scrape(addr);
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what} never reached: {now:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
