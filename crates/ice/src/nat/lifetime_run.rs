//! The binding-lifetime test (RFC 5780 §4.6) as independent trials, each on a fresh binding.
//!
//! RFC 5780 §4.6 refreshes one binding from "port X" before each wait. Behind a NAT whose
//! timeout depends on a binding's history that measures nothing stable: Linux conntrack
//! keeps a flow that has been active for 2 s for 120 s, and a new one for 30 s, so once a
//! long wait has let the binding expire, the refresh makes a *new* binding and every later
//! wait measures that one (a search that assumes one lifetime then reports 64–66 s where
//! the truth is 120 s warmed and 30 s new). Here every trial binds a fresh socket (a new
//! local port, so a new binding), sends one request to make the binding (and, for the
//! refreshed lifetime, a second one `warm_up` later), stays silent for its wait, and then
//! the probe socket ("port Y") asks the server to answer to the binding's mapped port
//! (RESPONSE-PORT): the answer arrives on the trial's socket if the binding lived.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::config::LifetimeConfig;
use super::lifetime::LifetimeSearch;
use super::report::{BindingAge, Lifetimes, NatSocket, Note, ProbeOutcome, Test};

/// What one trial waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The request that makes the binding is due at this instant.
    Create(Instant),
    /// The refreshing request is due at this instant.
    Refresh(Instant),
    /// The check is due at this instant, for the binding's mapped port.
    Check(Instant, u16),
    /// A probe of this trial is under way.
    Busy,
}

/// One wait tried on one fresh binding.
#[derive(Debug, Clone)]
struct Trial {
    age: BindingAge,
    wait: Duration,
    /// Its [`NatSocket::LifetimeBinding`] number.
    socket: u32,
    phase: Phase,
}

impl Trial {
    fn due(&self) -> Option<Instant> {
        match self.phase {
            Phase::Create(at) | Phase::Refresh(at) | Phase::Check(at, _) => Some(at),
            Phase::Busy => None,
        }
    }
}

/// A probe to start: the test, the socket to send from, and the RESPONSE-PORT to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    pub(crate) test: Test,
    pub(crate) socket: NatSocket,
    pub(crate) response_port: Option<u16>,
}

/// Both lifetime searches, against one server.
#[derive(Debug)]
pub(crate) struct LifetimeRun {
    config: LifetimeConfig,
    /// The server every probe of the test goes to.
    pub(crate) server: SocketAddr,
    new: LifetimeSearch,
    refreshed: LifetimeSearch,
    trials: Vec<Trial>,
    next_socket: u32,
    failed: Option<Note>,
}

impl LifetimeRun {
    /// Starts both searches at `now`.
    pub(crate) fn new(now: Instant, config: LifetimeConfig, server: SocketAddr) -> Self {
        let mut run = LifetimeRun {
            config,
            server,
            new: LifetimeSearch::new(config),
            refreshed: LifetimeSearch::new(config),
            trials: Vec::new(),
            next_socket: 0,
            failed: None,
        };
        run.replan(now);
        run
    }

    fn search(&mut self, age: BindingAge) -> &mut LifetimeSearch {
        match age {
            BindingAge::New => &mut self.new,
            BindingAge::Refreshed => &mut self.refreshed,
        }
    }

    /// Drops the trials whose result no longer matters and adds those the searches want.
    fn replan(&mut self, now: Instant) {
        for age in [BindingAge::New, BindingAge::Refreshed] {
            let search = self.search(age).clone();
            // A trial with a probe under way ends when the probe does.
            self.trials
                .retain(|t| t.age != age || t.phase == Phase::Busy || search.informative(t.wait));
            for wait in search.wanted() {
                if !self.trials.iter().any(|t| t.age == age && t.wait == wait) {
                    self.trials.push(Trial {
                        age,
                        wait,
                        socket: self.next_socket,
                        phase: Phase::Create(now),
                    });
                    self.next_socket += 1;
                }
            }
        }
    }

    /// True once both searches are over (or the test failed) and no trial is left.
    pub(crate) fn is_done(&self) -> bool {
        (self.failed.is_some() && !self.trials.iter().any(|t| t.phase == Phase::Busy))
            || self.trials.is_empty()
    }

    /// When the next probe is due; `None` while only probes under way are awaited.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() {
            return None;
        }
        self.trials.iter().filter_map(Trial::due).min()
    }

    /// The probe to start at `now`, if one is due (the earliest first).
    pub(crate) fn start_due(&mut self, now: Instant) -> Option<Start> {
        if self.failed.is_some() {
            return None;
        }
        let trial = self
            .trials
            .iter_mut()
            .filter(|t| t.due().is_some_and(|at| at <= now))
            .min_by_key(|t| t.due())?;
        let (age, wait) = (trial.age, trial.wait);
        let binding = NatSocket::LifetimeBinding(trial.socket);
        let start = match trial.phase {
            Phase::Create(_) => Start {
                test: Test::LifetimeCreate { age, wait },
                socket: binding,
                response_port: None,
            },
            Phase::Refresh(_) => Start {
                test: Test::LifetimeRefresh { age, wait },
                socket: binding,
                response_port: None,
            },
            Phase::Check(_, port) => Start {
                test: Test::LifetimeCheck { age, wait },
                socket: NatSocket::LifetimeProbe,
                response_port: Some(port),
            },
            Phase::Busy => return None,
        };
        trial.phase = Phase::Busy;
        Some(start)
    }

    /// Takes in how a probe of the test ended, at `now`.
    pub(crate) fn record(&mut self, now: Instant, test: Test, outcome: &ProbeOutcome) {
        let (age, wait) = match test {
            Test::LifetimeCreate { age, wait }
            | Test::LifetimeRefresh { age, wait }
            | Test::LifetimeCheck { age, wait } => (age, wait),
            _ => return,
        };
        let Some(index) = self
            .trials
            .iter()
            .position(|t| t.age == age && t.wait == wait)
        else {
            return;
        };
        let trial = &mut self.trials[index];
        let mapped = outcome.response().map(|r| r.mapped.port());
        match (test, mapped) {
            (Test::LifetimeCreate { .. }, Some(port)) if age == BindingAge::New => {
                trial.phase = Phase::Check(later(now, wait), port);
            }
            (Test::LifetimeCreate { .. }, Some(_)) => {
                trial.phase = Phase::Refresh(later(now, self.config.warm_up));
            }
            (Test::LifetimeRefresh { .. }, Some(port)) => {
                trial.phase = Phase::Check(later(now, wait), port);
            }
            (Test::LifetimeCheck { .. }, _) => {
                let socket = trial.socket;
                self.trials.remove(index);
                // RFC 5780 §4.6: the answer on port X means the binding is alive; on port
                // Y, or none at all, that it has expired.
                let alive = match outcome {
                    ProbeOutcome::Answered { socket: on, .. } => {
                        *on == NatSocket::LifetimeBinding(socket)
                    }
                    ProbeOutcome::NoAnswer { .. } => false,
                    _ => return self.fail(test, outcome),
                };
                self.search(age).record(wait, alive);
                self.replan(now);
            }
            // The server stopped answering the request that makes or refreshes a binding.
            _ => self.fail(test, outcome),
        }
    }

    fn fail(&mut self, test: Test, outcome: &ProbeOutcome) {
        self.failed.get_or_insert(Note::TestFailed {
            test,
            outcome: outcome.clone(),
        });
        self.trials.retain(|t| t.phase == Phase::Busy);
    }

    /// Why the test failed, if it did.
    pub(crate) fn failure(&self) -> Option<&Note> {
        self.failed.as_ref()
    }

    /// The lifetimes found (meaningless if the test failed).
    pub(crate) fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            new: self.new.known(),
            refreshed: self.refreshed.known(),
            warm_up: self.config.warm_up,
        }
    }
}

/// `at + wait`, saturating.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait).unwrap_or(at)
}
