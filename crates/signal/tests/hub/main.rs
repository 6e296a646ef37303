//! Scenario tests of the signaling hub (docs/signaling.md), with a hand-moved clock and a
//! seeded RNG.
#![allow(clippy::unwrap_used)]

mod errors;
mod harness;
mod heartbeat;
mod limits;
mod presence;
mod resume;
mod routing;
mod tokens;
