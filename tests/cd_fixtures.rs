//! CD against the authors' released implementation (fixtures computed by their code), under all
//! three conventions, for the batched engine in f32 and f64 and the one-span implementation.

mod common;

use std::collections::BTreeMap;

use cd_pipeline::attribution::cd::decompose_one_span;
use cd_pipeline::attribution::{ContextualDecomposition, Convention, Span};
use cd_pipeline::model::{LstmClassifier, Vocabulary};
use cd_pipeline::numeric::Real;
use common::{FixtureCase as Case, FixtureSentence as Sentence, fixture, max_abs_diff, read_jsonl};

/// The README's suggested absolute tolerances, not to be loosened.
const F32_TOLERANCE: f64 = 1e-5;
const F64_TOLERANCE: f64 = 1e-10;

struct Worst {
    error: f64,
    at: String,
}

impl Worst {
    fn new() -> Self {
        Self {
            error: 0.0,
            at: String::new(),
        }
    }

    fn record(&mut self, error: f64, at: impl FnOnce() -> String) {
        if error > self.error || error.is_nan() {
            self.error = error;
            self.at = at();
        }
    }
}

/// Batched engine over every case of a model folder; returns the worst error.
fn batched_engine_error<R: Real>(model_dir: &str, convention: Convention) -> Worst {
    let model =
        LstmClassifier::<R>::load(&fixture(&format!("{model_dir}/model.safetensors"))).unwrap();
    let sentences: Vec<Sentence> = read_jsonl(&fixture(&format!("{model_dir}/sentences.jsonl")));
    let cases: Vec<Case> = read_jsonl(&fixture(&format!("{model_dir}/cases.jsonl")));
    let mut by_sentence: BTreeMap<usize, Vec<&Case>> = BTreeMap::new();
    for case in &cases {
        by_sentence.entry(case.sentence).or_default().push(case);
    }
    assert_eq!(by_sentence.len(), sentences.len());
    // All sentences (lengths 1 to 30) in one batch: one recurrent product per step for all.
    let spans: Vec<Vec<Span>> = sentences
        .iter()
        .map(|s| by_sentence[&s.sentence].iter().map(|c| c.span()).collect())
        .collect();
    let ids: Vec<&[usize]> = sentences.iter().map(|s| s.ids.as_slice()).collect();
    let traces = model.forward_batch(&ids).unwrap();
    let batch: Vec<_> = traces
        .iter()
        .zip(&spans)
        .map(|(t, s)| (t, s.as_slice()))
        .collect();
    let results = ContextualDecomposition::new(&model, convention).decompose_batch(&batch);
    let mut worst = Worst::new();
    for (sentence, results) in sentences.iter().zip(&results) {
        let cases = &by_sentence[&sentence.sentence];
        let t = sentence.ids.len();
        assert_eq!(
            cases.len(),
            t * (t + 1) / 2,
            "every span of sentence {}",
            sentence.sentence
        );
        for (case, got) in cases.iter().zip(results) {
            assert_eq!(got.span, case.span());
            let want = case.expected(convention);
            let error =
                max_abs_diff(&got.rel, &want.rel).max(max_abs_diff(&got.irrel, &want.irrel));
            worst.record(error, || {
                format!("sentence {} span {:?}", sentence.sentence, got.span)
            });
        }
    }
    worst
}

fn assert_batched_engine_matches(model_dir: &str) {
    for convention in Convention::ALL {
        let f32_worst = batched_engine_error::<f32>(model_dir, convention);
        assert!(
            f32_worst.error <= F32_TOLERANCE,
            "{model_dir} {convention} f32: {} at {}",
            f32_worst.error,
            f32_worst.at
        );
        let f64_worst = batched_engine_error::<f64>(model_dir, convention);
        assert!(
            f64_worst.error <= F64_TOLERANCE,
            "{model_dir} {convention} f64: {} at {}",
            f64_worst.error,
            f64_worst.at
        );
        eprintln!(
            "{model_dir} {convention}: batched f32 max abs error {:.2e}, f64 {:.2e}",
            f32_worst.error, f64_worst.error
        );
    }
}

#[test]
fn batched_engine_matches_authors_code_small() {
    assert_batched_engine_matches("cd_reference/small");
}

#[test]
fn batched_engine_matches_authors_code_medium() {
    assert_batched_engine_matches("cd_reference/medium");
}

#[test]
fn one_span_implementation_matches_authors_code() {
    for model_dir in ["cd_reference/small", "cd_reference/medium"] {
        let model =
            LstmClassifier::<f64>::load(&fixture(&format!("{model_dir}/model.safetensors")))
                .unwrap();
        let sentences: Vec<Sentence> =
            read_jsonl(&fixture(&format!("{model_dir}/sentences.jsonl")));
        let cases: Vec<Case> = read_jsonl(&fixture(&format!("{model_dir}/cases.jsonl")));
        let mut worst = Worst::new();
        for case in &cases {
            let sentence = &sentences[case.sentence];
            for convention in Convention::ALL {
                let got = decompose_one_span(
                    &model,
                    &sentence.ids,
                    &sentence.logits,
                    case.span(),
                    convention,
                )
                .unwrap();
                let want = case.expected(convention);
                let error =
                    max_abs_diff(&got.rel, &want.rel).max(max_abs_diff(&got.irrel, &want.irrel));
                worst.record(error, || format!("{convention} {:?}", case.span()));
            }
        }
        assert!(
            worst.error <= F64_TOLERANCE,
            "{model_dir}: {} at {}",
            worst.error,
            worst.at
        );
    }
}

#[test]
fn forward_pass_matches_pytorch_logits() {
    for model_dir in ["cd_reference/small", "cd_reference/medium"] {
        let vocab = Vocabulary::load(&fixture(&format!("{model_dir}/vocab.json"))).unwrap();
        let model_path = fixture(&format!("{model_dir}/model.safetensors"));
        let f32_model = LstmClassifier::<f32>::load(&model_path).unwrap();
        let f64_model = LstmClassifier::<f64>::load(&model_path).unwrap();
        vocab
            .check_matches(&model_path, f32_model.vocab_size())
            .unwrap();
        for sentence in read_jsonl::<Sentence>(&fixture(&format!("{model_dir}/sentences.jsonl"))) {
            let ids: Vec<usize> = sentence
                .tokens
                .iter()
                .map(|t| vocab.lookup(t).unwrap())
                .collect();
            assert_eq!(
                ids, sentence.ids,
                "vocabulary lookup of sentence {}",
                sentence.sentence
            );
            let f32_logits = f32_model.forward(&ids).unwrap().logits;
            let f64_logits = f64_model.forward(&ids).unwrap().logits;
            assert!(max_abs_diff(&f32_logits, &sentence.logits_f32) <= F32_TOLERANCE);
            assert!(max_abs_diff(&f64_logits, &sentence.logits) <= F64_TOLERANCE);
        }
    }
}

#[derive(serde::Deserialize)]
struct Prediction {
    split: String,
    index: usize,
    tokens: Vec<String>,
    label: u8,
    logits: Vec<f64>,
}

/// The PyTorch-trained SST model: our loader reproduces its logits and therefore its accuracies.
#[test]
fn torch_trained_sst_model_reproduces_logits_and_accuracy() {
    let model_path = fixture("torch_sst/model.safetensors");
    let model = LstmClassifier::<f32>::load(&model_path).unwrap();
    let vocab = Vocabulary::load(&fixture("torch_sst/vocab.json")).unwrap();
    vocab
        .check_matches(&model_path, model.vocab_size())
        .unwrap();
    assert_eq!(
        (
            model.embedding_dim(),
            model.hidden_size(),
            model.num_classes()
        ),
        (50, 168, 2)
    );
    let predictions: Vec<Prediction> = read_jsonl(&fixture("torch_sst/predictions.jsonl"));
    let mut worst = 0.0_f64;
    let mut correct: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for p in &predictions {
        let ids: Vec<usize> = p.tokens.iter().map(|t| vocab.lookup(t).unwrap()).collect();
        let logits = model.forward(&ids).unwrap().logits;
        worst = worst.max(max_abs_diff(&logits, &p.logits));
        let predicted_positive = logits[1] > logits[0];
        let entry = correct.entry(p.split.as_str()).or_default();
        entry.0 += usize::from(predicted_positive == (p.label >= 3));
        entry.1 += 1;
    }
    assert!(worst <= F32_TOLERANCE, "max logit error {worst}");
    assert_eq!(correct["dev"], (736, 872), "dev 84.40 %");
    assert_eq!(correct["test"], (1552, 1821), "test 85.23 %");
}

/// CD of every constituent of 40 dev sentences on the trained model, against the authors' code.
#[test]
fn torch_trained_sst_model_cd_matches_authors_code() {
    let model = LstmClassifier::<f32>::load(&fixture("torch_sst/model.safetensors")).unwrap();
    let vocab = Vocabulary::load(&fixture("torch_sst/vocab.json")).unwrap();
    let predictions: Vec<Prediction> = read_jsonl(&fixture("torch_sst/predictions.jsonl"));
    let dev: BTreeMap<usize, &Prediction> = predictions
        .iter()
        .filter(|p| p.split == "dev")
        .map(|p| (p.index, p))
        .collect();
    let cases: Vec<Case> = read_jsonl(&fixture("torch_sst/cd_cases.jsonl"));
    let mut by_sentence: BTreeMap<usize, Vec<&Case>> = BTreeMap::new();
    for case in &cases {
        by_sentence.entry(case.sentence).or_default().push(case);
    }
    assert_eq!(by_sentence.len(), 40);
    for convention in Convention::ALL {
        let mut worst = Worst::new();
        for (index, cases) in &by_sentence {
            let ids: Vec<usize> = dev[index]
                .tokens
                .iter()
                .map(|t| vocab.lookup(t).unwrap())
                .collect();
            let spans: Vec<Span> = cases.iter().map(|c| c.span()).collect();
            let trace = model.forward(&ids).unwrap();
            for (case, got) in cases
                .iter()
                .zip(ContextualDecomposition::new(&model, convention).decompose(&trace, &spans))
            {
                let want = case.expected(convention);
                let error =
                    max_abs_diff(&got.rel, &want.rel).max(max_abs_diff(&got.irrel, &want.irrel));
                worst.record(error, || format!("dev {index} {:?}", got.span));
            }
        }
        eprintln!(
            "torch_sst {convention}: batched f32 max abs error {:.2e} at {}",
            worst.error, worst.at
        );
        assert!(
            worst.error <= F32_TOLERANCE,
            "{convention}: {} at {}",
            worst.error,
            worst.at
        );
    }
}
