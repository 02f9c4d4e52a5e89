//! L2-regularised logistic regression on sparse features (bags of n-grams), fitted by L-BFGS in
//! f64: the paper's gold-standard linear models.

use std::collections::HashMap;

/// One example: feature indices with their values, and the class (0 negative, 1 positive).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseExample {
    pub features: Vec<(usize, f64)>,
    pub label: usize,
}

/// A fitted model: one weight per feature and an unregularised intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub l2: f64,
    /// L-BFGS iterations used.
    pub iterations: usize,
}

impl LogisticRegression {
    /// The logit of class 1.
    pub fn logit(&self, example: &SparseExample) -> f64 {
        self.intercept
            + example
                .features
                .iter()
                .map(|&(k, v)| self.weights[k] * v)
                .sum::<f64>()
    }

    pub fn accuracy(&self, examples: &[SparseExample]) -> f64 {
        let correct = examples
            .iter()
            .filter(|e| usize::from(self.logit(e) > 0.0) == e.label)
            .count();
        correct as f64 / examples.len().max(1) as f64
    }
}

/// Mean log-loss plus `l2 / 2 · ‖w‖²` and its gradient (intercept last).
fn objective(examples: &[SparseExample], l2: f64, parameters: &[f64], gradient: &mut [f64]) -> f64 {
    let n = parameters.len() - 1;
    let intercept = parameters[n];
    gradient.fill(0.0);
    let mut loss = 0.0;
    for example in examples {
        let z = intercept
            + example
                .features
                .iter()
                .map(|&(k, v)| parameters[k] * v)
                .sum::<f64>();
        let sign = if example.label == 1 { 1.0 } else { -1.0 };
        let margin = sign * z;
        // log(1 + e^(−m)) without overflow, and its derivative −σ(−m).
        loss += if margin > 0.0 {
            (-margin).exp().ln_1p()
        } else {
            -margin + margin.exp().ln_1p()
        };
        let slope = -sign / (1.0 + margin.exp());
        for &(k, v) in &example.features {
            gradient[k] += slope * v;
        }
        gradient[n] += slope;
    }
    let scale = 1.0 / examples.len().max(1) as f64;
    loss *= scale;
    for g in gradient.iter_mut() {
        *g *= scale;
    }
    for k in 0..n {
        loss += 0.5 * l2 * parameters[k] * parameters[k];
        gradient[k] += l2 * parameters[k];
    }
    loss
}

/// Fits by L-BFGS (memory 10, backtracking line search) until the gradient's largest entry is
/// below 1e-7 or 1000 iterations.
pub fn fit(examples: &[SparseExample], features: usize, l2: f64) -> LogisticRegression {
    const MEMORY: usize = 10;
    let mut x = vec![0.0; features + 1];
    let mut gradient = vec![0.0; features + 1];
    let mut value = objective(examples, l2, &x, &mut gradient);
    let mut history: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut iterations = 0;
    while iterations < 1000 && gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs())) > 1e-7 {
        iterations += 1;
        // Two-loop recursion: direction = −H·g.
        let mut q = gradient.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &q);
            for (qk, yk) in q.iter_mut().zip(y) {
                *qk -= alpha * yk;
            }
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.last() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &q);
            for (qk, sk) in q.iter_mut().zip(s) {
                *qk += (alpha - beta) * sk;
            }
        }
        let direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&direction, &gradient);
        if slope >= 0.0 {
            history.clear();
            continue;
        }
        let mut step = if history.is_empty() {
            1.0 / gradient.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0)
        } else {
            1.0
        };
        let mut candidate_gradient = vec![0.0; features + 1];
        let (candidate, candidate_value) = loop {
            let candidate: Vec<f64> = x
                .iter()
                .zip(&direction)
                .map(|(a, d)| a + step * d)
                .collect();
            let v = objective(examples, l2, &candidate, &mut candidate_gradient);
            if v <= value + 1e-4 * step * slope || step < 1e-20 {
                break (candidate, v);
            }
            step *= 0.5;
        };
        let s: Vec<f64> = candidate.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = candidate_gradient
            .iter()
            .zip(&gradient)
            .map(|(a, b)| a - b)
            .collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            history.push((s, y, 1.0 / sy));
            if history.len() > MEMORY {
                history.remove(0);
            }
        }
        let improvement = value - candidate_value;
        x = candidate;
        gradient = candidate_gradient;
        value = candidate_value;
        if improvement.abs() < 1e-15 {
            break;
        }
    }
    let intercept = x.pop().unwrap_or(0.0);
    LogisticRegression {
        weights: x,
        intercept,
        l2,
        iterations,
    }
}

/// Maps n-grams of normalised tokens to feature indices (built from the training examples).
#[derive(Debug, Clone, Default)]
pub struct NgramFeatures {
    pub max_n: usize,
    pub index: HashMap<String, usize>,
    /// Feature index → (n-gram joined by spaces, n).
    pub terms: Vec<(String, usize)>,
}

impl NgramFeatures {
    pub fn new(max_n: usize) -> Self {
        Self {
            max_n,
            ..Self::default()
        }
    }

    /// The n-grams (1 ≤ n ≤ max_n) of a token sequence.
    fn ngrams(&self, tokens: &[String]) -> Vec<(String, usize)> {
        let mut grams = Vec::new();
        for n in 1..=self.max_n {
            for window in tokens.windows(n) {
                grams.push((window.join(" "), n));
            }
        }
        grams
    }

    /// Bag-of-n-grams features, binary (presence) or with `counts` the number of occurrences;
    /// with `grow`, unseen n-grams get new indices, otherwise they are dropped.
    pub fn featurize(&mut self, tokens: &[String], grow: bool, counts: bool) -> Vec<(usize, f64)> {
        let mut features: Vec<(usize, f64)> = Vec::new();
        for (gram, n) in self.ngrams(tokens) {
            let index = match self.index.get(&gram) {
                Some(&k) => k,
                None if grow => {
                    let k = self.terms.len();
                    self.index.insert(gram.clone(), k);
                    self.terms.push((gram, n));
                    k
                }
                None => continue,
            };
            features.push((index, 1.0));
        }
        features.sort_unstable_by_key(|&(k, _)| k);
        let mut merged: Vec<(usize, f64)> = Vec::with_capacity(features.len());
        for (k, v) in features {
            match merged.last_mut() {
                Some((last, total)) if *last == k => {
                    if counts {
                        *total += v;
                    }
                }
                _ => merged.push((k, v)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of the objective against central differences.
    #[test]
    fn objective_gradient_is_exact() {
        let examples = vec![
            SparseExample {
                features: vec![(0, 1.0), (2, 1.0)],
                label: 1,
            },
            SparseExample {
                features: vec![(1, 1.0)],
                label: 0,
            },
            SparseExample {
                features: vec![(1, 1.0), (2, 2.0)],
                label: 1,
            },
        ];
        let x = vec![0.3, -0.7, 0.2, 0.1];
        let mut gradient = vec![0.0; 4];
        objective(&examples, 0.5, &x, &mut gradient);
        let mut scratch = vec![0.0; 4];
        for k in 0..4 {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[k] += 1e-6;
            minus[k] -= 1e-6;
            let numeric = (objective(&examples, 0.5, &plus, &mut scratch)
                - objective(&examples, 0.5, &minus, &mut scratch))
                / 2e-6;
            assert!(
                (numeric - gradient[k]).abs() < 1e-8,
                "{k}: {numeric} vs {}",
                gradient[k]
            );
        }
    }

    /// At the optimum the gradient vanishes: w = −(1/(l2·N)) Σ slope·x, checked through the
    /// fitted model's own objective gradient, and separable data is classified.
    #[test]
    fn fit_reaches_the_optimum() {
        let examples: Vec<SparseExample> = (0..40)
            .map(|k| SparseExample {
                features: vec![(k % 4, 1.0), (4 + k % 3, 1.0)],
                label: usize::from(k % 4 < 2),
            })
            .collect();
        let model = fit(&examples, 7, 0.01);
        let mut parameters = model.weights.clone();
        parameters.push(model.intercept);
        let mut gradient = vec![0.0; 8];
        objective(&examples, 0.01, &parameters, &mut gradient);
        assert!(gradient.iter().all(|g| g.abs() < 1e-6), "{gradient:?}");
        assert_eq!(model.accuracy(&examples), 1.0);
    }

    #[test]
    fn ngram_features() {
        let mut features = NgramFeatures::new(2);
        let tokens: Vec<String> = ["not", "bad", "not"].map(String::from).to_vec();
        let f = features.featurize(&tokens, true, false);
        assert_eq!(f.len(), 4); // not, bad, "not bad", "bad not"
        assert_eq!(features.featurize(&tokens, false, true)[0], (0, 2.0));
        assert_eq!(features.terms[2], ("not bad".to_string(), 2));
        let unseen: Vec<String> = ["good", "bad"].map(String::from).to_vec();
        assert_eq!(features.featurize(&unseen, false, false), vec![(1, 1.0)]);
    }
}
