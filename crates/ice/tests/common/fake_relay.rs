//! The TURN server core's relay sockets, faked: a driver that "binds" any free address and
//! runs the core's commands after each call (shared by the ICE test binaries).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use sansio::Core;
use turn::relay::{ClientOutcome, FiveTuple, RelayCommand, RelayOpenError, TurnServer};
use turn::run_loop::{TurnServerHandled, TurnServerInput};
use turn::SocketId;

/// Relay sockets that "bind" anything not bound already.
#[derive(Debug, Default)]
pub struct FakeSockets {
    pub open: BTreeSet<SocketAddr>,
}

impl FakeSockets {
    /// Executes the commands `server` queued, as a driver does after each call, feeding each
    /// bind's result back; returns the answer of an Allocate finished meanwhile.
    pub fn run(&mut self, server: &mut TurnServer, now: Instant, out: &mut [u8]) -> ClientOutcome {
        let mut answer = ClientOutcome::Nothing;
        while let Some(command) = server.poll_command() {
            match command {
                RelayCommand::Open { ticket, addr, .. } => {
                    let result = match self.open.insert(addr.get()) {
                        true => Ok(()),
                        false => Err(RelayOpenError::AddrInUse),
                    };
                    // The bind's result is an input of the run-loop contract (sansio::Core).
                    let input = TurnServerInput::RelayOpened {
                        ticket,
                        result,
                        out: &mut *out,
                    };
                    match server.handle_input(now, input) {
                        TurnServerHandled::Client(ClientOutcome::Nothing) => {}
                        TurnServerHandled::Client(outcome) => answer = outcome,
                        TurnServerHandled::Peer(_) => {
                            unreachable!("a bind is answered as a client's")
                        }
                    }
                }
                RelayCommand::Close(addr) => {
                    assert!(
                        self.open.remove(&addr.get()),
                        "closing {addr}, which is not open"
                    );
                }
                _ => {}
            }
        }
        answer
    }

    /// A client's packet into `server` on the primary listener, then the commands it queued:
    /// the outcome, with an Allocate's answer once its relay socket is bound.
    pub fn serve(
        &mut self,
        server: &mut TurnServer,
        (now, unix_now): (Instant, u64),
        five_tuple: FiveTuple,
        packet: &[u8],
        out: &mut [u8],
    ) -> ClientOutcome {
        let outcome =
            server.handle_client(now, unix_now, five_tuple, SocketId::PRIMARY, packet, out);
        match self.run(server, now, out) {
            ClientOutcome::Nothing => outcome,
            answer => answer,
        }
    }

    /// Fires `server`'s timers due by `now`, running what they ask for.
    pub fn expire(&mut self, server: &mut TurnServer, now: Instant) {
        while server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
            self.run(server, now, &mut []);
        }
    }
}
