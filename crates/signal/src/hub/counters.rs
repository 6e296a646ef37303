//! Running totals of the hub, for metrics: frames received and `error` frames sent by code.
//! Unlike [`super::HubStats`] (what the hub holds now), these only grow.

use crate::error::ErrorCode;

/// Totals since the hub started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubCounters {
    /// Text frames received from known connections (refused ones included).
    pub messages: u64,
    /// `error` frames sent, by code (index in [`ErrorCode::ALL`]).
    pub errors: [u64; ErrorCode::ALL.len()],
}

impl HubCounters {
    /// Counts an `error` frame with `code`.
    pub fn count_error(&mut self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i] += 1;
        }
    }

    /// `error` frames sent with `code`.
    pub fn errors_with(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.errors[i])
    }
}
