//! Properties every attribution method has, checked through the one `Attribution` trait over
//! random models of every architecture (the paper's LSTM, and LSTMs and GRUs of one or two
//! layers, one or two directions) and random sentences: a batch of sentences gives each sentence
//! its result alone, the results do not depend on the number of threads (to the bit), and
//! integrated gradients' delta shrinks as its steps grow.

mod common;

use cd_pipeline::attribution::{
    Attribution, MethodConfig, SentenceSpans, Span, SpanSet, Target, attribute_corpus,
};
use std::path::Path;

use cd_pipeline::model::{
    Architecture, CellKind, LstmClassifier, Network, RnnClassifier, Vocabulary,
};
use cd_pipeline::numeric::Real;
use proptest::prelude::*;

/// The paper's LSTM (`None`, its own type) and every other architecture of up to two layers.
fn architectures() -> Vec<Option<Architecture>> {
    let mut all = vec![None];
    for cell in [CellKind::Lstm, CellKind::Gru] {
        for (layers, bidirectional) in [(1, false), (1, true), (2, false), (2, true)] {
            all.push(Some(Architecture {
                cell,
                layers,
                bidirectional,
            }));
        }
    }
    all
}

fn network<R: Real>(
    architecture: Option<Architecture>,
    (vocab, embedding, hidden, seed): (usize, usize, usize, u64),
) -> Network<R> {
    match architecture {
        None => LstmClassifier::seeded_random(vocab, embedding, hidden, 2, seed).into(),
        Some(a) => RnnClassifier::seeded_random(a, vocab, embedding, hidden, 2, seed).into(),
    }
}

/// The method for `model`, or `None` for cell decomposition beyond the paper's LSTM, which
/// must say why.
fn build<'m, R: Real>(
    config: &MethodConfig,
    model: &'m Network<R>,
    vocab: Option<&Vocabulary>,
) -> Option<Box<dyn Attribution + 'm>> {
    match config.build(model, vocab) {
        Ok(method) => Some(method),
        Err(message) => {
            assert!(
                config.name() == "cell_decomposition"
                    && !model.architecture().is_paper()
                    && message.contains("one-layer unidirectional LSTMs only"),
                "{config}: {message}"
            );
            None
        }
    }
}

/// Every method, with the targets it takes.
const METHODS: [(&str, &[Target]); 7] = [
    ("cd", &[Target::LogitDiff, Target::Predicted]),
    ("cd:convention=acd", &[Target::Logit(1)]),
    (
        "leave_one_out",
        &[Target::LogProb(1), Target::Prob(0), Target::Predicted],
    ),
    ("gradient_x_input", &[Target::Prob(1), Target::LogitDiff]),
    (
        "integrated_gradients:steps=8",
        &[Target::Prob(1), Target::Predicted],
    ),
    (
        "integrated_gradients:steps=5,quadrature=riemann_trapezoid,baseline=token:2",
        &[Target::LogProb(0)],
    ),
    ("cell_decomposition", &[Target::LogitDiff, Target::Logit(0)]),
];

fn methods() -> Vec<MethodConfig> {
    METHODS
        .iter()
        .map(|(spec, _)| spec.parse().unwrap())
        .collect()
}

/// Tokens named by their row: `2` is row 2 (the integrated-gradients baseline above).
fn vocabulary(size: usize) -> Vocabulary {
    Vocabulary::from_tokens(
        Path::new("rows.json"),
        (0..size).map(|k| k.to_string()).collect(),
    )
    .unwrap()
}

/// Random spans of each sentence (duplicates allowed), and sometimes none.
fn spans_of(ids: &[usize], seed: usize) -> Vec<Span> {
    if seed.is_multiple_of(5) {
        return Vec::new();
    }
    let all = SpanSet::All.spans(ids.len());
    (0..1 + seed % 7)
        .map(|k| all[(seed * 31 + k * 17) % all.len()])
        .collect()
}

fn sentences(vocab: usize, lengths: &[usize], seed: usize) -> Vec<Vec<usize>> {
    lengths
        .iter()
        .enumerate()
        .map(|(k, &len)| (0..len).map(|t| (seed + k * 5 + t * 3) % vocab).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Sentences attributed together (one call, and through a corpus of several calls) get what
    /// each gets alone, in f64 to 1e-12, for every method and target.
    #[test]
    fn a_batch_gives_each_sentence_its_own_result(
        (vocab, embedding, hidden, seed) in (3usize..20, 1usize..8, 1usize..24, any::<u64>()),
        lengths in prop::collection::vec(1usize..14, 1..7),
        architecture in prop::sample::select(architectures()),
    ) {
        let model = network::<f64>(architecture, (vocab, embedding, hidden, seed));
        let sentences = sentences(vocab, &lengths, seed as usize % 97);
        let spans: Vec<Vec<Span>> =
            sentences.iter().enumerate().map(|(k, ids)| spans_of(ids, k + seed as usize % 13)).collect();
        let requests: Vec<SentenceSpans<'_>> = sentences
            .iter()
            .zip(&spans)
            .map(|(ids, spans)| SentenceSpans { token_ids: ids, spans })
            .collect();
        let vocab = vocabulary(vocab);
        for (config, (_, targets)) in methods().iter().zip(METHODS) {
            let Some(method) = build(config, &model, Some(&vocab)) else { continue };
            for &target in targets {
                let together = method.attribute(&requests, target).unwrap();
                prop_assert_eq!(together.len(), sentences.len());
                for (request, got) in requests.iter().zip(&together) {
                    let alone = method.attribute_sentence(request.token_ids, request.spans, target).unwrap();
                    prop_assert_eq!(got.len(), request.spans.len());
                    for (a, b) in got.iter().zip(&alone) {
                        prop_assert_eq!(a.span, b.span);
                        prop_assert!((a.score - b.score).abs() <= 1e-12, "{config} {target}: {} vs {}", a.score, b.score);
                        prop_assert_eq!(a.rel.is_some(), b.rel.is_some());
                        prop_assert_eq!(a.delta.is_some(), b.delta.is_some());
                    }
                }
            }
        }
    }

    /// Integrated gradients converge as the steps grow. Gauss-Legendre: the completeness delta
    /// shrinks. Captum's trapezoid: its weights sum to 1 − 1/n, so its delta tends to
    /// −(F(x) − F(b)) / n; what shrinks is the rest, the quadrature's own error (about 1/n²), which
    /// at few steps can cancel the −1/n part by chance.
    #[test]
    fn integrated_gradients_converge_as_steps_grow(
        (vocab, embedding, hidden, seed) in (3usize..20, 1usize..8, 1usize..24, any::<u64>()),
        len in 1usize..12,
        architecture in prop::sample::select(architectures()),
    ) {
        let model = network::<f64>(architecture, (vocab, embedding, hidden, seed));
        let ids: Vec<usize> = (0..len).map(|t| (seed as usize + t * 7) % vocab).collect();
        let spans = SpanSet::Unigrams.spans(len);
        for (quadrature, steps) in [("gausslegendre", [4, 16, 64]), ("riemann_trapezoid", [8, 64, 512])] {
            let errors: Vec<f64> = steps
                .iter()
                .map(|n| {
                    let config: MethodConfig =
                        format!("integrated_gradients:steps={n},quadrature={quadrature}")
                            .parse()
                            .unwrap();
                    let method = config.build(&model, None).unwrap();
                    let words = method.attribute_sentence(&ids, &spans, Target::Prob(1)).unwrap();
                    let delta = words[0].delta.unwrap();
                    let change = words.iter().map(|w| w.score).sum::<f64>() - delta;
                    match quadrature {
                        "gausslegendre" => delta.abs(),
                        _ => (delta + change / *n as f64).abs(),
                    }
                })
                .collect();
            prop_assert!(
                errors[1] <= errors[0] + 1e-12 && errors[2] <= errors[1] + 1e-12,
                "{quadrature}: errors at {steps:?} steps: {errors:?}"
            );
        }
    }
}

/// A corpus scored by every method on 1 thread and on 4 gives bit-identical results, each
/// sentence the scores it gets alone, for every architecture.
#[test]
fn results_do_not_depend_on_thread_count() {
    for architecture in architectures() {
        same_results_on_1_and_4_threads(architecture);
    }
}

fn same_results_on_1_and_4_threads(architecture: Option<Architecture>) {
    let model = network::<f32>(architecture, (50, 16, 24, 3));
    // The general network's baselines run sentence by sentence: fewer sentences keep this short.
    let count = if architecture.is_none() { 64 } else { 24 };
    let sentences: Vec<Vec<usize>> = (0..count)
        .map(|k| (0..1 + k % 23).map(|t| (k * 7 + t * 13) % 50).collect())
        .collect();
    let configs = methods();
    let vocab = vocabulary(50);
    let built: Vec<(Box<dyn Attribution + '_>, &[Target])> = configs
        .iter()
        .zip(METHODS)
        .filter_map(|(c, (_, targets))| Some((build(c, &model, Some(&vocab))?, targets)))
        .collect();
    let calls: Vec<(&dyn Attribution, Target)> = built
        .iter()
        .flat_map(|(m, targets)| targets.iter().map(move |&t| (m.as_ref(), t)))
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            attribute_corpus(&calls, &sentences, |_, ids| SpanSet::All.spans(ids.len()))
        })
        .unwrap()
    };
    let bits = |results: &[cd_pipeline::attribution::SentenceAttribution]| -> Vec<u64> {
        results
            .iter()
            .flat_map(|s| s.spans.iter())
            .flat_map(|a| {
                std::iter::once(a.score)
                    .chain(a.rel.iter().flatten().copied())
                    .chain(a.irrel.iter().flatten().copied())
                    .chain(a.delta)
            })
            .map(f64::to_bits)
            .collect()
    };
    let one = run(1);
    let four = run(4);
    assert_eq!(one.len(), count * calls.len());
    assert_eq!(bits(&one), bits(&four));
    for (k, result) in one.iter().enumerate() {
        assert_eq!(
            (result.sentence, result.method),
            (k / calls.len(), k % calls.len())
        );
        let (method, target) = calls[result.method];
        let ids = &sentences[result.sentence];
        let alone = method
            .attribute_sentence(ids, &SpanSet::All.spans(ids.len()), target)
            .unwrap();
        for (got, want) in result.spans.iter().zip(&alone) {
            assert_eq!(got.span, want.span);
            assert!(
                (got.score - want.score).abs() <= 1e-6,
                "{}: {} vs {}",
                method.method(),
                got.score,
                want.score
            );
        }
    }
}
