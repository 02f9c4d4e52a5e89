//! Gradient-based word attributions, with Captum's definitions: gradient × input
//! (`InputXGradient`) and integrated gradients (`IntegratedGradients`, Sundararajan et al. 2017).
//! Both score a word as Σ_d (x − b)_{t,d} · ∂F/∂x_{t,d} summed over points of the path from the
//! baseline b to the input x, and a phrase as the sum of its words, as the paper does.

use ndarray::{Array2, ArrayView2};

use super::corpus::cut_batches;
use super::{
    Attribution, AttributionError, ROWS_PER_BATCH, ResolvedTarget, SentenceSpans, SpanScore,
    Target, check_sentences, embed_all, summed_scores,
};
use crate::model::{Classifier, PathRequest};
use crate::numeric::Real;

/// The targets of a batch of sentences, resolved on their logits when the target needs the
/// prediction (otherwise without a forward pass).
fn resolve<R: Real>(
    model: &dyn Classifier<R>,
    target: Target,
    inputs: &[Array2<R>],
) -> Vec<ResolvedTarget> {
    if target.depends_on_prediction() {
        let views: Vec<ArrayView2<'_, R>> = inputs.iter().map(|x| x.view()).collect();
        model
            .logits(&views)
            .iter()
            .map(|logits| target.resolve(logits))
            .collect()
    } else {
        let resolved = target.resolve(&vec![0.0; model.num_classes()]);
        vec![resolved; inputs.len()]
    }
}

/// Gradient × input: word t's score is x_t · ∂F/∂x_t at the input.
pub struct GradientXInput<'m, R: Real> {
    model: &'m dyn Classifier<R>,
}

impl<'m, R: Real> GradientXInput<'m, R> {
    pub fn new(model: &'m dyn Classifier<R>) -> Self {
        Self { model }
    }
}

impl<R: Real> Attribution for GradientXInput<'_, R> {
    fn method(&self) -> &'static str {
        "gradient_x_input"
    }

    fn rows(&self, _len: usize, _spans: usize) -> usize {
        1
    }

    fn attribute(
        &self,
        sentences: &[SentenceSpans<'_>],
        target: Target,
    ) -> Result<Vec<Vec<SpanScore>>, AttributionError> {
        check_sentences(sentences, self.model.vocab_size())?;
        let mut results = Vec::with_capacity(sentences.len());
        for range in cut_batches(sentences.iter().map(|_| 1), ROWS_PER_BATCH) {
            let batch = &sentences[range];
            let inputs = embed_all(self.model, batch)?;
            let targets = resolve(self.model, target, &inputs);
            let requests: Vec<PathRequest<'_, R>> = inputs
                .iter()
                .zip(&targets)
                .map(|(input, output)| PathRequest {
                    input: input.view(),
                    baseline: None,
                    alphas: &[1.0],
                    output,
                })
                .collect();
            for (sentence, gradients) in batch.iter().zip(self.model.path_gradients(&requests)) {
                results.push(summed_scores(gradients.at(0), sentence.spans, None));
            }
        }
        Ok(results)
    }
}

/// How the path integral of integrated gradients is approximated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quadrature {
    /// Gauss-Legendre nodes and weights on [0, 1] (Captum's default, `gausslegendre`).
    #[default]
    #[serde(rename = "gausslegendre")]
    GaussLegendre,
    /// Captum's `riemann_trapezoid`: α_k = k / (n − 1), weights 1/n with the two ends halved, so
    /// the weights sum to 1 − 1/n.
    RiemannTrapezoid,
}

impl Quadrature {
    pub fn name(self) -> &'static str {
        match self {
            Quadrature::GaussLegendre => "gausslegendre",
            Quadrature::RiemannTrapezoid => "riemann_trapezoid",
        }
    }

    /// The points α_k in [0, 1] and their weights, for `steps` points.
    pub fn points(self, steps: usize) -> (Vec<f64>, Vec<f64>) {
        match self {
            Quadrature::GaussLegendre => {
                let (nodes, weights) = gauss_legendre(steps);
                (
                    nodes.iter().map(|x| 0.5 * (1.0 + x)).collect(),
                    weights.iter().map(|w| 0.5 * w).collect(),
                )
            }
            Quadrature::RiemannTrapezoid => {
                let n = steps as f64;
                let alphas = (0..steps).map(|k| k as f64 / (n - 1.0)).collect();
                let weights = (0..steps)
                    .map(|k| {
                        if k == 0 || k + 1 == steps {
                            0.5 / n
                        } else {
                            1.0 / n
                        }
                    })
                    .collect();
                (alphas, weights)
            }
        }
    }
}

/// Nodes (ascending) and weights of the n-point Gauss-Legendre rule on [−1, 1], as
/// `numpy.polynomial.legendre.leggauss`: Newton's method on the Legendre polynomial P_n from the
/// usual cosine guesses, which converges to full f64 precision in a few steps.
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_(n−1)(x) by the three-term recurrence.
            let (mut p, mut previous) = (1.0, 0.0);
            for j in 1..=n {
                let j = j as f64;
                (p, previous) = (((2.0 * j - 1.0) * x * p - (j - 1.0) * previous) / j, p);
            }
            derivative = n as f64 * (x * p - previous) / (x * x - 1.0);
            let step = p / derivative;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        nodes[n - 1 - i] = x;
        weights[n - 1 - i] = 2.0 / ((1.0 - x * x) * derivative * derivative);
    }
    (nodes, weights)
}

/// Integrated gradients: word t's score is (x_t − b_t) · Σ_k w_k ∂F/∂x_t(b + α_k (x − b)), and every
/// row carries the sentence's completeness delta Σ_t score_t − (F(x) − F(b)).
pub struct IntegratedGradients<'m, R: Real> {
    model: &'m dyn Classifier<R>,
    /// The token whose embedding row is the baseline at every position; zero rows without one.
    baseline_token: Option<usize>,
    alphas: Vec<f64>,
    weights: Vec<f64>,
    variant: String,
}

impl<'m, R: Real> IntegratedGradients<'m, R> {
    /// `baseline_token` is a row of the embedding (`None`: the zero baseline); `variant` names the
    /// options in the `variant` column.
    pub fn new(
        model: &'m dyn Classifier<R>,
        steps: usize,
        quadrature: Quadrature,
        baseline_token: Option<usize>,
        variant: String,
    ) -> Self {
        let (alphas, weights) = quadrature.points(steps);
        Self {
            model,
            baseline_token,
            alphas,
            weights,
            variant,
        }
    }
}

impl<R: Real> Attribution for IntegratedGradients<'_, R> {
    fn method(&self) -> &'static str {
        "integrated_gradients"
    }

    fn variant(&self) -> Option<String> {
        Some(self.variant.clone())
    }

    fn rows(&self, _len: usize, _spans: usize) -> usize {
        self.alphas.len()
    }

    fn attribute(
        &self,
        sentences: &[SentenceSpans<'_>],
        target: Target,
    ) -> Result<Vec<Vec<SpanScore>>, AttributionError> {
        check_sentences(sentences, self.model.vocab_size())?;
        let mut results = Vec::with_capacity(sentences.len());
        let steps = self.alphas.len();
        for range in cut_batches(sentences.iter().map(|_| steps), ROWS_PER_BATCH) {
            let batch = &sentences[range];
            let inputs = embed_all(self.model, batch)?;
            let baselines = inputs
                .iter()
                .map(|x| match self.baseline_token {
                    Some(id) => self.model.embed(&vec![id; x.nrows()]),
                    None => Ok(Array2::zeros(x.raw_dim())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let endpoints: Vec<ArrayView2<'_, R>> =
                inputs.iter().chain(&baselines).map(|x| x.view()).collect();
            let logits = self.model.logits(&endpoints);
            let (input_logits, baseline_logits) = logits.split_at(inputs.len());
            let targets: Vec<ResolvedTarget> =
                input_logits.iter().map(|l| target.resolve(l)).collect();
            let requests: Vec<PathRequest<'_, R>> = inputs
                .iter()
                .zip(&baselines)
                .zip(&targets)
                .map(|((input, baseline), output)| PathRequest {
                    input: input.view(),
                    baseline: self.baseline_token.map(|_| baseline.view()),
                    alphas: &self.alphas,
                    output,
                })
                .collect();
            let gradients = self.model.path_gradients(&requests);
            for (k, (sentence, path)) in batch.iter().zip(gradients).enumerate() {
                let mut words = vec![0.0; path.len];
                for (point, &weight) in self.weights.iter().enumerate() {
                    for (word, &d) in words.iter_mut().zip(path.at(point)) {
                        *word += weight * d;
                    }
                }
                let change =
                    targets[k].value(&input_logits[k]) - targets[k].value(&baseline_logits[k]);
                let delta = words.iter().sum::<f64>() - change;
                results.push(summed_scores(&words, sentence.spans, Some(delta)));
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The n-point rule integrates polynomials of degree 2n − 1 exactly, and its 5-point nodes are
    /// the closed-form roots of P_5.
    #[test]
    fn gauss_legendre_rules_are_exact_to_their_degree() {
        for n in [1, 2, 5, 17, 50] {
            let (nodes, weights) = gauss_legendre(n);
            assert!(nodes.windows(2).all(|w| w[0] < w[1]));
            for degree in 0..2 * n {
                let integral: f64 = nodes
                    .iter()
                    .zip(&weights)
                    .map(|(x, w)| w * x.powi(degree as i32))
                    .sum();
                let exact = if degree % 2 == 1 {
                    0.0
                } else {
                    2.0 / (degree as f64 + 1.0)
                };
                assert!((integral - exact).abs() < 1e-13, "n {n}, degree {degree}");
            }
        }
        let (nodes, _) = gauss_legendre(5);
        let root = (5.0_f64 - 2.0 * (10.0_f64 / 7.0).sqrt()).sqrt() / 3.0;
        assert!((nodes[3] - root).abs() < 1e-15);
        assert!(nodes[2].abs() < 1e-16);
    }

    #[test]
    fn captum_trapezoid_weights_miss_one_step() {
        let (alphas, weights) = Quadrature::RiemannTrapezoid.points(50);
        assert_eq!((alphas[0], alphas[49]), (0.0, 1.0));
        assert!((weights.iter().sum::<f64>() - 0.98).abs() < 1e-15);
        assert_eq!((weights[0], weights[1]), (0.01, 0.02));
    }
}
