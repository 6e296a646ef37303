//! Runs a call into the TURN core and then what it asked of the I/O layer: the core never
//! binds or closes a relay socket itself, it queues [`turn::relay::RelayCommand`]s. Each one
//! is executed against the worker's [`RelayRegistry`] at once, and a bind's result goes back
//! to the core ([`TurnServer::relay_opened`]) before the next command is taken, until none is
//! left. An Allocate is thus answered within the call that brought it, as with a synchronous
//! bind: nothing changes on the wire.

use std::time::Instant;

use turn::relay::{ClientOutcome, FiveTuple, TurnServer};
use turn::SocketId;

use crate::server::relay_registry::RelayRegistry;
use crate::server::worker_state::WorkerState;

impl WorkerState {
    /// Runs `call` on the core (with `out`, the buffer for a client's answer), then executes
    /// the commands it queued. Returns `call`'s value, and the answer of an Allocate that
    /// waited for its relay socket ([`ClientOutcome::Nothing`] when none did: only a call
    /// that handles a client's packet starts one).
    pub fn run<T>(
        &mut self,
        now: Instant,
        out: &mut [u8],
        call: impl FnOnce(&mut TurnServer, &mut [u8]) -> T,
    ) -> (T, ClientOutcome) {
        let value = call(&mut self.core, out);
        let answer = execute_commands(&mut self.core, &mut self.relays, now, out);
        (value, answer)
    }

    /// Gives a client's packet to the core (see [`TurnServer::handle_client`]) and executes
    /// what it asked for; the outcome is the Allocate's answer once its relay socket is
    /// bound.
    pub fn handle_client(
        &mut self,
        now: Instant,
        unix_now: u64,
        five_tuple: FiveTuple,
        local: SocketId,
        packet: &[u8],
        out: &mut [u8],
    ) -> ClientOutcome {
        let (outcome, answer) = self.run(now, out, |core, out| {
            core.handle_client(now, unix_now, five_tuple, local, packet, out)
        });
        match answer {
            ClientOutcome::Nothing => outcome,
            answer => answer,
        }
    }
}

/// Drains the core's commands, executing each; returns the last Allocate answer produced by
/// a bind's result.
fn execute_commands(
    core: &mut TurnServer,
    relays: &mut RelayRegistry,
    now: Instant,
    out: &mut [u8],
) -> ClientOutcome {
    let mut answer = ClientOutcome::Nothing;
    while let Some(command) = core.poll_command() {
        if let Some((ticket, result)) = relays.execute(command) {
            match core.relay_opened(now, ticket, result, out) {
                ClientOutcome::Nothing => {}
                outcome => answer = outcome,
            }
        }
    }
    answer
}
