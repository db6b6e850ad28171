//! Percentiles of a set of measurements.

use std::fmt;

use serde::Serialize;

/// p50, p90, p99 and max of some durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `values_ms`; all zero when empty.
    pub fn of(mut values_ms: Vec<f64>) -> Summary {
        if values_ms.is_empty() {
            return Summary::default();
        }
        values_ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p / 100.0) * values_ms.len() as f64).ceil() as usize;
            values_ms[i.clamp(1, values_ms.len()) - 1]
        };
        Summary {
            count: values_ms.len(),
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: values_ms[values_ms.len() - 1],
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.count),
            (50.0, 90.0, 99.0, 100.0, 100)
        );
        let one = Summary::of(vec![7.0]);
        assert_eq!(
            (one.p50_ms, one.p90_ms, one.p99_ms, one.max_ms),
            (7.0, 7.0, 7.0, 7.0)
        );
        assert_eq!(Summary::of(Vec::new()), Summary::default());
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut values: Vec<f64> = (1..=1000).map(|v| f64::from(v) / 10.0).collect();
        let sorted = Summary::of(values.clone());
        values.reverse();
        assert_eq!(Summary::of(values), sorted);
        // p50 of 1000 values is the 500th, p99 the 990th.
        assert_eq!((sorted.p50_ms, sorted.p99_ms), (50.0, 99.0));
    }

    #[test]
    fn tails_are_not_hidden_by_rounding_down() {
        // Of 10 values, p99 is the 10th (rank ceil(9.9)), not the 9th.
        let s = Summary::of((1..=10).map(f64::from).collect());
        assert_eq!((s.p90_ms, s.p99_ms), (9.0, 10.0));
    }
}
