//! The baselines against Captum (`fixtures/cd_reference/*/baselines.jsonl`): integrated gradients
//! with both quadratures and their deltas, gradient × input and leave-one-out, for every sentence
//! and both targets, in f64 and in f32; and cell decomposition against an independent one-sentence
//! f64 implementation written here from the definition.

mod common;

use cd_pipeline::attribution::{MethodConfig, Span, SpanSet, Target};
use cd_pipeline::model::{LstmClassifier, Network};
use cd_pipeline::numeric::Real;
use common::{FixtureSentence, fixture, read_jsonl};

/// A line of `baselines.jsonl`.
#[derive(Debug, serde::Deserialize)]
struct Captum {
    sentence: usize,
    target: String,
    class: Option<usize>,
    f_x: f64,
    f_baseline: f64,
    ig_gausslegendre: Vec<f64>,
    ig_gausslegendre_delta: f64,
    ig_riemann_trapezoid: Vec<f64>,
    ig_riemann_trapezoid_delta: f64,
    input_x_gradient: Vec<f64>,
    leave_one_out: Vec<f64>,
}

impl Captum {
    fn target(&self) -> Target {
        match self.target.as_str() {
            "pred" => Target::Predicted,
            "diff" => Target::LogitDiff,
            other => panic!("target {other}"),
        }
    }
}

/// Per-word scores and the deltas of one method over one fixture sentence.
fn word_scores<R: Real>(
    model: &Network<R>,
    spec: &str,
    ids: &[usize],
    target: Target,
) -> (Vec<f64>, Vec<Option<f64>>) {
    let config: MethodConfig = spec.parse().unwrap();
    let method = config.build(model, None).unwrap();
    let scores = method
        .attribute_sentence(ids, &SpanSet::Unigrams.spans(ids.len()), target)
        .unwrap();
    (
        scores.iter().map(|s| s.score).collect(),
        scores.iter().map(|s| s.delta).collect(),
    )
}

fn max_error(got: &[f64], want: &[f64]) -> f64 {
    common::max_abs_diff(got, want)
}

/// Every sentence and target within `tolerance` (`exact_tolerance` for gradient × input and
/// leave-one-out, which have no quadrature).
fn check<R: Real>(model_dir: &str, tolerance: f64, exact_tolerance: f64) {
    let model = Network::<R>::load(&fixture(&format!(
        "cd_reference/{model_dir}/model.safetensors"
    )))
    .unwrap();
    let sentences: Vec<FixtureSentence> = read_jsonl(&fixture(&format!(
        "cd_reference/{model_dir}/sentences.jsonl"
    )));
    let cases: Vec<Captum> = read_jsonl(&fixture(&format!(
        "cd_reference/{model_dir}/baselines.jsonl"
    )));
    assert_eq!(cases.len(), 2 * sentences.len());
    let mut worst = [0.0_f64; 6];
    for case in &cases {
        let ids = &sentences[case.sentence].ids;
        let target = case.target();
        let at = format!(
            "{model_dir} sentence {} target {}",
            case.sentence, case.target
        );
        if let Some(class) = case.class {
            let logits = model.logits(ids).unwrap();
            assert_eq!(
                Target::Predicted.resolve(&logits),
                Target::Logit(class).resolve(&logits)
            );
        }
        for (k, (spec, want, want_delta)) in [
            (
                "integrated_gradients",
                &case.ig_gausslegendre,
                case.ig_gausslegendre_delta,
            ),
            (
                "integrated_gradients:quadrature=riemann_trapezoid",
                &case.ig_riemann_trapezoid,
                case.ig_riemann_trapezoid_delta,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let (got, deltas) = word_scores(&model, spec, ids, target);
            let error = max_error(&got, want);
            let delta = deltas[0].unwrap();
            // Every row of a sentence carries the sentence's delta, Σ attributions − (F(x) − F(0)).
            assert!(deltas.iter().all(|d| *d == Some(delta)));
            let implied = got.iter().sum::<f64>() - (case.f_x - case.f_baseline);
            assert!(error <= tolerance, "{at}: {spec}: {error}");
            assert!(
                (delta - want_delta).abs() <= tolerance,
                "{at}: {spec} delta {delta} vs {want_delta}"
            );
            assert!(
                (delta - implied).abs() <= tolerance,
                "{at}: {spec} delta vs the sum"
            );
            worst[k] = worst[k].max(error).max((delta - want_delta).abs());
        }
        let (got, deltas) = word_scores(&model, "gradient_x_input", ids, target);
        assert!(deltas.iter().all(Option::is_none));
        let error = max_error(&got, &case.input_x_gradient);
        assert!(error <= exact_tolerance, "{at}: gradient × input {error}");
        worst[2] = worst[2].max(error);
        let (got, _) = word_scores(&model, "leave_one_out", ids, target);
        let error = max_error(&got, &case.leave_one_out);
        assert!(error <= exact_tolerance, "{at}: leave-one-out {error}");
        worst[3] = worst[3].max(error);
        // F(x) and F(0) as Captum has them: leave-one-out of the whole sentence is their difference.
        let config: MethodConfig = "leave_one_out".parse().unwrap();
        let whole = config.build(&model, None).unwrap().attribute_sentence(
            ids,
            &[Span::new(0, ids.len())],
            target,
        );
        let error = (whole.unwrap()[0].score - (case.f_x - case.f_baseline)).abs();
        assert!(error <= exact_tolerance, "{at}: F(x) − F(0) {error}");
        worst[4] = worst[4].max(error);
    }
    eprintln!(
        "{model_dir} ({}): largest errors IG-GL {:.1e}, IG-trapezoid {:.1e}, gradient × input {:.1e}, leave-one-out {:.1e}, F(x) − F(0) {:.1e}",
        std::any::type_name::<R>(),
        worst[0],
        worst[1],
        worst[2],
        worst[3],
        worst[4]
    );
}

#[test]
fn baselines_match_captum_in_f64() {
    for model in ["small", "medium"] {
        check::<f64>(model, 1e-6, 1e-10);
    }
}

#[test]
fn baselines_match_captum_in_f32() {
    for model in ["small", "medium"] {
        check::<f32>(model, 1e-5, 1e-5);
    }
}

/// Cell decomposition written from its definition, for one sentence, in f64 with plain loops:
/// the LSTM's forward pass, then W_j (o_T ⊙ (tanh c_t − tanh c_(t−1))) per word and class.
fn cell_decomposition_by_hand(model: &LstmClassifier<f64>, ids: &[usize]) -> Vec<Vec<f64>> {
    let h = model.hidden_size();
    let (w_ih, w_hh, bias, w_out) = (model.w_ih(), model.w_hh(), model.bias(), model.w_out());
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (mut hidden, mut cell) = (vec![0.0; h], vec![0.0; h]);
    let mut tanh_cells = Vec::new();
    let mut output_gate = vec![0.0; h];
    for &id in ids {
        let x = model.embedding().row(id).to_vec();
        let z: Vec<f64> = (0..4 * h)
            .map(|r| {
                bias[r]
                    + (0..x.len()).map(|e| w_ih[(r, e)] * x[e]).sum::<f64>()
                    + (0..h).map(|k| w_hh[(r, k)] * hidden[k]).sum::<f64>()
            })
            .collect();
        for j in 0..h {
            let (i, f, g, o) = (
                sigmoid(z[j]),
                sigmoid(z[h + j]),
                z[2 * h + j].tanh(),
                sigmoid(z[3 * h + j]),
            );
            cell[j] = f * cell[j] + i * g;
            hidden[j] = o * cell[j].tanh();
            output_gate[j] = o;
        }
        tanh_cells.push(cell.iter().map(|c| c.tanh()).collect::<Vec<f64>>());
    }
    (0..ids.len())
        .map(|t| {
            (0..w_out.nrows())
                .map(|class| {
                    (0..h)
                        .map(|j| {
                            let previous = if t > 0 { tanh_cells[t - 1][j] } else { 0.0 };
                            w_out[(class, j)] * output_gate[j] * (tanh_cells[t][j] - previous)
                        })
                        .sum()
                })
                .collect()
        })
        .collect()
}

#[test]
fn cell_decomposition_matches_its_definition_and_sums_to_the_logits() {
    for model_dir in ["small", "medium"] {
        let path = fixture(&format!("cd_reference/{model_dir}/model.safetensors"));
        let m64 = LstmClassifier::<f64>::load(&path).unwrap();
        let m32 = LstmClassifier::<f32>::load(&path).unwrap();
        let sentences: Vec<FixtureSentence> = read_jsonl(&fixture(&format!(
            "cd_reference/{model_dir}/sentences.jsonl"
        )));
        let config: MethodConfig = "cell_decomposition".parse().unwrap();
        let (n64, n32) = (Network::from(m64.clone()), Network::from(m32.clone()));
        let (method64, method32) = (
            config.build(&n64, None).unwrap(),
            config.build(&n32, None).unwrap(),
        );
        let mut worst = (0.0_f64, 0.0_f64);
        for sentence in &sentences {
            let ids = &sentence.ids;
            let by_hand = cell_decomposition_by_hand(&m64, ids);
            for target in [Target::Logit(0), Target::Logit(1)] {
                let class = match target {
                    Target::Logit(k) => k,
                    _ => unreachable!(),
                };
                let words = method64
                    .attribute_sentence(ids, &SpanSet::Unigrams.spans(ids.len()), target)
                    .unwrap();
                for (t, word) in words.iter().enumerate() {
                    let error = (word.score - by_hand[t][class]).abs();
                    worst.0 = worst.0.max(error);
                    assert!(
                        error < 1e-12,
                        "{model_dir} sentence {}: word {t}",
                        sentence.sentence
                    );
                }
            }
            // The words' contributions (f32 engine) sum to W h_T: the logits of PyTorch's own
            // float32 run without the output bias.
            let whole = method32
                .attribute_sentence(ids, &[Span::new(0, ids.len())], Target::Logit(0))
                .unwrap();
            let rel = whole[0].rel.as_ref().unwrap();
            for (class, value) in rel.iter().enumerate() {
                let want = sentence.logits_f32[class] - f64::from(m32.b_out()[class]);
                let error = (value - want).abs();
                worst.1 = worst.1.max(error);
                assert!(
                    error <= 1e-5,
                    "{model_dir} sentence {}: class {class}",
                    sentence.sentence
                );
            }
            assert!(whole[0].irrel.as_ref().unwrap().iter().all(|&v| v == 0.0));
            assert!(whole[0].delta.unwrap().abs() <= 1e-5);
        }
        eprintln!(
            "{model_dir}: cell decomposition f64 vs by hand {:.1e}; f32 words' sum vs W h_T {:.1e}",
            worst.0, worst.1
        );
    }
}
