//! The hub under the run-loop contract ([`sansio::Core`]) that every protocol core of
//! Turnpike follows: what happens to a WebSocket is an input, the frames to send and the
//! connections to close are its transmits. The hub has no event of its own: everything it
//! has to say is a frame or a close.

use std::convert::Infallible;
use std::time::Instant;

use sansio::Core;

use crate::config::IceSource;
use crate::hub::Hub;
use crate::output::{ConnId, Output};

/// What happened to one WebSocket, for [`Hub`] as a [`Core`].
#[derive(Debug)]
pub enum HubInput<'a> {
    /// It opened ([`Hub::connect`]); `ice` is where its `joined` gets its ICE servers.
    Connected {
        /// The connection.
        conn: ConnId,
        /// Its ICE servers' source.
        ice: IceSource,
    },
    /// A text frame arrived ([`Hub::handle_text`]); `unix_now` is wall-clock seconds.
    Text {
        /// The connection.
        conn: ConnId,
        /// The frame.
        text: &'a str,
        /// Wall-clock seconds, for token expiry.
        unix_now: u64,
    },
    /// It closed, or the I/O layer dropped it as a slow consumer ([`Hub::disconnect`]).
    Closed {
        /// The connection.
        conn: ConnId,
    },
}

impl Core for Hub {
    type Input<'a> = HubInput<'a>;
    type Handled<'a> = ();
    type Transmit<'a> = Output;
    type Event = Infallible;

    fn handle_input<'a>(&mut self, now: Instant, input: HubInput<'a>)
    where
        Self: 'a,
    {
        match input {
            HubInput::Connected { conn, ice } => self.connect(now, conn, ice),
            HubInput::Text {
                conn,
                text,
                unix_now,
            } => self.handle_text(now, unix_now, conn, text),
            HubInput::Closed { conn } => self.disconnect(now, conn),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        Hub::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Hub::poll_timeout(self)
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<Output> {
        self.poll_output()
    }

    fn poll_event(&mut self) -> Option<Infallible> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HubConfig, IceConfig};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::value::RawValue;

    fn ice() -> IceSource {
        let servers = RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| unreachable!());
        IceConfig { servers, ttl: 1 }.into()
    }

    /// What the hub sends through the contract's transmits.
    fn sent(hub: &mut Hub, now: Instant) -> Vec<Output> {
        std::iter::from_fn(|| Core::poll_transmit(hub, now)).collect()
    }

    // A WebSocket's life through the contract: opened, `join`, a second peer, closed; the
    // frames come out as transmits, and the hub has no events.
    #[test]
    fn a_websockets_life_through_the_contract() {
        let now = Instant::now();
        let mut hub = Hub::new(HubConfig::default(), Box::new(StdRng::seed_from_u64(3)));
        let join = r#"{"type":"join","room":"r"}"#;
        for conn in [1, 2] {
            hub.handle_input(now, HubInput::Connected { conn, ice: ice() });
            let text = HubInput::Text {
                conn,
                text: join,
                unix_now: 0,
            };
            hub.handle_input(now, text);
        }
        let frames = sent(&mut hub, now);
        let kinds: Vec<(ConnId, String)> = frames
            .iter()
            .map(|o| match o {
                Output::Send { conn, text } => {
                    let v: serde_json::Value =
                        serde_json::from_str(text).unwrap_or_else(|_| unreachable!());
                    (*conn, v["type"].as_str().unwrap_or_default().to_owned())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let expected = [(1, "joined"), (2, "joined"), (1, "peer-joined")];
        let expected: Vec<(ConnId, String)> = expected
            .iter()
            .map(|(c, t)| (*c, (*t).to_owned()))
            .collect();
        assert_eq!(kinds, expected);
        assert!(Core::poll_event(&mut hub).is_none());
        // The silence timeout is the hub's timer.
        assert!(Core::poll_timeout(&hub).is_some());
        hub.handle_input(now, HubInput::Closed { conn: 2 });
        assert_eq!(
            hub.stats().away,
            1,
            "the closed peer is in its grace window"
        );
    }
}
