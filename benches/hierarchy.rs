//! Sentences per second of ACD's hierarchical explanation (`agg_1d`, percentile 90, by |score|)
//! with the PyTorch-trained SST model of the fixtures, on the SST dev sentences:
//! - `batched`: the pipeline's way, every span of a sentence in one CD call, then the
//!   agglomeration reads the scores;
//! - `per merge`: ACD's way, one CD call per span the agglomeration asks for (each component and
//!   each candidate merge, every level), as `agg_1d` calls `cd_text`.
//!
//! Both build the same levels (checked here on every sentence). Run with
//! `cargo bench --bench hierarchy` (it reads `../shared`, or `CD_PIPELINE_SHARED`).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use cd_pipeline::analysis::hierarchy::{Level, agglomerate};
use cd_pipeline::attribution::{
    Attribution, ContextualDecomposition, Convention, Span, SpanSet, Target,
};
use common::{Pools, best_of};
use rayon::prelude::*;

mod common;
mod torch_sst;

const PASSES: usize = 3;

fn main() {
    let (model, _, dev) = torch_sst::load();
    let cd = ContextualDecomposition::new(&model, Convention::Acd);
    let batched = |ids: &Vec<usize>| -> Vec<Level> {
        let spans = SpanSet::All.spans(ids.len());
        let scores: HashMap<Span, f64> = cd
            .attribute_sentence(ids, &spans, Target::LogitDiff)
            .expect("CD")
            .into_iter()
            .map(|s| (s.span, s.score))
            .collect();
        agglomerate(ids.len(), |span| scores[&span], 90.0, true)
    };
    let calls = AtomicUsize::new(0);
    let per_merge = |ids: &Vec<usize>| -> Vec<Level> {
        agglomerate(
            ids.len(),
            |span| {
                calls.fetch_add(1, Ordering::Relaxed);
                cd.attribute_sentence(ids, &[span], Target::LogitDiff)
                    .expect("CD")[0]
                    .score
            },
            90.0,
            true,
        )
    };
    let mut same = 0;
    for ids in &dev {
        same += usize::from(batched(ids) == per_merge(ids));
    }
    let calls_per_sentence = calls.load(Ordering::Relaxed) as f64 / dev.len() as f64;
    let spans_per_sentence = dev
        .iter()
        .map(|s| s.len() * (s.len() + 1) / 2)
        .sum::<usize>() as f64
        / dev.len() as f64;
    let Pools { cores, single, all } = Pools::new();
    println!(
        "cd-pipeline hierarchy throughput: torch_sst model (hidden {}), f32, SST dev, {} sentences; the same levels on {same} of them",
        model.hidden_size(),
        dev.len()
    );
    println!(
        "per merge: {calls_per_sentence:.1} CD calls per sentence; batched: one call of {spans_per_sentence:.1} spans per sentence\n"
    );
    println!(
        "{:<10} {:>14} {:>14}",
        "",
        "1 thread",
        format!("{cores} threads")
    );
    let [b1, b_all, m1, m_all] = best_of(
        PASSES,
        [
            &mut || {
                single.install(|| {
                    dev.iter().for_each(|ids| {
                        black_box(batched(ids));
                    })
                })
            },
            &mut || {
                all.install(|| {
                    dev.par_iter().for_each(|ids| {
                        black_box(batched(ids));
                    })
                })
            },
            &mut || {
                single.install(|| {
                    dev.iter().for_each(|ids| {
                        black_box(per_merge(ids));
                    })
                })
            },
            &mut || {
                all.install(|| {
                    dev.par_iter().for_each(|ids| {
                        black_box(per_merge(ids));
                    })
                })
            },
        ],
    );
    let rate = |d: std::time::Duration| dev.len() as f64 / d.as_secs_f64();
    println!(
        "{:<10} {:>14.0} {:>14.0}   sentences/s",
        "batched",
        rate(b1),
        rate(b_all)
    );
    println!(
        "{:<10} {:>14.0} {:>14.0}   sentences/s",
        "per merge",
        rate(m1),
        rate(m_all)
    );
    println!(
        "\nbatched / per merge: {:.1}x on 1 thread, {:.1}x on {cores}",
        m1.as_secs_f64() / b1.as_secs_f64(),
        m_all.as_secs_f64() / b_all.as_secs_f64()
    );
}
