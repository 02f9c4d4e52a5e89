//! Sentences per second of every attribution method, on 1 thread and on all cores, with the
//! PyTorch-trained SST model of the fixtures (hidden 168, embedding 50): on 100 random length-20
//! sentences (the shape of Captum's anchor measurement, `shared/bench/captum_speed.py`) and on the
//! SST dev sentences. Every method scores every word (unigram spans) of every sentence for the
//! logit difference, as the anchor does; integrated gradients with 50 Gauss-Legendre points and
//! the zero baseline. Integrated gradients' and leave-one-out's GFLOP/s are set against the GEMM
//! backend running exactly their products, alone.
//!
//! Run with `cargo bench --bench attribution_throughput` (it reads `../shared`, or
//! `CD_PIPELINE_SHARED`). Every figure is the best of several passes after a warm-up pass; the
//! method and the GEMM alone are timed in alternation, so both see the same machine.

use std::hint::black_box;
use std::time::Duration;

use cd_pipeline::attribution::{
    Attribution, MethodConfig, ROWS_PER_BATCH, SpanSet, Target, attribute_corpus,
};
use cd_pipeline::model::{LstmClassifier, Network};
use cd_pipeline::numeric::{Mat, SplitMix64, matmul};
use common::{Pools, best_of};
use rayon::prelude::*;

mod common;
mod torch_sst;

/// Captum 0.9 / torch 2.15 on this machine kind, one sentence per call, 100 random length-20
/// sentences, hidden 168 (`shared/notes`, `shared/bench/README.md`): sentences/s on 1 / 2 threads.
const CAPTUM: [(&str, f64, f64); 3] = [
    ("leave_one_out", 97.0, 116.0),
    ("gradient_x_input", 837.0, 915.0),
    ("integrated_gradients", 103.0, 151.0),
];

const PASSES: usize = 7;
const STEPS: usize = 50;

fn main() {
    let (model, vocab, dev) = torch_sst::load();
    let mut rng = SplitMix64(2024);
    let random: Vec<Vec<usize>> = (0..100)
        .map(|_| {
            (0..20)
                .map(|_| 2 + rng.below(model.vocab_size() - 2))
                .collect()
        })
        .collect();
    let Pools { cores, single, all } = Pools::new();
    let words = |sentences: &[Vec<usize>]| sentences.iter().map(Vec::len).sum::<usize>();
    println!(
        "cd-pipeline attribution throughput: torch_sst model (hidden {}, embedding {}), f32, target logit_diff, every word of every sentence, {cores} cores",
        model.hidden_size(),
        model.embedding_dim()
    );
    println!(
        "sentences: 100 random of length 20 ({} words); SST dev, {} sentences of 1-{} words ({} words)\n",
        words(&random),
        dev.len(),
        dev.iter().map(Vec::len).max().unwrap_or(0),
        words(&dev)
    );
    println!(
        "{:<22} {:<14} {:>11} {:>11} {:>11} {:>11} {:>13}",
        "method", "sentences", "1T sent/s", "NT sent/s", "x Captum 1T", "x Captum 2T", "NT words/s"
    );
    let methods = [
        "cd",
        "leave_one_out",
        "gradient_x_input",
        "integrated_gradients",
        "cell_decomposition",
    ];
    let network = Network::from(model.clone());
    let mut timings = Vec::new();
    for spec in methods {
        let config: MethodConfig = spec.parse().unwrap();
        let method = config.build(&network, Some(&vocab)).unwrap();
        for (label, sentences) in [("random 20", &random), ("SST dev", &dev)] {
            let calls: [(&dyn Attribution, Target); 1] = [(method.as_ref(), Target::LogitDiff)];
            let run = || {
                black_box(
                    attribute_corpus(&calls, sentences, |_, ids| {
                        SpanSet::Unigrams.spans(ids.len())
                    })
                    .unwrap(),
                );
            };
            let [one, many] = best_of(
                PASSES,
                [&mut || single.install(run), &mut || all.install(run)],
            );
            let rate = |d: Duration| sentences.len() as f64 / d.as_secs_f64();
            let anchor = CAPTUM.iter().find(|(name, _, _)| *name == spec);
            let ratio = |own: f64, captum: f64| format!("{:.1}", own / captum);
            let (x1, x2) = match (anchor, label) {
                (Some((_, c1, c2)), "random 20") => (ratio(rate(one), *c1), ratio(rate(many), *c2)),
                _ => ("-".to_string(), "-".to_string()),
            };
            println!(
                "{:<22} {:<14} {:>11.0} {:>11.0} {:>11} {:>11} {:>13.0}",
                spec,
                label,
                rate(one),
                rate(many),
                x1,
                x2,
                words(sentences) as f64 / many.as_secs_f64()
            );
            timings.push((spec, label, one, many));
        }
    }
    println!();
    println!(
        "x Captum: our sentences/s over Captum's on the same thread count (its 2-thread figure against our all-core one), random length-20 sentences."
    );
    println!();
    arithmetic_against_gemm(&model, &random, &timings, &single, &all);
}

/// GFLOP/s of integrated gradients and leave-one-out on the random length-20 sentences, counting
/// only their necessary recurrent products, against the GEMM backend running exactly those
/// products at the same shapes and batch sizes, alone.
fn arithmetic_against_gemm(
    model: &LstmClassifier<f32>,
    sentences: &[Vec<usize>],
    timings: &[(&str, &str, Duration, Duration)],
    single: &rayon::ThreadPool,
    all: &rayon::ThreadPool,
) {
    let (h, t) = (model.hidden_size(), 20usize);
    let product = 2.0 * (4 * h * h) as f64;
    let find = |name: &str| {
        timings
            .iter()
            .find(|(m, l, _, _)| *m == name && *l == "random 20")
            .map(|&(_, _, one, many)| (one, many))
            .unwrap()
    };
    // Integrated gradients: every point of a sentence is a row, forward (H × 4H) and backward
    // (4H × H) at every step after the first; rows per batch as the method cuts them.
    let per_batch = ROWS_PER_BATCH.div_ceil(STEPS);
    let ig_flops = sentences.len() as f64 * STEPS as f64 * (t - 1) as f64 * 2.0 * product;
    let ig_shapes: Vec<(usize, usize, usize)> = (1..t)
        .flat_map(|_| [(per_batch * STEPS, h, 4 * h), (per_batch * STEPS, 4 * h, h)])
        .collect();
    let ig_batches = sentences.len().div_ceil(per_batch);
    // Leave-one-out of every word: the copy zeroing word k runs from step k with the sentence's
    // own state, so its products after step k are the necessary ones, plus the sentence's own
    // forward pass; the engine's products also hold each copy's first step.
    let loo_necessary: usize = (0..t).map(|k| t - 1 - k).sum::<usize>() + (t - 1);
    let loo_flops = sentences.len() as f64 * loo_necessary as f64 * product;
    let per_loo_batch = ROWS_PER_BATCH.div_ceil(t);
    let loo_shapes: Vec<(usize, usize, usize)> = (1..t)
        .map(|step| ((step + 1) * per_loo_batch, h, 4 * h))
        .collect();
    let loo_batches = sentences.len().div_ceil(per_loo_batch);
    println!(
        "{:<22} {:>12} {:>10} {:>10} {:>12} {:>12} {:>8} {:>8}",
        "method", "MFLOP/sent", "1T GF/s", "NT GF/s", "GEMM 1T", "GEMM NT", "1T eff", "NT eff"
    );
    for (name, flops, shapes, batches) in [
        ("integrated_gradients", ig_flops, &ig_shapes, ig_batches),
        ("leave_one_out", loo_flops, &loo_shapes, loo_batches),
    ] {
        let (one, many) = find(name);
        let gemm = || gemm_alone(shapes, batches);
        let [gemm_one, gemm_many] = best_of(
            PASSES,
            [&mut || single.install(gemm), &mut || all.install(gemm)],
        );
        let gemm_flops: f64 = batches as f64
            * shapes
                .iter()
                .map(|&(m, k, n)| 2.0 * (m * k * n) as f64)
                .sum::<f64>();
        let rate = |f: f64, d: Duration| f / d.as_secs_f64() / 1e9;
        println!(
            "{:<22} {:>12.1} {:>10.1} {:>10.1} {:>12.1} {:>12.1} {:>7.0}% {:>7.0}%",
            name,
            flops / sentences.len() as f64 / 1e6,
            rate(flops, one),
            rate(flops, many),
            rate(gemm_flops, gemm_one),
            rate(gemm_flops, gemm_many),
            100.0 * rate(flops, one) / rate(gemm_flops, gemm_one),
            100.0 * rate(flops, many) / rate(gemm_flops, gemm_many),
        );
    }
    println!();
    println!(
        "GF/s: necessary products only (integrated gradients {STEPS} points x 19 steps x forward and backward; leave-one-out each copy after its zeroed word, and the sentence's own forward pass), over the method's time."
    );
    println!(
        "GEMM: the backend alone at the method's shapes and batch rows (leave-one-out: also each copy's first step); eff: method GF/s over GEMM GF/s."
    );
}

/// Products of the given shapes `(m × k) · (k × n)`, once per batch, batches fanned out over the
/// current pool; operands allocated once per worker, outside the timed products.
fn gemm_alone(shapes: &[(usize, usize, usize)], batches: usize) {
    let largest = shapes
        .iter()
        .map(|&(m, k, n)| m * k.max(n))
        .max()
        .unwrap_or(0);
    let weights_len = shapes.iter().map(|&(_, k, n)| k * n).max().unwrap_or(0);
    (0..batches).into_par_iter().for_each_init(
        || {
            (
                vec![0.1_f32; largest],
                vec![0.01_f32; weights_len],
                vec![0.0_f32; largest],
            )
        },
        |(a, b, out), _| {
            for &(m, k, n) in shapes {
                matmul(Mat::new(a, m, k), Mat::new(b, k, n), out, false);
                black_box(&out);
            }
        },
    );
}
