//! Stacked, bidirectional LSTM and GRU classifiers against `fixtures/cd_architectures/` (an
//! independent float64 implementation of the spec; logits from PyTorch): logits, and CD of every
//! span under all three conventions, by the batched engine in f32 and f64 and by the one-span
//! reference. The general engine is also checked on the authors' one-layer LSTM fixtures.

mod common;

use std::collections::BTreeMap;

use cd_pipeline::attribution::cd::decompose_one_span_rnn;
use cd_pipeline::attribution::{Convention, Span, StackedDecomposition};
use cd_pipeline::model::RnnClassifier;
use cd_pipeline::numeric::Real;
use common::{FixtureCase as Case, FixtureSentence as Sentence, fixture, max_abs_diff, read_jsonl};

/// The fixtures' suggested absolute tolerances, not to be loosened.
const F32_TOLERANCE: f64 = 1e-5;
const F64_TOLERANCE: f64 = 1e-10;

const MODELS: [&str; 6] = [
    "cd_architectures/lstm_2layer",
    "cd_architectures/bilstm",
    "cd_architectures/bilstm_2layer",
    "cd_architectures/gru",
    "cd_architectures/gru_2layer",
    "cd_architectures/bigru",
];

/// The authors' one-layer LSTMs, read by the general engine.
const ONE_LAYER: [&str; 2] = ["cd_reference/small", "cd_reference/medium"];

struct Fixture {
    sentences: Vec<Sentence>,
    /// Cases per sentence, in file order.
    cases: BTreeMap<usize, Vec<Case>>,
}

fn read(dir: &str) -> Fixture {
    let sentences: Vec<Sentence> = read_jsonl(&fixture(&format!("{dir}/sentences.jsonl")));
    let mut cases: BTreeMap<usize, Vec<Case>> = BTreeMap::new();
    for case in read_jsonl::<Case>(&fixture(&format!("{dir}/cases.jsonl"))) {
        cases.entry(case.sentence).or_default().push(case);
    }
    for s in &sentences {
        let t = s.ids.len();
        assert_eq!(
            cases[&s.sentence].len(),
            t * (t + 1) / 2,
            "{dir}: every span"
        );
    }
    Fixture { sentences, cases }
}

fn model<R: Real>(dir: &str) -> RnnClassifier<R> {
    RnnClassifier::load(&fixture(&format!("{dir}/model.safetensors"))).unwrap()
}

/// The worst error of a method over every case of a folder, with where it occurred.
fn worst_case(
    dir: &str,
    convention: Convention,
    mut decompose: impl FnMut(&Sentence, &[Span]) -> Vec<(Vec<f64>, Vec<f64>)>,
) -> (f64, String) {
    let fixture = read(dir);
    let mut worst = (0.0_f64, String::new());
    for sentence in &fixture.sentences {
        let cases = &fixture.cases[&sentence.sentence];
        let spans: Vec<Span> = cases.iter().map(Case::span).collect();
        for (case, (rel, irrel)) in cases.iter().zip(decompose(sentence, &spans)) {
            let want = case.expected(convention);
            let error = max_abs_diff(&rel, &want.rel).max(max_abs_diff(&irrel, &want.irrel));
            if error > worst.0 || error.is_nan() {
                worst = (
                    error,
                    format!("sentence {} span {:?}", sentence.sentence, case.span()),
                );
            }
        }
    }
    worst
}

fn batched<R: Real>(dir: &str, convention: Convention) -> (f64, String) {
    let model = model::<R>(dir);
    let cd = StackedDecomposition::new(&model, convention);
    worst_case(dir, convention, |sentence, spans| {
        let trace = model.forward(&sentence.ids).unwrap();
        cd.decompose(&trace, spans)
            .into_iter()
            .map(|d| (d.rel, d.irrel))
            .collect()
    })
}

#[test]
fn logits_match_pytorch() {
    for dir in MODELS.iter().chain(&ONE_LAYER) {
        let (m64, m32) = (model::<f64>(dir), model::<f32>(dir));
        for sentence in read(dir).sentences {
            let e64 = max_abs_diff(
                &m64.forward(&sentence.ids).unwrap().logits,
                &sentence.logits,
            );
            let e32 = max_abs_diff(
                &m32.forward(&sentence.ids).unwrap().logits,
                &sentence.logits_f32,
            );
            assert!(
                e64 <= F64_TOLERANCE,
                "{dir} sentence {}: f64 {e64}",
                sentence.sentence
            );
            assert!(
                e32 <= F32_TOLERANCE,
                "{dir} sentence {}: f32 {e32}",
                sentence.sentence
            );
        }
    }
}

#[test]
fn the_f64_engine_matches_every_case() {
    for dir in MODELS.iter().chain(&ONE_LAYER) {
        for convention in Convention::ALL {
            let (error, at) = batched::<f64>(dir, convention);
            eprintln!("f64 engine {dir} {convention}: worst {error:.2e} at {at}");
            assert!(
                error <= F64_TOLERANCE,
                "{dir} {convention}: {error} at {at}"
            );
        }
    }
}

#[test]
fn the_f32_engine_matches_every_case() {
    for dir in MODELS.iter().chain(&ONE_LAYER) {
        for convention in Convention::ALL {
            let (error, at) = batched::<f32>(dir, convention);
            eprintln!("f32 engine {dir} {convention}: worst {error:.2e} at {at}");
            assert!(
                error <= F32_TOLERANCE,
                "{dir} {convention}: {error} at {at}"
            );
        }
    }
}

#[test]
fn the_one_span_reference_matches_every_case() {
    for dir in MODELS.iter().chain(&ONE_LAYER) {
        let model = model::<f64>(dir);
        for convention in Convention::ALL {
            let (error, at) = worst_case(dir, convention, |sentence, spans| {
                spans
                    .iter()
                    .map(|&span| {
                        let d = decompose_one_span_rnn(
                            &model,
                            &sentence.ids,
                            &sentence.logits,
                            span,
                            convention,
                        )
                        .unwrap();
                        (d.rel, d.irrel)
                    })
                    .collect()
            });
            eprintln!("one-span f64 {dir} {convention}: worst {error:.2e} at {at}");
            assert!(
                error <= F64_TOLERANCE,
                "{dir} {convention}: {error} at {at}"
            );
        }
    }
}

/// Under `acd` the whole sentence is relevant, so γ vanishes in every architecture (spec §5).
#[test]
fn the_whole_sentence_has_no_irrelevant_part_under_acd() {
    for dir in MODELS {
        let model = model::<f64>(dir);
        let cd = StackedDecomposition::new(&model, Convention::Acd);
        for sentence in read(dir).sentences {
            let trace = model.forward(&sentence.ids).unwrap();
            let whole = cd.decompose(&trace, &[Span::new(0, sentence.ids.len())]);
            assert!(
                whole[0].irrel.iter().all(|v| v.abs() <= 1e-12),
                "{dir}: {:?}",
                whole[0].irrel
            );
        }
    }
}
