//! The order in which a client tries the targets of an SRV answer (RFC 2782, "Usage rules"):
//! lowest priority first; within one priority, a weighted random order.
//!
//! Pure: the random source is a parameter, so tests choose what it draws.

/// One SRV record (RFC 2782): where a service is, and how much of the load it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Within one priority, the share of clients that try this target first.
    pub weight: u16,
    /// The port of the service on the target.
    pub port: u16,
    /// The target host name, without its trailing dot.
    pub target: String,
}

impl SrvRecord {
    /// RFC 2782: a single record whose target is "." says the service is decidedly not
    /// available at this domain.
    pub fn is_not_available(records: &[SrvRecord]) -> bool {
        matches!(records, [only] if only.target.is_empty() || only.target == ".")
    }
}

impl std::fmt::Display for SrvRecord {
    /// `relay.example.org:3478 (priority 10, weight 60)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} (priority {}, weight {})",
            self.target, self.port, self.priority, self.weight
        )
    }
}

/// The records in the order to try them. `draw(total)` returns a number from 0 to `total`
/// inclusive, uniformly (RFC 2782's "random number between 0 and the sum").
///
/// RFC 2782: order the records of the lowest priority not yet ordered; put the weight-0
/// ones first, draw a number from 0 to the sum of the weights, pick the first record whose
/// running sum is at least that number, remove it and draw again among the rest.
pub fn order(mut records: Vec<SrvRecord>, draw: &mut impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    if SrvRecord::is_not_available(&records) {
        return Vec::new();
    }
    // A stable sort keeps the answer's order within a priority, so equal draws are repeatable.
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.priority == group[0].priority) {
            group.push(next);
        }
        // Weight 0 records first: they are picked only when the draw is 0.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let drawn = draw(total).min(total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= drawn
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 3478,
            target: target.into(),
        }
    }

    fn targets(records: &[SrvRecord]) -> Vec<&str> {
        records.iter().map(|r| r.target.as_str()).collect()
    }

    // RFC 2782: "A client MUST attempt to contact the target host with the lowest-numbered
    // priority it can reach".
    #[test]
    fn lower_priority_first_whatever_the_weights() {
        let records = vec![srv(20, 100, "b"), srv(10, 0, "a"), srv(30, 5, "c")];
        let ordered = order(records, &mut |total| total);
        assert_eq!(targets(&ordered), ["a", "b", "c"]);
    }

    // RFC 2782: the running sum selects the first record whose sum is >= the random number.
    #[test]
    fn the_draw_picks_by_running_sum_of_weights() {
        let records = || vec![srv(10, 60, "a"), srv(10, 30, "b"), srv(10, 10, "c")];
        // 0..=60 → a; 61..=90 → b; 91..=100 → c.
        assert_eq!(targets(&order(records(), &mut |_| 0)), ["a", "b", "c"]);
        // 60 picks a; then among b (30) and c (10) it is beyond the sum 40: the last, c.
        assert_eq!(targets(&order(records(), &mut |_| 60)), ["a", "c", "b"]);
        let mut draws = [61, 0].into_iter();
        let ordered = order(records(), &mut |_| draws.next().unwrap_or(0));
        assert_eq!(targets(&ordered), ["b", "a", "c"]);
        let mut draws = [100, 40].into_iter();
        let ordered = order(records(), &mut |_| draws.next().unwrap_or(0));
        // c first; then among a (60) and b (30), 40 falls in a.
        assert_eq!(targets(&ordered), ["c", "a", "b"]);
    }

    // RFC 2782: weight-0 records go first in the list, so only a draw of 0 picks them.
    #[test]
    fn weight_zero_is_picked_only_by_a_zero_draw() {
        let records = || vec![srv(10, 10, "heavy"), srv(10, 0, "spare")];
        assert_eq!(targets(&order(records(), &mut |_| 0)), ["spare", "heavy"]);
        assert_eq!(targets(&order(records(), &mut |t| t)), ["heavy", "spare"]);
        assert_eq!(targets(&order(records(), &mut |_| 1)), ["heavy", "spare"]);
    }

    // The share of first picks follows the weights (75 % / 25 %) with a uniform source.
    #[test]
    fn weights_share_the_first_pick() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5928);
        let mut first_a = 0;
        for _ in 0..4000 {
            let records = vec![srv(1, 3, "a"), srv(1, 1, "b")];
            let ordered = order(records, &mut |total| rng.gen_range(0..=total));
            if ordered[0].target == "a" {
                first_a += 1;
            }
        }
        // a takes draws 0..=3 of 0..=4: 80 %, RFC 2782's inclusive range favouring it a bit.
        assert!((2900..=3500).contains(&first_a), "{first_a}");
    }

    // RFC 2782: a lone "." target: the service is not offered; no fallback to A records.
    #[test]
    fn a_dot_target_means_not_available() {
        assert!(SrvRecord::is_not_available(&[srv(0, 0, ".")]));
        assert!(order(vec![srv(0, 0, ".")], &mut |_| 0).is_empty());
        assert!(!SrvRecord::is_not_available(&[
            srv(0, 0, "a"),
            srv(0, 0, ".")
        ]));
    }
}
