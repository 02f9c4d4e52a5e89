//! Exact backpropagation through time for [`RnnClassifier`]: every layer and direction, LSTM and
//! GRU cells, from a gradient of the logits to the embedding rows and, when asked, every weight.

use ndarray::{Array2, s};

use super::rnn::{
    CellKind, DirectionTrace, RnnClassifier, RnnTrace, previous_position, processing_order,
};
use crate::numeric::{Mat, Real, matmul};

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
        let h = self.hidden_size();
        let directions = self.architecture().directions();
        let classes = self.num_classes();
        let width = directions * h;
        if let Some(gradients) = weights.as_deref_mut() {
            let count = gradients.len();
            let (w_out, b_out) = gradients[count - 2..].split_at_mut(1);
            for c in 0..classes {
                for (g, &f) in w_out[0][c * width..(c + 1) * width]
                    .iter_mut()
                    .zip(&trace.features)
                {
                    *g += d_logits[c] * f;
                }
                b_out[0][c] += d_logits[c];
            }
        }
        // ∂/∂(the top layer's output), non-zero at the final states only.
        let mut d_output = Array2::<R>::zeros((len, width));
        for j in 0..width {
            let d_feature =
                (0..classes).fold(R::zero(), |acc, c| acc + d_logits[c] * self.w_out()[[c, j]]);
            if j < h {
                d_output[[len - 1, j]] = d_feature;
            } else {
                d_output[[0, j]] = d_feature;
            }
        }
        for (k, layer) in self.layers().iter().enumerate().rev() {
            let input = if k == 0 {
                trace.inputs.view()
            } else {
                trace.layers[k - 1].output.view()
            };
            let input = input.as_standard_layout();
            let in_width = input.ncols();
            let mut d_input = Array2::<R>::zeros((len, in_width));
            for (d, w) in layer.iter().enumerate() {
                let direction = &trace.layers[k].directions[d];
                let d_hidden = d_output.slice(s![.., d * h..(d + 1) * h]).to_owned();
                let (d_in, d_rec) = self.direction_backward(w, direction, d_hidden, d == 1);
                let gh = d_in.ncols();
                matmul(
                    Mat::new(d_in.as_slice().expect("standard layout"), len, gh),
                    Mat::new(w.w_ih.as_slice().expect("standard layout"), gh, in_width),
                    d_input.as_slice_mut().expect("standard layout"),
                    true,
                );
                if let Some(gradients) = weights.as_deref_mut() {
                    let base = 4 * (k * directions + d);
                    let mut previous = Array2::<R>::zeros((len, h));
                    for t in 0..len {
                        if let Some(p) = previous_position(t, len, d == 1) {
                            previous.row_mut(t).assign(&direction.hidden.row(p));
                        }
                    }
                    matmul(
                        Mat::new(d_in.as_slice().expect("standard layout"), len, gh).t(),
                        Mat::new(input.as_slice().expect("standard layout"), len, in_width),
                        &mut gradients[base],
                        true,
                    );
                    matmul(
                        Mat::new(d_rec.as_slice().expect("standard layout"), len, gh).t(),
                        Mat::new(previous.as_slice().expect("standard layout"), len, h),
                        &mut gradients[base + 1],
                        true,
                    );
                    for t in 0..len {
                        for (g, &v) in gradients[base + 2].iter_mut().zip(d_in.row(t)) {
                            *g += v;
                        }
                        for (g, &v) in gradients[base + 3].iter_mut().zip(d_rec.row(t)) {
                            *g += v;
                        }
                    }
                }
            }
            d_output = d_input;
        }
        d_output
    }

    /// BPTT through one direction given ∂/∂h_t from above: the gradients of its input products
    /// and of its recurrent products (with their biases), `(T, G·H)` each.
    fn direction_backward(
        &self,
        w: &super::rnn::DirectionWeights<R>,
        direction: &DirectionTrace<R>,
        d_hidden: Array2<R>,
        backward: bool,
    ) -> (Array2<R>, Array2<R>) {
        let (len, h) = (d_hidden.nrows(), self.hidden_size());
        let gh = self.architecture().cell.gates() * h;
        let mut d_in = Array2::<R>::zeros((len, gh));
        let mut d_rec = Array2::<R>::zeros((len, gh));
        let mut carry_h = vec![R::zero(); h];
        let mut carry_c = vec![R::zero(); h];
        let one = R::one();
        let b_hh = w.b_hh.as_slice().expect("standard layout");
        for t in processing_order(len, backward).rev() {
            let previous = previous_position(t, len, backward);
            let gate = direction.gates.row(t);
            let dh: Vec<R> = (0..h).map(|j| d_hidden[[t, j]] + carry_h[j]).collect();
            let mut next_carry = vec![R::zero(); h];
            match self.architecture().cell {
                CellKind::Lstm => {
                    for j in 0..h {
                        let (i, f, g, o) = (gate[j], gate[h + j], gate[2 * h + j], gate[3 * h + j]);
                        let c = direction.cells[[t, j]];
                        let c_prev = previous.map_or(R::zero(), |p| direction.cells[[p, j]]);
                        let tc = c.tanh_act();
                        let d_o = dh[j] * tc;
                        let dc = carry_c[j] + dh[j] * o * (one - tc * tc);
                        carry_c[j] = dc * f;
                        let values = [
                            dc * g * i * (one - i),
                            dc * c_prev * f * (one - f),
                            dc * i * (one - g * g),
                            d_o * o * (one - o),
                        ];
                        for (q, v) in values.into_iter().enumerate() {
                            d_in[[t, q * h + j]] = v;
                            d_rec[[t, q * h + j]] = v;
                        }
                    }
                }
                CellKind::Gru => {
                    for j in 0..h {
                        let (r, z, n) = (gate[j], gate[h + j], gate[2 * h + j]);
                        let h_prev = previous.map_or(R::zero(), |p| direction.hidden[[p, j]]);
                        let d_n = dh[j] * (one - z) * (one - n * n);
                        let d_z = dh[j] * (h_prev - n) * z * (one - z);
                        let m = direction.recurrent_products[[t, 2 * h + j]] + b_hh[2 * h + j];
                        let d_r = d_n * m * r * (one - r);
                        next_carry[j] = dh[j] * z;
                        d_in[[t, j]] = d_r;
                        d_in[[t, h + j]] = d_z;
                        d_in[[t, 2 * h + j]] = d_n;
                        d_rec[[t, j]] = d_r;
                        d_rec[[t, h + j]] = d_z;
                        d_rec[[t, 2 * h + j]] = d_n * r;
                    }
                }
            }
            matmul(
                Mat::new(d_rec.row(t).as_slice().expect("standard layout"), 1, gh),
                Mat::new(w.w_hh.as_slice().expect("standard layout"), gh, h),
                &mut next_carry,
                true,
            );
            carry_h = next_carry;
        }
        (d_in, d_rec)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rnn::{Architecture, CellKind};
    use super::*;

    /// Every architecture's gradients, of the inputs and of every weight, against central
    /// differences of the f64 logits.
    #[test]
    fn gradients_match_central_differences() {
        for cell in [CellKind::Lstm, CellKind::Gru] {
            for (layers, bidirectional) in [(1, false), (2, false), (1, true), (2, true)] {
                let architecture = Architecture {
                    cell,
                    layers,
                    bidirectional,
                };
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
                        let mut at = |delta: f64| {
                            model.tensors_mut()[tensor + 1][index] += delta;
                            model.refresh();
                            let value = objective(&model);
                            model.tensors_mut()[tensor + 1][index] -= delta;
                            model.refresh();
                            value
                        };
                        let numeric = (at(epsilon) - at(-epsilon)) / (2.0 * epsilon);
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
}
