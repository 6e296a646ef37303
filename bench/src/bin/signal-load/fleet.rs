//! The server side of a run: one `turnpike serve`, or with `--nodes N` (N > 1) a
//! `redis-server` and N nodes on it (`--redis-url`, `--node-id nI`), whose rooms span nodes.
//! Their CPU time and memory are read per process and summed.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::server::{self, Server, ServerSettings};

/// How long redis-server may take to accept connections.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `redis-server` on a free loopback port without persistence, killed when dropped.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// Its command line, for the report.
    pub command: String,
}

impl Redis {
    /// Starts one and waits until it accepts connections.
    fn start() -> anyhow::Result<Redis> {
        let address = server::free_tcp_port()?;
        let port = address.port().to_string();
        let args = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let child = Command::new("redis-server")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start redis-server (Debian package redis-server; scripts/install-test-deps installs it)")?;
        let mut redis = Redis {
            child,
            url: format!("redis://{address}"),
            command: format!(
                "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no"
            ),
        };
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = redis.child.try_wait()? {
                bail!("redis-server exited at start ({status})");
            }
            if Instant::now() > deadline {
                bail!("redis-server did not accept connections on {address} within {REDIS_START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server-side process whose CPU and memory count.
#[derive(Debug, Clone)]
pub struct Process {
    /// `turnpike`, `turnpike nI` or `redis-server`.
    pub name: String,
    pub pid: u32,
}

/// The nodes (and Redis) of a run.
#[derive(Debug)]
pub struct Fleet {
    /// Dropped first: the nodes stop before Redis goes.
    pub nodes: Vec<Server>,
    pub redis: Option<Redis>,
}

impl Fleet {
    /// One node without Redis for `nodes == 1` (the tool's behaviour before `--nodes`), else a
    /// redis-server and `nodes` nodes on it.
    pub fn start(binary: &Path, settings: ServerSettings, nodes: usize) -> anyhow::Result<Fleet> {
        if nodes <= 1 {
            let node = Server::start(binary, settings, &[], "turnpike")?;
            return Ok(Fleet {
                nodes: vec![node],
                redis: None,
            });
        }
        let redis = Redis::start()?;
        let mut fleet = Fleet {
            nodes: Vec::with_capacity(nodes),
            redis: None,
        };
        for i in 0..nodes {
            let id = format!("n{i}");
            let extra = [
                "--redis-url".into(),
                redis.url.clone(),
                "--node-id".into(),
                id.clone(),
            ];
            fleet.nodes.push(Server::start(
                binary,
                settings,
                &extra,
                &format!("turnpike {id}"),
            )?);
        }
        fleet.redis = Some(redis);
        Ok(fleet)
    }

    /// The signaling WebSocket URL of node `i`.
    pub fn ws_url(&self, i: usize) -> &str {
        &self.nodes[i % self.nodes.len()].ws_url
    }

    /// Every node, then redis-server.
    pub fn processes(&self) -> Vec<Process> {
        let single = self.nodes.len() == 1;
        let mut all: Vec<Process> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Process {
                name: if single {
                    "turnpike".into()
                } else {
                    format!("turnpike n{i}")
                },
                pid: node.pid(),
            })
            .collect();
        if let Some(redis) = &self.redis {
            all.push(Process {
                name: "redis-server".into(),
                pid: redis.child.id(),
            });
        }
        all
    }

    /// Whether every process still runs.
    pub fn running(&mut self) -> bool {
        let redis_up = self
            .redis
            .as_mut()
            .is_none_or(|r| matches!(r.child.try_wait(), Ok(None)));
        redis_up && self.nodes.iter_mut().all(Server::running)
    }

    /// The first node's command line, for the report (the others differ in their ports and
    /// node id).
    pub fn command(&self) -> &str {
        &self.nodes[0].command
    }

    /// redis-server's command line, if there is one.
    pub fn redis_command(&self) -> Option<&str> {
        self.redis.as_ref().map(|r| r.command.as_str())
    }

    /// Lines the nodes logged so far.
    pub fn log_lines(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.log_lines.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// User and system CPU time so far of each of [`Fleet::processes`].
    pub fn cpu_times(&self, clock_ticks: u64) -> anyhow::Result<Vec<(Duration, Duration)>> {
        self.processes()
            .iter()
            .map(|p| server::cpu_times(p.pid, clock_ticks))
            .collect()
    }

    /// `field` (`VmRSS`, `VmHWM`) summed over every process, bytes.
    pub fn memory(&self, field: &str) -> anyhow::Result<u64> {
        self.processes()
            .iter()
            .map(|p| server::memory(p.pid, field))
            .sum()
    }

    /// Open descriptors summed over every process.
    pub fn open_fds(&self) -> Option<usize> {
        self.processes()
            .iter()
            .map(|p| server::open_fds(p.pid))
            .sum()
    }
}
