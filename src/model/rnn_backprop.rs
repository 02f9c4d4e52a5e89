//! Exact backpropagation through time for [`RnnClassifier`]: every layer and direction, LSTM and
//! GRU cells, from a gradient of the logits to the embedding rows and, when asked, every weight.

use ndarray::{Array2, ArrayView2, Axis, s};

use super::backprop::{Gradients, SparseRows};
use super::rnn::{
    CellKind, DirectionTrace, LayerTrace, RnnClassifier, RnnTrace, previous_position,
    processing_order,
};
use super::{PathGradients, PathRequest};
use crate::numeric::{Mat, Real, dot_f64, matmul, simd_dispatch};

impl<R: Real> RnnClassifier<R> {
    /// ∂/∂inputs `(T, E)` of `d_logits · logits`; when `weights` is given, the weight gradients are
    /// added to it, one buffer per tensor of [`Architecture::tensor_names`](super::Architecture::tensor_names)
    /// after `embed.weight`, row-major.
    pub fn backward(
        &self,
        trace: &RnnTrace<R>,
        d_logits: &[R],
        mut weights: Option<&mut [Vec<R>]>,
    ) -> Array2<R> {
        let len = trace.len();
        let mut d_output = Array2::<R>::zeros((len, trace.features.len()));
        if let Some(gradients) = weights.as_deref_mut() {
            self.output_gradients(&trace.features, d_logits, gradients);
        }
        self.feature_gradients(d_logits, &mut d_output, 0, len);
        self.backward_layers(trace.inputs.view(), &trace.layers, 1, d_output, weights)
    }

    /// Gradients of `scale × Σ −log p(label)` over sentences of one length, with respect to every
    /// weight and the embedding rows they use; every step of every layer is one matrix product for
    /// the whole batch, forward and backward.
    pub fn batch_gradients(
        &self,
        sentences: &[&[usize]],
        labels: &[usize],
        scale: R,
    ) -> Gradients<R> {
        let (batch, len) = (sentences.len(), sentences[0].len());
        let ids: Vec<usize> = sentences.iter().flat_map(|s| s.iter().copied()).collect();
        let inputs = self.embedding().select(Axis(0), &ids);
        let layers = self.forward_layers(inputs.view(), batch);
        let tensors = self.tensors();
        let mut gradients = Gradients {
            embedding: SparseRows::new(self.embedding_dim()),
            dense: tensors[1..]
                .iter()
                .map(|t| vec![R::zero(); t.len()])
                .collect(),
            loss: 0.0,
            correct: 0,
        };
        let mut d_output =
            Array2::<R>::zeros((batch * len, layers.last().expect("a layer").output.ncols()));
        for (b, &label) in labels.iter().enumerate() {
            let features = self.features(&layers, b, len);
            let logits = self.output(&features, true);
            let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
            gradients.loss += top + total.ln() - logits[label];
            let predicted = (0..logits.len())
                .fold(0, |best, k| if logits[k] > logits[best] { k } else { best });
            gradients.correct += usize::from(predicted == label);
            let d_logits: Vec<R> = logits
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    let p = (l - top).exp() / total;
                    scale * R::from_f64(p - f64::from(u8::from(k == label)))
                })
                .collect();
            self.output_gradients(&features, &d_logits, &mut gradients.dense);
            self.feature_gradients(&d_logits, &mut d_output, b, len);
        }
        let d_inputs = self.backward_layers(
            inputs.view(),
            &layers,
            batch,
            d_output,
            Some(&mut gradients.dense),
        );
        for (row, &id) in ids.iter().enumerate() {
            for (g, &d) in gradients
                .embedding
                .row(id)
                .iter_mut()
                .zip(d_inputs.row(row))
            {
                *g += d;
            }
        }
        gradients
    }

    /// [`Classifier::path_gradients`](super::Classifier::path_gradients) of one request, its
    /// points one batch: every step of every layer is one matrix product for all of them.
    pub(super) fn path_gradients_of(&self, request: &PathRequest<'_, R>) -> PathGradients {
        let input = request.input.as_standard_layout().into_owned();
        let len = input.nrows();
        let points = request.alphas.len();
        if points == 0 {
            return PathGradients {
                values: Vec::new(),
                directional: Vec::new(),
                len,
            };
        }
        let baseline = request
            .baseline
            .map_or_else(|| Array2::zeros(input.raw_dim()), |b| b.to_owned());
        let difference = &input - &baseline;
        let mut rows = Array2::<R>::zeros((points * len, input.ncols()));
        for (p, &alpha) in request.alphas.iter().enumerate() {
            rows.slice_mut(s![p * len..(p + 1) * len, ..])
                .assign(&(&baseline + &(&difference * R::from_f64(alpha))));
        }
        let layers = self.forward_layers(rows.view(), points);
        let width = layers.last().expect("a layer").output.ncols();
        let mut d_output = Array2::<R>::zeros((points * len, width));
        let mut values = Vec::with_capacity(points);
        for p in 0..points {
            let features = self.features(&layers, p, len);
            let (value, gradient) = request
                .output
                .value_and_gradient(&self.output(&features, true));
            values.push(value);
            let gradient: Vec<R> = gradient.iter().map(|&g| R::from_f64(g)).collect();
            self.feature_gradients(&gradient, &mut d_output, p, len);
        }
        let d_inputs = self.backward_layers(rows.view(), &layers, points, d_output, None);
        let mut directional = Vec::with_capacity(points * len);
        for p in 0..points {
            for t in 0..len {
                directional.push(dot_f64(
                    difference.row(t).as_slice().expect("standard layout"),
                    d_inputs
                        .row(p * len + t)
                        .as_slice()
                        .expect("standard layout"),
                ));
            }
        }
        PathGradients {
            values,
            directional,
            len,
        }
    }

    /// Adds d_logits ⊗ features and d_logits to the output layer's gradients (the last two).
    fn output_gradients(&self, features: &[R], d_logits: &[R], gradients: &mut [Vec<R>]) {
        let width = features.len();
        let count = gradients.len();
        let (w_out, b_out) = gradients[count - 2..].split_at_mut(1);
        for (c, &d) in d_logits.iter().enumerate() {
            for (g, &f) in w_out[0][c * width..(c + 1) * width]
                .iter_mut()
                .zip(features)
            {
                *g += d * f;
            }
            b_out[0][c] += d;
        }
    }

    /// Writes W_outᵀ d_logits into the final states' rows of sentence `b` of `d_output`.
    fn feature_gradients(&self, d_logits: &[R], d_output: &mut Array2<R>, b: usize, len: usize) {
        let h = self.hidden_size();
        let w_out = self.w_out();
        for j in 0..d_output.ncols() {
            let d_feature = d_logits
                .iter()
                .enumerate()
                .fold(R::zero(), |acc, (c, &d)| acc + d * w_out[[c, j]]);
            let row = if j < h { b * len + len - 1 } else { b * len };
            d_output[[row, j]] = d_feature;
        }
    }

    /// Backpropagation from ∂/∂(top layer's output) down to the inputs, for a batch of `batch`
    /// sentences of one length; weight gradients added to `weights` when given.
    fn backward_layers(
        &self,
        inputs: ArrayView2<'_, R>,
        layers: &[LayerTrace<R>],
        batch: usize,
        mut d_output: Array2<R>,
        mut weights: Option<&mut [Vec<R>]>,
    ) -> Array2<R> {
        let rows = inputs.nrows();
        let len = rows / batch;
        let h = self.hidden_size();
        let directions = self.architecture().directions();
        for (k, layer) in self.layers().iter().enumerate().rev() {
            let input = if k == 0 {
                inputs
            } else {
                layers[k - 1].output.view()
            };
            let input = input.as_standard_layout();
            let in_width = input.ncols();
            let mut d_input = Array2::<R>::zeros((rows, in_width));
            for (d, w) in layer.iter().enumerate() {
                let direction = &layers[k].directions[d];
                let d_hidden = d_output.slice(s![.., d * h..(d + 1) * h]).to_owned();
                let (d_in, d_rec) = self.direction_backward(w, direction, d_hidden, batch, d == 1);
                let gh = d_in.ncols();
                matmul(
                    Mat::new(d_in.as_slice().expect("standard layout"), rows, gh),
                    Mat::new(w.w_ih.as_slice().expect("standard layout"), gh, in_width),
                    d_input.as_slice_mut().expect("standard layout"),
                    true,
                );
                if let Some(gradients) = weights.as_deref_mut() {
                    let base = 4 * (k * directions + d);
                    let mut previous = Array2::<R>::zeros((rows, h));
                    for b in 0..batch {
                        for t in 0..len {
                            if let Some(p) = previous_position(t, len, d == 1) {
                                previous
                                    .row_mut(b * len + t)
                                    .assign(&direction.hidden.row(b * len + p));
                            }
                        }
                    }
                    matmul(
                        Mat::new(d_in.as_slice().expect("standard layout"), rows, gh).t(),
                        Mat::new(input.as_slice().expect("standard layout"), rows, in_width),
                        &mut gradients[base],
                        true,
                    );
                    matmul(
                        Mat::new(d_rec.as_slice().expect("standard layout"), rows, gh).t(),
                        Mat::new(previous.as_slice().expect("standard layout"), rows, h),
                        &mut gradients[base + 1],
                        true,
                    );
                    for row in 0..rows {
                        for (g, &v) in gradients[base + 2].iter_mut().zip(d_in.row(row)) {
                            *g += v;
                        }
                        for (g, &v) in gradients[base + 3].iter_mut().zip(d_rec.row(row)) {
                            *g += v;
                        }
                    }
                }
            }
            d_output = d_input;
        }
        d_output
    }

    /// BPTT through one direction of a batch given ∂/∂h from above: the gradients of its input
    /// products and of its recurrent products (with their biases), `(batch·T, G·H)` each.
    fn direction_backward(
        &self,
        w: &super::rnn::DirectionWeights<R>,
        direction: &DirectionTrace<R>,
        d_hidden: Array2<R>,
        batch: usize,
        backward: bool,
    ) -> (Array2<R>, Array2<R>) {
        let (rows, h) = (d_hidden.nrows(), self.hidden_size());
        let len = rows / batch;
        let gh = self.architecture().cell.gates() * h;
        let mut d_in = Array2::<R>::zeros((rows, gh));
        let mut d_rec = Array2::<R>::zeros((rows, gh));
        let mut carry_h = vec![R::zero(); batch * h];
        let mut carry_c = vec![R::zero(); batch * h];
        let mut step_rec = vec![R::zero(); batch * gh];
        let mut next_carry = vec![R::zero(); batch * h];
        let mut dh = vec![R::zero(); h];
        let zeros = vec![R::zero(); h];
        let b_hh = w.b_hh.as_slice().expect("standard layout");
        for t in processing_order(len, backward).rev() {
            let previous = previous_position(t, len, backward);
            next_carry.fill(R::zero());
            for b in 0..batch {
                let row = b * len + t;
                let gate = row_of(&direction.gates, row);
                for ((d, &above), &carried) in dh
                    .iter_mut()
                    .zip(row_of(&d_hidden, row))
                    .zip(&carry_h[b * h..(b + 1) * h])
                {
                    *d = above + carried;
                }
                let mut d_in_row = d_in.row_mut(row);
                let d_in_row = d_in_row.as_slice_mut().expect("standard layout");
                let d_rec_row = &mut step_rec[b * gh..(b + 1) * gh];
                match self.architecture().cell {
                    CellKind::Lstm => {
                        let cell = row_of(&direction.cells, row);
                        let previous_cell =
                            previous.map_or(&zeros[..], |p| row_of(&direction.cells, b * len + p));
                        lstm_step_backward(
                            (gate, cell, previous_cell, &dh),
                            &mut carry_c[b * h..(b + 1) * h],
                            d_in_row,
                        );
                        d_rec_row.copy_from_slice(d_in_row);
                    }
                    CellKind::Gru => {
                        let previous_hidden =
                            previous.map_or(&zeros[..], |p| row_of(&direction.hidden, b * len + p));
                        let recurrent = row_of(&direction.recurrent_products, row);
                        gru_step_backward(
                            (
                                gate,
                                previous_hidden,
                                &recurrent[2 * h..],
                                &b_hh[2 * h..],
                                &dh,
                            ),
                            &mut next_carry[b * h..(b + 1) * h],
                            d_in_row,
                            d_rec_row,
                        );
                    }
                }
                d_rec
                    .row_mut(row)
                    .as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(d_rec_row);
            }
            matmul(
                Mat::new(&step_rec, batch, gh),
                Mat::new(w.w_hh.as_slice().expect("standard layout"), gh, h),
                &mut next_carry,
                true,
            );
            std::mem::swap(&mut carry_h, &mut next_carry);
        }
        (d_in, d_rec)
    }
}

/// Row `row` of a standard-layout matrix.
fn row_of<R>(m: &Array2<R>, row: usize) -> &[R] {
    m.row(row).to_slice().expect("standard layout")
}

/// One LSTM position's values for BPTT: gates i, f, g, o, c_t, c_(t-1) and ∂/∂h_t.
type LstmStepValues<'a, R> = (&'a [R], &'a [R], &'a [R], &'a [R]);

simd_dispatch! {
    /// One LSTM position of BPTT: the gradients of the four gate pre-activations into `d_gates`
    /// (4H; the input and recurrent products get the same), ∂/∂c carried to the previous position.
    fn lstm_step_backward<R: Real>(
        values: LstmStepValues<'_, R>,
        carry_c: &mut [R],
        d_gates: &mut [R],
    ) {
        let (gate, cell, previous_cell, dh) = values;
        let h = cell.len();
        let one = R::one();
        for j in 0..h {
            let (i, f, g, o) = (gate[j], gate[h + j], gate[2 * h + j], gate[3 * h + j]);
            let tc = cell[j].tanh_act();
            let d_o = dh[j] * tc;
            let dc = carry_c[j] + dh[j] * o * (one - tc * tc);
            carry_c[j] = dc * f;
            d_gates[j] = dc * g * i * (one - i);
            d_gates[h + j] = dc * previous_cell[j] * f * (one - f);
            d_gates[2 * h + j] = dc * i * (one - g * g);
            d_gates[3 * h + j] = d_o * o * (one - o);
        }
    }
}

/// One GRU position's values for BPTT: gates r, z, n, h_(t-1), the candidate's recurrent
/// product V_n h and b_hn, and ∂/∂h_t.
type GruStepValues<'a, R> = (&'a [R], &'a [R], &'a [R], &'a [R], &'a [R]);

simd_dispatch! {
    /// One GRU position of BPTT: the gradients of the input products (`d_in`) and of the
    /// recurrent products with their biases (`d_rec`, 3H each), and the direct part of ∂/∂h
    /// carried to the previous position (into `carry`; the recurrent part is added after).
    fn gru_step_backward<R: Real>(
        values: GruStepValues<'_, R>,
        carry: &mut [R],
        d_in: &mut [R],
        d_rec: &mut [R],
    ) {
        let (gate, previous_hidden, recurrent_n, b_hn, dh) = values;
        let h = carry.len();
        let one = R::one();
        for j in 0..h {
            let (r, z, n) = (gate[j], gate[h + j], gate[2 * h + j]);
            let d_n = dh[j] * (one - z) * (one - n * n);
            let d_z = dh[j] * (previous_hidden[j] - n) * z * (one - z);
            let d_r = d_n * (recurrent_n[j] + b_hn[j]) * r * (one - r);
            carry[j] = dh[j] * z;
            d_in[j] = d_r;
            d_in[h + j] = d_z;
            d_in[2 * h + j] = d_n;
            d_rec[j] = d_r;
            d_rec[h + j] = d_z;
            d_rec[2 * h + j] = d_n * r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rnn::{Architecture, CellKind};
    use super::*;

    /// LSTM and GRU, one or two layers, one or two directions.
    fn architectures() -> Vec<Architecture> {
        let mut all = Vec::new();
        for cell in [CellKind::Lstm, CellKind::Gru] {
            for (layers, bidirectional) in [(1, false), (2, false), (1, true), (2, true)] {
                all.push(Architecture {
                    cell,
                    layers,
                    bidirectional,
                });
            }
        }
        all
    }

    /// The central difference of `objective` in element `index` of tensor `tensor`.
    fn central_difference(
        model: &mut RnnClassifier<f64>,
        tensor: usize,
        index: usize,
        objective: impl Fn(&RnnClassifier<f64>) -> f64,
    ) -> f64 {
        let epsilon = 1e-6;
        let mut at = |delta: f64| {
            model.tensors_mut()[tensor][index] += delta;
            model.refresh();
            let value = objective(model);
            model.tensors_mut()[tensor][index] -= delta;
            model.refresh();
            value
        };
        (at(epsilon) - at(-epsilon)) / (2.0 * epsilon)
    }

    /// The training gradients of a batch (its sentences sharing every product) against central
    /// differences of the f64 loss, for every weight and the embedding rows, every architecture.
    #[test]
    fn batch_gradients_match_central_differences_of_the_loss() {
        for architecture in architectures() {
            let mut model = RnnClassifier::<f64>::seeded_random(architecture, 6, 3, 4, 2, 5);
            let sentences: [&[usize]; 3] = [&[1, 4, 2], &[5, 5, 0], &[3, 1, 1]];
            let labels = [1, 0, 1];
            let scale = 1.0 / 3.0;
            let gradients = model.batch_gradients(&sentences, &labels, scale);
            let loss =
                |m: &RnnClassifier<f64>| m.batch_gradients(&sentences, &labels, scale).loss * scale;
            let mut analytic: Vec<Vec<f64>> = vec![gradients.embedding.to_dense(6)];
            analytic.extend(gradients.dense.iter().cloned());
            for (tensor, gradient) in analytic.iter().enumerate() {
                for index in (0..gradient.len()).step_by(3) {
                    let numeric = central_difference(&mut model, tensor, index, loss);
                    assert!(
                        (numeric - gradient[index]).abs() < 1e-7,
                        "{architecture} tensor {tensor} [{index}]: {numeric} vs {}",
                        gradient[index]
                    );
                }
            }
        }
    }

    /// F = log-sum-exp of the logits, a non-linear output for the path test.
    struct LogSumExp;

    impl super::super::OutputFunction for LogSumExp {
        fn value_and_gradient(&self, logits: &[f64]) -> (f64, Vec<f64>) {
            let total: f64 = logits.iter().map(|l| l.exp()).sum();
            (total.ln(), logits.iter().map(|l| l.exp() / total).collect())
        }
    }

    /// Path gradients, all points of a request in one batch: at each point, the sum over tokens
    /// of the directional derivatives is dF(x(α))/dα, against central differences in α.
    #[test]
    fn batched_path_gradients_match_central_differences_along_the_path() {
        use super::super::Classifier;
        for architecture in architectures() {
            let model = RnnClassifier::<f64>::seeded_random(architecture, 7, 3, 4, 3, 8);
            let input = model.embed(&[1, 5, 2, 6]).unwrap();
            let baseline = model.embed(&[3, 3, 3, 3]).unwrap();
            let alphas = [0.1, 0.5, 0.9];
            let request = PathRequest {
                input: input.view(),
                baseline: Some(baseline.view()),
                alphas: &alphas,
                output: &LogSumExp,
            };
            let got = model.path_gradients(&[request]).pop().unwrap();
            let value = |alpha: f64| {
                let point = &baseline + &((&input - &baseline) * alpha);
                LogSumExp
                    .value_and_gradient(&model.forward_rows(point).logits)
                    .0
            };
            use super::super::OutputFunction;
            for (k, &alpha) in alphas.iter().enumerate() {
                let numeric = (value(alpha + 1e-6) - value(alpha - 1e-6)) / 2e-6;
                let analytic: f64 = got.at(k).iter().sum();
                assert!(
                    (got.values[k] - value(alpha)).abs() < 1e-12,
                    "{architecture}"
                );
                assert!(
                    (numeric - analytic).abs() < 1e-7,
                    "{architecture} α {alpha}: {numeric} vs {analytic}"
                );
            }
        }
    }

    /// Every architecture's gradients, of the inputs and of every weight, against central
    /// differences of the f64 logits.
    #[test]
    fn gradients_match_central_differences() {
        for architecture in architectures() {
            let mut model = RnnClassifier::<f64>::seeded_random(architecture, 7, 3, 4, 3, 11);
            let ids = [1, 5, 2, 6];
            let d_logits = [0.7, -1.3, 0.4];
            let objective = |m: &RnnClassifier<f64>| -> f64 {
                let logits = m.forward(&ids).unwrap().logits;
                logits.iter().zip(&d_logits).map(|(l, d)| l * d).sum()
            };
            let trace = model.forward(&ids).unwrap();
            let mut weights: Vec<Vec<f64>> = model.tensors()[1..]
                .iter()
                .map(|t| vec![0.0; t.len()])
                .collect();
            let d_inputs = model.backward(&trace, &d_logits, Some(&mut weights));
            let epsilon = 1e-6;
            for t in 0..ids.len() {
                for e in 0..3 {
                    let shifted = |delta: f64| {
                        let mut rows = trace.inputs.clone();
                        rows[[t, e]] += delta;
                        let logits = model.forward_rows(rows).logits;
                        logits
                            .iter()
                            .zip(&d_logits)
                            .map(|(l, d)| l * d)
                            .sum::<f64>()
                    };
                    let numeric = (shifted(epsilon) - shifted(-epsilon)) / (2.0 * epsilon);
                    assert!(
                        (numeric - d_inputs[[t, e]]).abs() < 1e-7,
                        "{architecture} input ({t}, {e}): {numeric} vs {}",
                        d_inputs[[t, e]]
                    );
                }
            }
            let names = architecture.tensor_names();
            for (tensor, gradient) in weights.iter().enumerate() {
                for index in (0..gradient.len()).step_by(5) {
                    let numeric = central_difference(&mut model, tensor + 1, index, objective);
                    assert!(
                        (numeric - gradient[index]).abs() < 1e-7,
                        "{architecture} {} [{index}]: {numeric} vs {}",
                        names[tensor + 1],
                        gradient[index]
                    );
                }
            }
        }
    }
}
