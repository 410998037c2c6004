//! What running a unit produced, and how unit outcomes add up to an item's.

use serde::{Deserialize, Serialize};

/// The result of one unit, or of a whole item once all its units are absorbed.
///
/// A split sum-squares item is the sum of its parts: values and durations add, and the item is
/// ok only when every part was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The unit ran to completion without error.
    pub ok: bool,
    /// Worker-clock time spent on it.
    pub duration_s: f64,
    /// sum-squares: the exact sum.
    pub value: u128,
    /// fetch: HTTP status, 0 when there was no response.
    pub status: u32,
    /// fetch: body bytes read.
    pub bytes: u64,
    /// Why it failed; empty when ok.
    pub error: String,
    /// Worker clock: when it started, in seconds after its shard started (the earliest part's,
    /// for an item).
    #[serde(default)]
    pub start_s: f64,
    /// The thread or task (0-based, within its shard) that ran it (the first part's).
    #[serde(default)]
    pub lane: u32,
}

/// A unit's outcome, as workers report it.
pub type UnitOutcome = Outcome;
/// An item's outcome, assembled from its units.
pub type ItemOutcome = Outcome;

impl Outcome {
    /// A failed outcome with its error.
    pub fn failed(error: impl Into<String>, duration_s: f64) -> Self {
        Self {
            ok: false,
            duration_s,
            error: error.into(),
            ..Self::default()
        }
    }

    /// Adds one part of a split item into the item's outcome.
    pub fn absorb(&mut self, part: &Outcome, first: bool) {
        if first {
            *self = part.clone();
            return;
        }
        self.ok &= part.ok;
        self.duration_s += part.duration_s;
        self.value = self.value.wrapping_add(part.value);
        // Untrusted worker input: never let it overflow.
        self.bytes = self.bytes.saturating_add(part.bytes);
        self.status = self.status.max(part.status);
        self.start_s = self.start_s.min(part.start_s);
        if self.error.is_empty() {
            self.error.clone_from(&part.error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_and_any_failure_fails_the_item() {
        let part = |ok, value| Outcome {
            ok,
            duration_s: 0.5,
            value,
            error: if ok { String::new() } else { "boom".into() },
            ..Outcome::default()
        };
        let mut item = Outcome::default();
        item.absorb(&part(true, 10), true);
        item.absorb(&part(true, 5), false);
        assert!(item.ok);
        assert_eq!(item.value, 15);
        assert_eq!(item.duration_s, 1.0);
        item.absorb(&part(false, 0), false);
        assert!(!item.ok);
        assert_eq!(item.error, "boom");
    }
}
