//! What the benchmarks share: thread pools of one thread and of every core, and timing a set of
//! runs in alternation.

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

/// A pool of one thread and one of every core.
pub struct Pools {
    pub cores: usize,
    pub single: rayon::ThreadPool,
    pub all: rayon::ThreadPool,
}

impl Pools {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool")
        };
        Self {
            cores,
            single: pool(1),
            all: pool(cores),
        }
    }
}
