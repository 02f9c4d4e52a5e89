//! Input gradients of the LSTM classifier along straight paths from a baseline to an input, for
//! gradient × input (one point, α = 1, zero baseline) and integrated gradients (many points).
//!
//! Every point of every request is one row: the rows advance together, one matrix product per
//! step forward (`rows × H · H × 4H`) and one backward (`rows × 4H · 4H × H`). What the points of a
//! request share is computed once: the input products are W_ih b + α W_ih (x − b), so the two
//! products of the request serve all its points, and the directional derivative
//! (x_t − b_t) · ∂F/∂x_t = W_ih (x_t − b_t) · ∂F/∂z_t needs no gradient with respect to the
//! embedding itself. No weight gradients are computed.

use ndarray::{Array2, ArrayView1};

use super::backprop::{backward_step, forward_step};
use super::{LstmClassifier, PathGradients, PathRequest};
use crate::numeric::{Mat, Real, dot_f64, matmul, simd_dispatch};

impl<R: Real> LstmClassifier<R> {
    /// [`Classifier::path_gradients`](super::Classifier::path_gradients) for this LSTM.
    pub(super) fn lstm_path_gradients(
        &self,
        requests: &[PathRequest<'_, R>],
    ) -> Vec<PathGradients> {
        let (h, g4) = (self.hidden_size(), 4 * self.hidden_size());
        // Requests longest first, so that the rows still running at any step are a prefix.
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(requests[i].input.nrows()));
        let rows: Vec<(usize, usize)> = order
            .iter()
            .flat_map(|&i| (0..requests[i].alphas.len()).map(move |k| (i, k)))
            .collect();
        let len = |row: &(usize, usize)| requests[row.0].input.nrows();
        let longest = rows.first().map_or(0, len);
        let live: Vec<usize> = (0..longest)
            .map(|t| rows.iter().take_while(|row| len(row) > t).count())
            .collect();

        // Per request: W_ih (x − b) and W_ih b (none for the zero baseline), `(T, 4H)`.
        let products = |rows: &Array2<R>| -> Array2<R> {
            let mut out = Array2::<R>::zeros((rows.nrows(), g4));
            matmul(
                Mat::new(
                    rows.as_slice().expect("standard layout"),
                    rows.nrows(),
                    self.embedding_dim(),
                ),
                Mat::new(
                    self.w_ih_t.as_slice().expect("standard layout"),
                    self.embedding_dim(),
                    g4,
                ),
                out.as_slice_mut().expect("standard layout"),
                false,
            );
            out
        };
        let directions: Vec<Array2<R>> = requests
            .iter()
            .map(|r| {
                let difference = match r.baseline {
                    Some(b) => &r.input - &b,
                    None => r.input.to_owned(),
                };
                products(&difference.as_standard_layout().into_owned())
            })
            .collect();
        let baselines: Vec<Option<Array2<R>>> = requests
            .iter()
            .map(|r| {
                r.baseline
                    .map(|b| products(&b.as_standard_layout().into_owned()))
            })
            .collect();

        // Forward, keeping every step's gates, cells, their tanh and hidden states.
        let bias = self.bias.as_slice().expect("standard layout");
        let w_hh_t = Mat::new(self.w_hh_t.as_slice().expect("standard layout"), h, g4);
        let mut gates: Vec<Vec<R>> = Vec::with_capacity(longest);
        let mut cells: Vec<Vec<R>> = Vec::with_capacity(longest);
        let mut tanh_cells: Vec<Vec<R>> = Vec::with_capacity(longest);
        let mut hidden: Vec<Vec<R>> = Vec::with_capacity(longest);
        for t in 0..longest {
            let m = live[t];
            let mut z = Vec::with_capacity(m * g4);
            for &(i, k) in &rows[..m] {
                let step = t * g4..(t + 1) * g4;
                push_point_inputs(
                    &mut z,
                    R::from_f64(requests[i].alphas[k]),
                    &directions[i].as_slice().expect("standard layout")[step.clone()],
                    baselines[i]
                        .as_ref()
                        .map(|b| &b.as_slice().expect("standard layout")[step]),
                );
            }
            if t > 0 {
                matmul(Mat::new(&hidden[t - 1], m, h), w_hh_t, &mut z, true);
            }
            let (mut c, mut tanh_c, mut hid) = (
                vec![R::zero(); m * h],
                vec![R::zero(); m * h],
                vec![R::zero(); m * h],
            );
            let previous = (t > 0).then(|| &cells[t - 1][..m * h]);
            forward_step(&mut z, bias, previous, &mut c, &mut tanh_c, &mut hid);
            gates.push(z);
            cells.push(c);
            tanh_cells.push(tanh_c);
            hidden.push(hid);
        }

        // F at every point, and its gradient with respect to the last hidden state.
        let mut values = vec![0.0; rows.len()];
        let mut output_gradients = vec![R::zero(); rows.len() * h];
        for (r, row) in rows.iter().enumerate() {
            let last = len(row) - 1;
            let state = ArrayView1::from(&hidden[last][r * h..(r + 1) * h]);
            let (value, gradient) = requests[row.0]
                .output
                .value_and_gradient(&self.output(state, true));
            values[r] = value;
            for (j, slot) in output_gradients[r * h..(r + 1) * h].iter_mut().enumerate() {
                let total: f64 = gradient
                    .iter()
                    .zip(self.w_out.column(j))
                    .map(|(&g, &w)| g * w.as_f64())
                    .sum();
                *slot = R::from_f64(total);
            }
        }

        // Backward through time: a row joins at its last step.
        let w_hh = Mat::new(self.w_hh.as_slice().expect("standard layout"), g4, h);
        let mut d_hidden = vec![R::zero(); rows.len() * h];
        let mut d_cell = vec![R::zero(); rows.len() * h];
        let mut d_z = vec![R::zero(); rows.len() * g4];
        let mut directional: Vec<Vec<f64>> = rows.iter().map(|row| vec![0.0; len(row)]).collect();
        for t in (0..longest).rev() {
            let m = live[t];
            let joining = if t + 1 < longest { live[t + 1] } else { 0 };
            d_hidden[joining * h..m * h].copy_from_slice(&output_gradients[joining * h..m * h]);
            d_cell[joining * h..m * h].fill(R::zero());
            let previous = (t > 0).then(|| &cells[t - 1][..m * h]);
            backward_step(
                h,
                &gates[t],
                previous,
                &tanh_cells[t],
                &d_hidden[..m * h],
                &mut d_cell[..m * h],
                &mut d_z[..m * g4],
            );
            for (r, &(i, _)) in rows[..m].iter().enumerate() {
                let direction =
                    &directions[i].as_slice().expect("standard layout")[t * g4..(t + 1) * g4];
                directional[r][t] = dot_f64(&d_z[r * g4..(r + 1) * g4], direction);
            }
            if t > 0 {
                matmul(
                    Mat::new(&d_z[..m * g4], m, g4),
                    w_hh,
                    &mut d_hidden[..m * h],
                    false,
                );
            }
        }

        // Back to the requests' order.
        let mut results: Vec<PathGradients> = requests
            .iter()
            .map(|r| PathGradients {
                values: vec![0.0; r.alphas.len()],
                directional: vec![0.0; r.alphas.len() * r.input.nrows()],
                len: r.input.nrows(),
            })
            .collect();
        for ((&(i, k), value), row_directional) in rows.iter().zip(values).zip(directional) {
            let result = &mut results[i];
            result.values[k] = value;
            result.directional[k * result.len..(k + 1) * result.len]
                .copy_from_slice(&row_directional);
        }
        results
    }
}

simd_dispatch! {
    /// Appends the input products of the point α: W_ih b + α W_ih (x − b), or α W_ih x.
    fn push_point_inputs<R: Real>(z: &mut Vec<R>, alpha: R, direction: &[R], baseline: Option<&[R]>) {
        match baseline {
            Some(baseline) => z.extend(direction.iter().zip(baseline).map(|(&d, &b)| b + alpha * d)),
            None => z.extend(direction.iter().map(|&d| alpha * d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2};

    use super::*;
    use crate::model::{Classifier, OutputFunction};
    use crate::numeric::SplitMix64;

    /// log p(class) of the softmax of the logits, as the leave-one-out and gradient targets use.
    struct LogProbability(usize);

    impl OutputFunction for LogProbability {
        fn value_and_gradient(&self, logits: &[f64]) -> (f64, Vec<f64>) {
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
            let value = logits[self.0] - max - total.ln();
            let gradient = logits
                .iter()
                .enumerate()
                .map(|(k, l)| f64::from(u8::from(k == self.0)) - (l - max).exp() / total)
                .collect();
            (value, gradient)
        }
    }

    fn random_rows(rng: &mut SplitMix64, len: usize, e: usize) -> Array2<f64> {
        Array2::from_shape_fn((len, e), |_| rng.normal())
    }

    /// Every coordinate of ∂F/∂x at x, for sentences of three lengths in one batch, against
    /// central differences: with the baseline x − e_d the directional derivative is the gradient's
    /// coordinate d at every token.
    #[test]
    fn input_gradients_match_central_differences() {
        let model = LstmClassifier::<f64>::seeded_random(9, 4, 5, 3, 17);
        let mut rng = SplitMix64(8);
        let inputs: Vec<Array2<f64>> = [3, 1, 5]
            .iter()
            .map(|&len| random_rows(&mut rng, len, 4))
            .collect();
        let output = LogProbability(2);
        let f = |x: ArrayView2<'_, f64>| output.value_and_gradient(&model.logits(&[x])[0]).0;
        for d in 0..4 {
            let baselines: Vec<Array2<f64>> = inputs
                .iter()
                .map(|x| {
                    let mut b = x.clone();
                    b.column_mut(d).mapv_inplace(|v| v - 1.0);
                    b
                })
                .collect();
            let requests: Vec<PathRequest<'_, f64>> = inputs
                .iter()
                .zip(&baselines)
                .map(|(x, b)| PathRequest {
                    input: x.view(),
                    baseline: Some(b.view()),
                    alphas: &[1.0],
                    output: &output,
                })
                .collect();
            let results = model.path_gradients(&requests);
            for (x, result) in inputs.iter().zip(&results) {
                assert!((result.values[0] - f(x.view())).abs() < 1e-12);
                for t in 0..x.nrows() {
                    let step = 1e-5;
                    let (mut plus, mut minus) = (x.clone(), x.clone());
                    plus[(t, d)] += step;
                    minus[(t, d)] -= step;
                    let numeric = (f(plus.view()) - f(minus.view())) / (2.0 * step);
                    let exact = result.at(0)[t];
                    let relative =
                        (numeric - exact).abs() / numeric.abs().max(exact.abs()).max(1e-3);
                    assert!(relative < 1e-6, "t {t}, d {d}: {exact} vs {numeric}");
                }
            }
        }
    }

    /// Along a path, each point's value is F at that point and each directional derivative is
    /// the derivative of F(x(α) + ε (x − b) at token t) in ε.
    #[test]
    fn path_points_match_central_differences() {
        let model = LstmClassifier::<f64>::seeded_random(9, 3, 6, 2, 5);
        let mut rng = SplitMix64(2);
        let x = random_rows(&mut rng, 4, 3);
        let b = random_rows(&mut rng, 4, 3);
        let output = LogProbability(0);
        let f = |p: &Array2<f64>| output.value_and_gradient(&model.logits(&[p.view()])[0]).0;
        let alphas = [0.0, 0.25, 0.9];
        for baseline in [None, Some(b.view())] {
            let base = baseline.map_or_else(|| Array2::zeros(x.raw_dim()), |b| b.to_owned());
            let result = &model.path_gradients(&[PathRequest {
                input: x.view(),
                baseline,
                alphas: &alphas,
                output: &output,
            }])[0];
            for (k, &alpha) in alphas.iter().enumerate() {
                let point = &base + &((&x - &base) * alpha);
                assert!((result.values[k] - f(&point)).abs() < 1e-12);
                for t in 0..4 {
                    let step = 1e-5;
                    let shift = |sign: f64| {
                        let mut p = point.clone();
                        let delta = (&x.row(t) - &base.row(t)) * (sign * step);
                        p.row_mut(t).zip_mut_with(&delta, |a, d| *a += d);
                        f(&p)
                    };
                    let numeric = (shift(1.0) - shift(-1.0)) / (2.0 * step);
                    let exact = result.at(k)[t];
                    let relative =
                        (numeric - exact).abs() / numeric.abs().max(exact.abs()).max(1e-3);
                    assert!(relative < 1e-6, "α {alpha}, t {t}: {exact} vs {numeric}");
                }
            }
        }
    }
}
