//! CD throughput: the one-span-at-a-time implementation against the batched engine on 1 thread and
//! on all cores, with the GEMM backend's own throughput at exactly the engine's matrix shapes.
//!
//! Run with `cargo bench --bench cd_throughput`. Shapes follow the peers' measurements
//! (`shared/notes/reference_speed.md`): hidden 168, embedding 50, vocabulary 320, 2 classes,
//! 100 sentences of 20 and of 40 random tokens; convention `paper`. Every figure is the best of
//! several timed passes after a warm-up pass (this shared 2-core VM is noisy); the engine and the
//! GEMM alone are timed in alternation, so that both see the same machine conditions and their
//! ratio is not skewed by a slow spell that hit only one of them.

use std::hint::black_box;
use std::time::Duration;

use cd_pipeline::attribution::cd::{decompose_one_span, recurrent_product_columns, recurrent_rows};
use cd_pipeline::attribution::{
    Attribution, ContextualDecomposition, Convention, ROWS_PER_BATCH, Span, SpanSet, Target,
    attribute_corpus,
};
use cd_pipeline::model::LstmClassifier;
use cd_pipeline::numeric::{Mat, matmul};
use common::{Pools, best_of};
use rayon::prelude::*;

mod common;

const HIDDEN: usize = 168;
const EMBEDDING: usize = 50;
const VOCAB: usize = 320;
const SENTENCES: usize = 100;
const CONVENTION: Convention = Convention::Paper;

fn main() {
    let model = LstmClassifier::<f32>::seeded_random(VOCAB, EMBEDDING, HIDDEN, 2, 2024);
    let Pools { cores, single, all } = Pools::new();
    println!(
        "cd-pipeline CD throughput: hidden {HIDDEN}, embedding {EMBEDDING}, 2 classes, f32, convention {CONVENTION}, {cores} cores"
    );
    println!(
        "GEMM backend: the gemm crate 0.19 (x86-v4 kernels), single-threaded per call, sentences batched up to {ROWS_PER_BATCH} spans per product\n"
    );
    println!(
        "{:<8} {:<9} {:>9} {:>13} {:>13} {:>13} {:>9} {:>9} {:>10} {:>10} {:>7} {:>7}",
        "length",
        "spans",
        "spans/sent",
        "one-span/s",
        "batched 1T/s",
        "batched NT/s",
        "x one-span",
        "NT GF/s",
        "GEMM 1T",
        "GEMM NT",
        "1T eff",
        "NT eff"
    );
    for length in [20usize, 40] {
        let sentences = random_sentences(SENTENCES, length, length as u64);
        for (label, set) in [("all", SpanSet::All), ("unigrams", SpanSet::Unigrams)] {
            let spans = set.spans(length);
            let rows = recurrent_rows(&spans, length, CONVENTION);
            let flops_per_sentence =
                2.0 * (3 * HIDDEN * HIDDEN) as f64 * rows.iter().sum::<usize>() as f64;
            let total_spans = (spans.len() * sentences.len()) as f64;

            let naive_sentences = if length == 20 { 5 } else { 2 };
            let [naive] = best_of(
                5,
                [&mut || one_span_at_a_time(&model, &sentences[..naive_sentences], &spans)],
            );
            let naive_rate = (spans.len() * naive_sentences) as f64 / naive.as_secs_f64();

            let cd = ContextualDecomposition::new(&model, CONVENTION);
            let methods: [(&dyn Attribution, Target); 1] = [(&cd, Target::LogitDiff)];
            let run = || {
                black_box(
                    attribute_corpus(&methods, &sentences, |_, ids| set.spans(ids.len())).unwrap(),
                );
            };
            let gemm = || gemm_at_engine_shapes(&rows, spans.len(), sentences.len());
            let [batched_1, gemm_1, batched_n, gemm_n] = best_of(
                PASSES,
                [
                    &mut || single.install(run),
                    &mut || single.install(gemm),
                    &mut || all.install(run),
                    &mut || all.install(gemm),
                ],
            );
            let gflops =
                |d: Duration| flops_per_sentence * sentences.len() as f64 / d.as_secs_f64() / 1e9;
            println!(
                "{:<8} {:<9} {:>9} {:>13.0} {:>13.0} {:>13.0} {:>9.0} {:>9.1} {:>10.1} {:>10.1} {:>6.0}% {:>6.0}%",
                length,
                label,
                spans.len(),
                naive_rate,
                total_spans / batched_1.as_secs_f64(),
                total_spans / batched_n.as_secs_f64(),
                total_spans / batched_n.as_secs_f64() / naive_rate,
                gflops(batched_n),
                gflops(gemm_1),
                gflops(gemm_n),
                100.0 * gemm_1.as_secs_f64() / batched_1.as_secs_f64(),
                100.0 * gemm_n.as_secs_f64() / batched_n.as_secs_f64(),
            );
        }
    }
    println!();
    println!(
        "one-span/s: spans per second of the one-span-at-a-time implementation (1 thread, matrix-vector products, β and γ propagated)."
    );
    println!("batched 1T/NT: the batched engine through attribute_corpus on 1 thread / all cores.");
    println!(
        "NT GF/s: necessary recurrent products only (3H² multiply-adds per state row per step) over the batched all-core time."
    );
    println!(
        "GEMM 1T/NT: the same backend running only those products, at the engine's exact shapes, on 1 thread / all cores."
    );
    println!(
        "eff: GEMM-only time / batched time = achieved GFLOP/s as a share of the backend's GFLOP/s at the same shapes."
    );
    println!();
    work_saved_by_each_shortcut();
}

/// What each exact shortcut removes, in multiply-adds per length-20 sentence with all spans.
fn work_saved_by_each_shortcut() {
    let (t, h, e) = (20usize, HIDDEN, EMBEDDING);
    let spans = SpanSet::All.spans(t);
    let n = spans.len();
    let per_step_naive = 2 * 3 * h * h + h * h + 4 * h * e; // V_ifg β, V_ifg γ, V_o h, W x
    let naive = n * t * per_step_naive;
    let beta_only = n * t * 3 * h * h + t * (4 * h * h + 4 * h * e); // γ = h − β; forward and W x once
    let join_at_start: usize = spans
        .iter()
        .map(|s| (t - s.start - 1) * 3 * h * h)
        .sum::<usize>()
        + t * (4 * h * h + 4 * h * e);
    let shared = recurrent_rows(&spans, t, CONVENTION).iter().sum::<usize>() * 3 * h * h
        + t * (4 * h * h + 4 * h * e);
    println!("multiply-adds per length-20 sentence, all {n} spans:");
    println!(
        "  one span at a time (β and γ, W x and V_o per span) {:>12}",
        naive
    );
    println!(
        "  + γ = h − β, W x and the output gate once per sentence {:>9}  ({:.1}x less)",
        beta_only,
        naive as f64 / beta_only as f64
    );
    println!(
        "  + β = 0 before the start (first step needs no product) {:>8}  ({:.1}x less)",
        join_at_start,
        naive as f64 / join_at_start as f64
    );
    println!(
        "  + spans with the same start share their trajectory  {:>12}  ({:.1}x less)",
        shared,
        naive as f64 / shared as f64
    );
}

fn random_sentences(count: usize, length: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..count)
        .map(|_| {
            (0..length)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    2 + ((state >> 33) as usize) % (VOCAB - 2)
                })
                .collect()
        })
        .collect()
}

fn one_span_at_a_time(model: &LstmClassifier<f32>, sentences: &[Vec<usize>], spans: &[Span]) {
    for ids in sentences {
        let logits = model.forward(ids).unwrap().logits;
        for &span in spans {
            black_box(decompose_one_span(model, ids, &logits, span, CONVENTION).unwrap());
        }
    }
}

/// The engine's recurrent products alone: for each batch of sentences, one
/// `(rows × H) · (H × C)` product per step (C = 3H rounded up as the engine does), batches fanned out over the current pool as the
/// engine's are; operands are allocated once per worker, so only the products are timed.
fn gemm_at_engine_shapes(rows: &[usize], spans: usize, sentences: usize) {
    let per_batch = ROWS_PER_BATCH.div_ceil(spans);
    let columns = recurrent_product_columns(HIDDEN);
    let weights: Vec<f32> = (0..HIDDEN * columns)
        .map(|i| (i % 11) as f32 * 0.01)
        .collect();
    let largest = rows.iter().max().copied().unwrap_or(0) * per_batch;
    (0..sentences.div_ceil(per_batch))
        .into_par_iter()
        .for_each_init(
            || {
                (
                    vec![0.1_f32; largest * HIDDEN],
                    vec![0.0_f32; largest * columns],
                )
            },
            |(states, out), _| {
                for &r in rows {
                    let r = r * per_batch;
                    matmul(
                        Mat::new(states, r, HIDDEN),
                        Mat::new(&weights, HIDDEN, columns),
                        out,
                        false,
                    );
                    black_box(&out);
                }
            },
        );
}

/// Timed passes of the engine and of the GEMM alone for each configuration.
const PASSES: usize = 9;
