//! What the benchmarks share: timing a set of runs in alternation.

use std::time::{Duration, Instant};

/// The best time of each of `runs` over `passes` rounds, after one warm-up round; every round
/// runs each of them once, in order.
pub fn best_of<const N: usize>(passes: usize, mut runs: [&mut dyn FnMut(); N]) -> [Duration; N] {
    for run in runs.iter_mut() {
        run();
    }
    let mut best = [Duration::MAX; N];
    for _ in 0..passes {
        for (run, best) in runs.iter_mut().zip(&mut best) {
            let start = Instant::now();
            run();
            *best = (*best).min(start.elapsed());
        }
    }
    best
}
