//! CD throughput for every architecture: all spans of 100 random length-20 sentences, hidden
//! 168, embedding 50, 2 classes, f32, convention `paper`, through `attribute_corpus` on 1 thread
//! and on all cores. Each architecture's time per span is divided by its layers × directions and
//! compared with the paper's one-layer LSTM (its own engine), the issue's measure of "the same
//! speed"; the one-layer LSTM through the general engine is shown too.
//!
//! Run with `cargo bench --bench cd_architectures`. Every figure is the best of several passes
//! after a warm-up pass, 1 thread and all cores in alternation.

use std::hint::black_box;

use cd_pipeline::attribution::{
    Attribution, ContextualDecomposition, Convention, SpanSet, StackedDecomposition, Target,
    attribute_corpus,
};
use cd_pipeline::model::{Architecture, CellKind, LstmClassifier, RnnClassifier};
use cd_pipeline::numeric::SplitMix64;
use common::{Pools, best_of};

mod common;

const HIDDEN: usize = 168;
const EMBEDDING: usize = 50;
const VOCAB: usize = 320;
const SENTENCES: usize = 100;
const LENGTH: usize = 20;
const PASSES: usize = 3;

fn main() {
    let Pools { cores, single, all } = Pools::new();
    let mut rng = SplitMix64(20);
    let sentences: Vec<Vec<usize>> = (0..SENTENCES)
        .map(|_| (0..LENGTH).map(|_| rng.below(VOCAB)).collect())
        .collect();
    let spans = SpanSet::All.spans(LENGTH).len() * SENTENCES;
    println!(
        "cd-pipeline CD throughput per architecture: hidden {HIDDEN}, embedding {EMBEDDING}, 2 classes, f32, convention paper, {SENTENCES} random sentences of {LENGTH} tokens, all {} spans each, {cores} cores\n",
        spans / SENTENCES
    );
    let architecture = |cell, layers, bidirectional| Architecture {
        cell,
        layers,
        bidirectional,
    };
    let general = [
        architecture(CellKind::Lstm, 1, false),
        architecture(CellKind::Lstm, 2, false),
        architecture(CellKind::Lstm, 1, true),
        architecture(CellKind::Lstm, 2, true),
        architecture(CellKind::Gru, 1, false),
        architecture(CellKind::Gru, 2, false),
        architecture(CellKind::Gru, 1, true),
    ];
    let paper = LstmClassifier::<f32>::seeded_random(VOCAB, EMBEDDING, HIDDEN, 2, 7);
    let models: Vec<RnnClassifier<f32>> = general
        .iter()
        .map(|&a| RnnClassifier::seeded_random(a, VOCAB, EMBEDDING, HIDDEN, 2, 7))
        .collect();
    let paper_cd = ContextualDecomposition::new(&paper, Convention::Paper);
    let mut methods: Vec<(String, usize, Box<dyn Attribution + '_>)> =
        vec![("1-layer LSTM (paper engine)".into(), 1, Box::new(paper_cd))];
    for model in &models {
        let a = model.architecture();
        methods.push((
            a.to_string(),
            a.layers * a.directions(),
            Box::new(StackedDecomposition::new(model, Convention::Paper)),
        ));
    }
    println!(
        "{:<30} {:>8} {:>12} {:>12} {:>16} {:>16}",
        "architecture", "passes", "1T spans/s", "NT spans/s", "1T per pass/ref", "NT per pass/ref"
    );
    let mut reference = None;
    for (name, passes, method) in &methods {
        let calls: [(&dyn Attribution, Target); 1] = [(method.as_ref(), Target::LogitDiff)];
        let run = || {
            black_box(
                attribute_corpus(&calls, &sentences, |_, ids| SpanSet::All.spans(ids.len()))
                    .unwrap(),
            );
        };
        let [one, many] = best_of(
            PASSES,
            [&mut || single.install(run), &mut || all.install(run)],
        );
        let (one, many) = (one.as_secs_f64(), many.as_secs_f64());
        let (reference_one, reference_many) = *reference.get_or_insert((one, many));
        println!(
            "{:<30} {:>8} {:>12.0} {:>12.0} {:>16.2} {:>16.2}",
            name,
            passes,
            spans as f64 / one,
            spans as f64 / many,
            one / *passes as f64 / reference_one,
            many / *passes as f64 / reference_many
        );
    }
    println!(
        "\npasses: layers × directions. per pass/ref: time per span divided by passes, over the paper engine's time per span (the issue asks ≤ 1.5)."
    );
}
