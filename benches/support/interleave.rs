//! A ratio of two timings that survives a machine whose speed drifts.

use std::time::Instant;

/// `a`'s time over `b`'s, robust to the machine's drift: after one untimed
/// round of each (caches, branch predictors), 31 rounds of `per_round`
/// calls of each, interleaved in alternating order, and the median of the
/// per-round ratios.
/// Criterion measures one function after the other, so on a shared machine
/// its two medians can come from different moments; the budgets are judged
/// on this figure.
pub(crate) fn interleaved_ratio(per_round: u32, mut a: impl FnMut(), mut b: impl FnMut()) -> f64 {
    let time = |work: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..per_round {
            work();
        }
        start.elapsed().as_secs_f64()
    };
    time(&mut a);
    time(&mut b);
    // Which of the two goes first alternates, so that neither always runs
    // right after the other.
    let mut ratios: Vec<f64> = (0..31)
        .map(|round| {
            if round % 2 == 0 {
                let ta = time(&mut a);
                ta / time(&mut b)
            } else {
                let tb = time(&mut b);
                time(&mut a) / tb
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
}
