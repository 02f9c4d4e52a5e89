//! Gradients of the LSTM classifier's cross-entropy loss by backpropagation through time, for
//! batches of sentences of one length (training buckets sentences by length, so nothing is padded).

use std::collections::HashMap;

use super::{LstmClassifier, TENSOR_NAMES};
use crate::numeric::{Mat, Real, SplitMix64, matmul, simd_dispatch};

/// Trainable parameters in the PyTorch layout, stored flat (row-major), with both LSTM biases kept
/// apart as PyTorch keeps them (Adam treats them as two tensors).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmParameters<R> {
    pub vocab: usize,
    pub embedding_dim: usize,
    pub hidden: usize,
    pub classes: usize,
    /// vocab × embedding
    pub embedding: Vec<R>,
    /// 4H × embedding, gates i, f, g, o
    pub w_ih: Vec<R>,
    /// 4H × H
    pub w_hh: Vec<R>,
    pub b_ih: Vec<R>,
    pub b_hh: Vec<R>,
    /// classes × H
    pub w_out: Vec<R>,
    pub b_out: Vec<R>,
}

/// How the LSTM's weights start (the embedding rows are given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initialisation {
    /// PyTorch's `nn.LSTM` and `nn.Linear`: every weight and bias U(−1/√H, 1/√H).
    #[default]
    Pytorch,
    /// Lua Torch's `nn.SeqLSTM` (torch/rnn, from torch-rnn), the LSTM whose `reset` the paper's
    /// "Lua Torch default initialisations" most likely means: LSTM weights N(0, 1/(E + H)),
    /// biases 0 except the forget gate's, 1; the output layer `nn.Linear`'s U(−1/√H, 1/√H).
    LuaTorch,
}

impl Initialisation {
    pub fn is_pytorch(&self) -> bool {
        *self == Initialisation::Pytorch
    }
}

/// The YAML name.
impl std::fmt::Display for Initialisation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Initialisation::Pytorch => "pytorch",
            Initialisation::LuaTorch => "lua_torch",
        })
    }
}

impl<R: Real> LstmParameters<R> {
    /// Parameters drawn by `init` from `seed`; `embedding` gives the embedding rows.
    pub fn initialise(
        embedding: Vec<R>,
        embedding_dim: usize,
        hidden: usize,
        classes: usize,
        seed: u64,
        init: Initialisation,
    ) -> Self {
        assert!(embedding_dim > 0 && embedding.len().is_multiple_of(embedding_dim));
        let mut rng = SplitMix64(seed);
        let bound = 1.0 / (hidden as f64).sqrt();
        let uniform = |rng: &mut SplitMix64, n: usize| -> Vec<R> {
            (0..n)
                .map(|_| R::from_f64(bound * (2.0 * rng.unit() - 1.0)))
                .collect()
        };
        let (w_ih, w_hh, b_ih, b_hh) = match init {
            Initialisation::Pytorch => (
                uniform(&mut rng, 4 * hidden * embedding_dim),
                uniform(&mut rng, 4 * hidden * hidden),
                uniform(&mut rng, 4 * hidden),
                uniform(&mut rng, 4 * hidden),
            ),
            Initialisation::LuaTorch => {
                let std = 1.0 / ((embedding_dim + hidden) as f64).sqrt();
                let mut normal = |n: usize| -> Vec<R> {
                    (0..n).map(|_| R::from_f64(std * rng.normal())).collect()
                };
                let (w_ih, w_hh) = (
                    normal(4 * hidden * embedding_dim),
                    normal(4 * hidden * hidden),
                );
                let mut b_ih = vec![R::zero(); 4 * hidden];
                b_ih[hidden..2 * hidden].fill(R::from_f64(1.0));
                (w_ih, w_hh, b_ih, vec![R::zero(); 4 * hidden])
            }
        };
        let w_out = uniform(&mut rng, classes * hidden);
        let b_out = uniform(&mut rng, classes);
        Self {
            vocab: embedding.len() / embedding_dim,
            embedding_dim,
            hidden,
            classes,
            embedding,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            w_out,
            b_out,
        }
    }

    /// Starts the forget gate's bias (of `b_ih`; that of `b_hh` becomes 0) at `value`, the lever
    /// of Gers et al. 2000 and Jozefowicz et al. 2015 against forgetting early in training.
    pub fn set_forget_bias(&mut self, value: f64) {
        let h = self.hidden;
        self.b_ih[h..2 * h].fill(R::from_f64(value));
        self.b_hh[h..2 * h].fill(R::zero());
    }

    /// The tensors in [`TENSOR_NAMES`] order.
    pub fn tensors(&self) -> [&[R]; 7] {
        [
            &self.embedding,
            &self.w_ih,
            &self.w_hh,
            &self.b_ih,
            &self.b_hh,
            &self.w_out,
            &self.b_out,
        ]
    }

    pub fn tensors_mut(&mut self) -> [&mut [R]; 7] {
        [
            &mut self.embedding,
            &mut self.w_ih,
            &mut self.w_hh,
            &mut self.b_ih,
            &mut self.b_hh,
            &mut self.w_out,
            &mut self.b_out,
        ]
    }

    /// PyTorch shapes of the tensors, in [`TENSOR_NAMES`] order.
    pub fn shapes(&self) -> [Vec<usize>; 7] {
        let (e, h, c) = (self.embedding_dim, self.hidden, self.classes);
        [
            vec![self.vocab, e],
            vec![4 * h, e],
            vec![4 * h, h],
            vec![4 * h],
            vec![4 * h],
            vec![c, h],
            vec![c],
        ]
    }

    /// Saves in the PyTorch layout (F32 safetensors, both LSTM biases as trained), so that
    /// `LstmClassifier::load` and PyTorch's `load_state_dict` both read it.
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let tensors: Vec<(&str, Vec<usize>, Vec<u8>)> = TENSOR_NAMES
            .iter()
            .zip(self.shapes())
            .zip(self.tensors())
            .map(|((&name, shape), values)| {
                let bytes = values
                    .iter()
                    .flat_map(|v| (v.as_f64() as f32).to_le_bytes())
                    .collect();
                (name, shape, bytes)
            })
            .collect();
        super::safetensors_io::write_f32_tensors(path, &tensors)
    }

    /// The inference model (biases summed).
    pub fn classifier(&self) -> LstmClassifier<R> {
        let matrix = |data: &[R], rows: usize, cols: usize| {
            ndarray::Array2::from_shape_vec((rows, cols), data.to_vec()).expect("sizes match")
        };
        let (e, h, c) = (self.embedding_dim, self.hidden, self.classes);
        let bias = self
            .b_ih
            .iter()
            .zip(&self.b_hh)
            .map(|(&a, &b)| a + b)
            .collect();
        LstmClassifier::from_parts(
            matrix(&self.embedding, self.vocab, e),
            matrix(&self.w_ih, 4 * h, e),
            matrix(&self.w_hh, 4 * h, h),
            bias,
            matrix(&self.w_out, c, h),
            self.b_out.clone().into(),
        )
        .expect("parameters have consistent shapes")
    }
}

/// Gradient rows of the embedding for the tokens a batch uses, in first-use order (so that sums
/// are reproducible).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRows<R> {
    row_of: HashMap<usize, usize>,
    /// Token id of each row.
    pub ids: Vec<usize>,
    /// `ids.len()` rows of `width` values.
    pub values: Vec<R>,
    width: usize,
}

impl<R: Real> SparseRows<R> {
    pub fn new(width: usize) -> Self {
        Self {
            row_of: HashMap::new(),
            ids: Vec::new(),
            values: Vec::new(),
            width,
        }
    }

    /// The row of token `id`, zero when first asked for.
    pub fn row(&mut self, id: usize) -> &mut [R] {
        let next = self.ids.len();
        let slot = *self.row_of.entry(id).or_insert(next);
        if slot == next {
            self.ids.push(id);
            self.values.resize((next + 1) * self.width, R::zero());
        }
        &mut self.values[slot * self.width..(slot + 1) * self.width]
    }

    pub fn contains(&self, id: usize) -> bool {
        self.row_of.contains_key(&id)
    }

    /// The rows as a dense `rows × width` matrix.
    pub fn to_dense(&self, rows: usize) -> Vec<R> {
        let w = self.width;
        let mut dense = vec![R::zero(); rows * w];
        for (k, &id) in self.ids.iter().enumerate() {
            dense[id * w..(id + 1) * w].copy_from_slice(&self.values[k * w..(k + 1) * w]);
        }
        dense
    }
}

/// Gradients of a batch: dense for every tensor but the embedding, whose touched rows are sparse.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients<R> {
    pub embedding: SparseRows<R>,
    /// Every tensor after the embedding, in the parameters' order and shapes.
    pub dense: Vec<Vec<R>>,
    /// Sum over the batch of −log p(label).
    pub loss: f64,
    /// Sentences whose arg-max class was the label.
    pub correct: usize,
}

impl<R: Real> Gradients<R> {
    pub fn zeros(parameters: &LstmParameters<R>) -> Self {
        let [_, w_ih, w_hh, b_ih, b_hh, w_out, b_out] = parameters.tensors();
        Self {
            embedding: SparseRows::new(parameters.embedding_dim),
            dense: [w_ih, w_hh, b_ih, b_hh, w_out, b_out]
                .iter()
                .map(|t| vec![R::zero(); t.len()])
                .collect(),
            loss: 0.0,
            correct: 0,
        }
    }

    /// Adds another batch's gradients (sums are taken in call order).
    pub fn add(&mut self, other: &Gradients<R>) {
        let width = other.embedding.width;
        for (k, &id) in other.embedding.ids.iter().enumerate() {
            let source = &other.embedding.values[k * width..(k + 1) * width];
            for (a, &b) in self.embedding.row(id).iter_mut().zip(source) {
                *a += b;
            }
        }
        for (mine, theirs) in self.dense.iter_mut().zip(&other.dense) {
            for (a, &b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        self.loss += other.loss;
        self.correct += other.correct;
    }
}

/// Gradients of `scale × Σ −log p(label)` over sentences that all have the same length, with
/// respect to every parameter and the embedding rows they use. `scale` is 1 / (batch size) for the
/// mean loss of a batch cut into chunks.
pub fn batch_gradients<R: Real>(
    p: &LstmParameters<R>,
    sentences: &[&[usize]],
    labels: &[usize],
    scale: R,
) -> Gradients<R> {
    let b = sentences.len();
    let steps = sentences.first().map_or(0, |s| s.len());
    assert!(steps > 0 && sentences.iter().all(|s| s.len() == steps));
    assert_eq!(labels.len(), b);
    let (e, h, c) = (p.embedding_dim, p.hidden, p.classes);
    let g4 = 4 * h;
    let bias: Vec<R> = p.b_ih.iter().zip(&p.b_hh).map(|(&x, &y)| x + y).collect();
    let w_ih = Mat::new(&p.w_ih, g4, e);
    let w_hh = Mat::new(&p.w_hh, g4, h);

    // Forward, keeping inputs, gate activations, cells and hidden states of every step.
    let mut inputs = vec![R::zero(); steps * b * e];
    let mut gates = vec![R::zero(); steps * b * g4];
    let mut cells = vec![R::zero(); steps * b * h];
    let mut tanh_cells = vec![R::zero(); steps * b * h];
    let mut hidden = vec![R::zero(); steps * b * h];
    for t in 0..steps {
        let x = &mut inputs[t * b * e..(t + 1) * b * e];
        for (row, sentence) in sentences.iter().enumerate() {
            let id = sentence[t];
            x[row * e..(row + 1) * e].copy_from_slice(&p.embedding[id * e..(id + 1) * e]);
        }
        let z = &mut gates[t * b * g4..(t + 1) * b * g4];
        matmul(Mat::new(x, b, e), w_ih.t(), z, false);
        if t > 0 {
            let previous = &hidden[(t - 1) * b * h..t * b * h];
            matmul(Mat::new(previous, b, h), w_hh.t(), z, true);
        }
        let (before, current) = cells.split_at_mut(t * b * h);
        let previous_cells = (t > 0).then(|| &before[(t - 1) * b * h..]);
        forward_step(
            z,
            &bias,
            previous_cells,
            &mut current[..b * h],
            &mut tanh_cells[t * b * h..(t + 1) * b * h],
            &mut hidden[t * b * h..(t + 1) * b * h],
        );
    }

    // Output layer and loss.
    let last = &hidden[(steps - 1) * b * h..steps * b * h];
    let mut logits = vec![R::zero(); b * c];
    matmul(
        Mat::new(last, b, h),
        Mat::new(&p.w_out, c, h).t(),
        &mut logits,
        false,
    );
    let mut grads = Gradients::zeros(p);
    let mut d_logits = vec![R::zero(); b * c];
    for row in 0..b {
        let z: Vec<f64> = (0..c)
            .map(|k| (logits[row * c + k] + p.b_out[k]).as_f64())
            .collect();
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = z.iter().map(|v| (v - max).exp()).sum();
        let label = labels[row];
        grads.loss += max + total.ln() - z[label];
        let predicted = (0..c).fold(0, |best, k| if z[k] > z[best] { k } else { best });
        grads.correct += usize::from(predicted == label);
        for k in 0..c {
            let probability = (z[k] - max).exp() / total;
            let target = if k == label { 1.0 } else { 0.0 };
            d_logits[row * c + k] = R::from_f64(probability - target) * scale;
        }
    }
    let [d_w_ih, d_w_hh, d_b_ih, d_b_hh, d_w_out, d_b_out] = &mut grads.dense[..] else {
        unreachable!("six dense tensors")
    };
    matmul(
        Mat::new(&d_logits, b, c).t(),
        Mat::new(last, b, h),
        d_w_out,
        true,
    );
    for row in 0..b {
        for k in 0..c {
            d_b_out[k] += d_logits[row * c + k];
        }
    }
    let mut d_hidden = vec![R::zero(); b * h];
    matmul(
        Mat::new(&d_logits, b, c),
        Mat::new(&p.w_out, c, h),
        &mut d_hidden,
        false,
    );

    // Backward through time.
    let mut d_cell = vec![R::zero(); b * h];
    let mut d_z = vec![R::zero(); b * g4];
    let mut d_inputs = vec![R::zero(); b * e];
    for t in (0..steps).rev() {
        backward_step(
            h,
            &gates[t * b * g4..(t + 1) * b * g4],
            (t > 0).then(|| &cells[(t - 1) * b * h..t * b * h]),
            &tanh_cells[t * b * h..(t + 1) * b * h],
            &d_hidden,
            &mut d_cell,
            &mut d_z,
        );
        let x = &inputs[t * b * e..(t + 1) * b * e];
        matmul(Mat::new(&d_z, b, g4).t(), Mat::new(x, b, e), d_w_ih, true);
        for row in 0..b {
            for (k, &v) in d_z[row * g4..(row + 1) * g4].iter().enumerate() {
                d_b_ih[k] += v;
            }
        }
        if t > 0 {
            let previous = &hidden[(t - 1) * b * h..t * b * h];
            matmul(
                Mat::new(&d_z, b, g4).t(),
                Mat::new(previous, b, h),
                d_w_hh,
                true,
            );
            matmul(Mat::new(&d_z, b, g4), w_hh, &mut d_hidden, false);
        }
        matmul(Mat::new(&d_z, b, g4), w_ih, &mut d_inputs, false);
        for (row, sentence) in sentences.iter().enumerate() {
            let source = &d_inputs[row * e..(row + 1) * e];
            for (a, &v) in grads.embedding.row(sentence[t]).iter_mut().zip(source) {
                *a += v;
            }
        }
    }
    d_b_hh.copy_from_slice(d_b_ih);
    grads
}

simd_dispatch! {
    /// Gate activations (in place over the pre-activations `z`, rows of i, f, g, o), cells, their
    /// tanh and hidden states of one step for every row. Written as whole-slice passes so that
    /// every loop vectorises (element by element with indices, the cell update stayed scalar and
    /// took a third of leave-one-out's time).
    pub(super) fn forward_step<R: Real>(
        z: &mut [R],
        bias: &[R],
        previous_cells: Option<&[R]>,
        cells: &mut [R],
        tanh_cells: &mut [R],
        hidden: &mut [R],
    ) {
        let g4 = bias.len();
        let h = g4 / 4;
        let rows = z
            .chunks_exact_mut(g4)
            .zip(cells.chunks_exact_mut(h))
            .zip(tanh_cells.chunks_exact_mut(h))
            .zip(hidden.chunks_exact_mut(h))
            .enumerate();
        for (row, (((z, cell), tanh_cell), hidden)) in rows {
            for (value, &bias) in z.iter_mut().zip(bias) {
                *value += bias;
            }
            let (input_forget, rest) = z.split_at_mut(2 * h);
            let (g, o) = rest.split_at_mut(h);
            for value in input_forget.iter_mut() {
                *value = value.sigmoid();
            }
            for value in o.iter_mut() {
                *value = value.sigmoid();
            }
            for value in g.iter_mut() {
                *value = value.tanh_act();
            }
            let (i, f) = input_forget.split_at(h);
            let step = CellStep { i, f, g, o, cell, tanh_cell, hidden };
            match previous_cells {
                Some(previous) => step.update(previous[row * h..(row + 1) * h].iter().copied()),
                None => step.update(std::iter::repeat(R::zero())),
            }
        }
    }
}

/// One row's gates and the cell, its tanh and the hidden state they produce.
struct CellStep<'a, R> {
    i: &'a [R],
    f: &'a [R],
    g: &'a [R],
    o: &'a [R],
    cell: &'a mut [R],
    tanh_cell: &'a mut [R],
    hidden: &'a mut [R],
}

impl<R: Real> CellStep<'_, R> {
    /// c = f ⊙ c_prev + i ⊙ g, tanh(c), h = o ⊙ tanh(c).
    #[inline(always)]
    fn update(self, previous: impl Iterator<Item = R>) {
        let gates = self.i.iter().zip(self.f).zip(self.g).zip(self.o);
        let outputs = self
            .cell
            .iter_mut()
            .zip(self.tanh_cell.iter_mut())
            .zip(self.hidden.iter_mut());
        for (((((&i, &f), &g), &o), previous), ((cell, tanh_cell), hidden)) in
            gates.zip(previous).zip(outputs)
        {
            let c = f * previous + i * g;
            *cell = c;
            let t = c.tanh_act();
            *tanh_cell = t;
            *hidden = o * t;
        }
    }
}

simd_dispatch! {
    /// Gradients of one step's pre-activations `d_z` (rows of i, f, g, o) from the gradients of
    /// its hidden states and cells (rows of `h`); `d_cell` becomes the gradient of the previous
    /// cells.
    pub(super) fn backward_step<R: Real>(
        h: usize,
        gates: &[R],
        previous_cells: Option<&[R]>,
        tanh_cells: &[R],
        d_hidden: &[R],
        d_cell: &mut [R],
        d_z: &mut [R],
    ) {
        let one = R::one();
        // Every operand sliced to exactly h values, so the loop has no bounds checks and vectorises.
        let zeros = vec![R::zero(); if previous_cells.is_some() { 0 } else { h }];
        for (row, (gate, dz)) in gates.chunks_exact(4 * h).zip(d_z.chunks_exact_mut(4 * h)).enumerate() {
            let at = row * h;
            let (i, f, g, o) = (&gate[..h], &gate[h..2 * h], &gate[2 * h..3 * h], &gate[3 * h..]);
            let (dz_i, rest) = dz.split_at_mut(h);
            let (dz_f, rest) = rest.split_at_mut(h);
            let (dz_g, dz_o) = rest.split_at_mut(h);
            let previous = previous_cells.map_or(&zeros[..], |c| &c[at..at + h]);
            let tanh_cell = &tanh_cells[at..at + h];
            let d_hidden = &d_hidden[at..at + h];
            let d_cell = &mut d_cell[at..at + h];
            for j in 0..h {
                let (i, f, g, o) = (i[j], f[j], g[j], o[j]);
                let tanh_cell = tanh_cell[j];
                let dh = d_hidden[j];
                let dc = d_cell[j] + dh * o * (one - tanh_cell * tanh_cell);
                dz_i[j] = dc * g * i * (one - i);
                dz_f[j] = dc * previous[j] * f * (one - f);
                dz_g[j] = dc * i * (one - g * g);
                dz_o[j] = dh * tanh_cell * o * (one - o);
                d_cell[j] = dc * f;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(p: &LstmParameters<f64>, sentences: &[&[usize]], labels: &[usize]) -> f64 {
        batch_gradients(p, sentences, labels, 1.0).loss
    }

    /// Lua Torch's SeqLSTM reset: biases 0 but the forget gate's 1 (gates i, f, g, o), weights
    /// N(0, 1/(E + H)): the sample moments of 4H × (E + H) = 23,040 draws within 5 standard errors.
    #[test]
    fn lua_torch_initialisation_follows_seqlstm_reset() {
        let (e, h) = (40, 32);
        let p = LstmParameters::<f64>::initialise(
            vec![0.0; 3 * e],
            e,
            h,
            2,
            3,
            Initialisation::LuaTorch,
        );
        for (gate, bias) in p.b_ih.chunks(h).enumerate() {
            let expected = if gate == 1 { 1.0 } else { 0.0 };
            assert!(bias.iter().all(|&b| b == expected), "gate {gate}");
        }
        assert!(p.b_hh.iter().all(|&b| b == 0.0));
        let weights: Vec<f64> = p.w_ih.iter().chain(&p.w_hh).copied().collect();
        let n = weights.len() as f64;
        let variance = 1.0 / (e + h) as f64;
        let mean = weights.iter().sum::<f64>() / n;
        let sample_variance = weights.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 5.0 * (variance / n).sqrt(), "mean {mean}");
        // The variance of a normal sample's variance is 2σ⁴/(n − 1).
        let standard_error = variance * (2.0 / (n - 1.0)).sqrt();
        assert!(
            (sample_variance - variance).abs() < 5.0 * standard_error,
            "variance {sample_variance}"
        );
        let bound = 1.0 / (h as f64).sqrt();
        assert!(p.w_out.iter().chain(&p.b_out).all(|w| w.abs() <= bound));
    }

    /// Analytic gradients against central differences, in f64, for every parameter tensor and the
    /// input embeddings, on a small random model and a batch of three sentences of length 4.
    #[test]
    fn gradients_match_central_differences() {
        let (vocab, e, h, c) = (7, 3, 4, 2);
        let mut rng = SplitMix64(11);
        let embedding = (0..vocab * e).map(|_| rng.normal()).collect();
        let p = LstmParameters::<f64>::initialise(embedding, e, h, c, 5, Initialisation::Pytorch);
        let sentences: [&[usize]; 3] = [&[1, 2, 3, 1], &[4, 6, 6, 2], &[5, 5, 1, 3]];
        let labels = [0, 1, 1];
        let grads = batch_gradients(&p, &sentences, &labels, 1.0);
        let analytic: Vec<Vec<f64>> = std::iter::once(grads.embedding.to_dense(vocab))
            .chain(grads.dense.iter().cloned())
            .collect();
        let step = 1e-5;
        for (tensor, (name, analytic)) in TENSOR_NAMES.iter().zip(&analytic).enumerate() {
            for (k, &exact) in analytic.iter().enumerate() {
                let mut plus = p.clone();
                plus.tensors_mut()[tensor][k] += step;
                let mut minus = p.clone();
                minus.tensors_mut()[tensor][k] -= step;
                let numeric = (loss(&plus, &sentences, &labels)
                    - loss(&minus, &sentences, &labels))
                    / (2.0 * step);
                // Relative error, with gradients below 1e-3 held to an absolute 1e-9.
                let relative = (numeric - exact).abs() / numeric.abs().max(exact.abs()).max(1e-3);
                assert!(
                    relative < 1e-6,
                    "{name}[{k}]: analytic {exact}, central difference {numeric}"
                );
            }
        }
        // Token 0 is in no sentence and gets no gradient row.
        assert!(!grads.embedding.contains(0));
    }

    /// Chunks of a batch summed in order give the whole batch's gradients.
    #[test]
    fn chunked_gradients_add_up() {
        let mut rng = SplitMix64(3);
        let embedding = (0..9 * 4).map(|_| rng.normal()).collect();
        let p = LstmParameters::<f64>::initialise(embedding, 4, 5, 2, 9, Initialisation::Pytorch);
        let sentences: [&[usize]; 4] = [&[1, 2, 3], &[4, 5, 6], &[7, 8, 0], &[2, 2, 2]];
        let labels = [0, 1, 0, 1];
        let whole = batch_gradients(&p, &sentences, &labels, 0.25);
        let mut parts = batch_gradients(&p, &sentences[..3], &labels[..3], 0.25);
        parts.add(&batch_gradients(&p, &sentences[3..], &labels[3..], 0.25));
        let dense = |g: &Gradients<f64>| -> Vec<f64> {
            g.embedding
                .to_dense(9)
                .into_iter()
                .chain(g.dense.iter().flatten().copied())
                .collect()
        };
        for (a, b) in dense(&whole).iter().zip(dense(&parts)) {
            assert!((a - b).abs() < 1e-14);
        }
        assert!((whole.loss - parts.loss).abs() < 1e-12);
    }
}
