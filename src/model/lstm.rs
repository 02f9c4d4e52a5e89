use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::{Classifier, ModelError, Occluded, Occlusion, PathGradients, PathRequest};
use crate::numeric::{Mat, Real, SplitMix64, dot_f64, matmul, simd_dispatch};

/// A one-layer unidirectional LSTM classifier: embedding, `nn.LSTM`, linear output on the last state.
///
/// Weight matrices keep PyTorch's layout: the rows of `w_ih`, `w_hh` and `bias` are four blocks of
/// `hidden` rows in gate order i, f, g, o.
#[derive(Debug, Clone)]
pub struct LstmClassifier<R: Real> {
    embedding: Array2<R>,
    w_ih: Array2<R>,
    pub(super) w_hh: Array2<R>,
    /// `w_ih` and `w_hh` transposed, `(E, 4H)` and `(H, 4H)`, for the products: the GEMM backend
    /// reads these directly, where PyTorch's layout makes it gather the whole matrix element by
    /// element on every call (measured: 15 % of the CD engine's time, in the forward pass).
    pub(super) w_ih_t: Array2<R>,
    pub(super) w_hh_t: Array2<R>,
    pub(super) bias: Array1<R>,
    pub(super) w_out: Array2<R>,
    b_out: Array1<R>,
}

/// Every intermediate of one forward pass, kept because CD reuses them for all spans of a sentence.
///
/// Row `t` of each matrix belongs to time step `t`; gate blocks are ordered i, f, g, o.
#[derive(Debug, Clone)]
pub struct ForwardTrace<R: Real> {
    /// Input products `W_ih x_t` without bias, `(T, 4H)`.
    pub input_products: Array2<R>,
    /// Full gate pre-activations `W_ih x_t + W_hh h_(t-1) + b`, `(T, 4H)`.
    pub preactivations: Array2<R>,
    /// Gate values σ(i), σ(f), tanh(g), σ(o), `(T, 4H)`.
    pub gates: Array2<R>,
    /// Cell states `c_t`, `(T, H)`.
    pub cells: Array2<R>,
    /// `tanh(c_t)`, `(T, H)`.
    pub tanh_cells: Array2<R>,
    /// Hidden states `h_t`, `(T, H)`.
    pub hidden: Array2<R>,
    /// Output of the last step including the output bias.
    pub logits: Vec<f64>,
}

impl<R: Real> LstmClassifier<R> {
    /// Builds a classifier from PyTorch-layout tensors; `bias` is `bias_ih + bias_hh`.
    ///
    /// Shapes are checked against each other; the loader reports file-level errors before this.
    pub fn from_parts(
        embedding: Array2<R>,
        w_ih: Array2<R>,
        w_hh: Array2<R>,
        bias: Array1<R>,
        w_out: Array2<R>,
        b_out: Array1<R>,
    ) -> Result<Self, ModelError> {
        let hidden = w_hh.ncols();
        let emb = embedding.ncols();
        let classes = w_out.nrows();
        let checks: [(&str, Vec<usize>, Vec<usize>); 5] = [
            (
                "lstm.weight_ih_l0",
                vec![4 * hidden, emb],
                w_ih.shape().to_vec(),
            ),
            (
                "lstm.weight_hh_l0",
                vec![4 * hidden, hidden],
                w_hh.shape().to_vec(),
            ),
            ("lstm.bias", vec![4 * hidden], bias.shape().to_vec()),
            (
                "hidden_to_label.weight",
                vec![classes, hidden],
                w_out.shape().to_vec(),
            ),
            (
                "hidden_to_label.bias",
                vec![classes],
                b_out.shape().to_vec(),
            ),
        ];
        for (tensor, expected, actual) in checks {
            if expected != actual || expected.contains(&0) {
                return Err(ModelError::Shape {
                    path: "<memory>".into(),
                    tensor: tensor.to_string(),
                    expected: format!("{expected:?}"),
                    actual,
                });
            }
        }
        let transposed = |w: &Array2<R>| w.t().as_standard_layout().into_owned();
        Ok(Self {
            embedding,
            w_ih_t: transposed(&w_ih),
            w_hh_t: transposed(&w_hh),
            w_ih,
            w_hh,
            bias,
            w_out,
            b_out,
        })
    }

    /// A classifier with PyTorch's default initialisation (embeddings N(0, 1); LSTM and output
    /// weights U(-1/√H, 1/√H)) drawn from a seeded generator, for tests, benchmarks and training.
    pub fn seeded_random(
        vocab: usize,
        embedding_dim: usize,
        hidden: usize,
        classes: usize,
        seed: u64,
    ) -> Self {
        let mut rng = SplitMix64(seed);
        let bound = 1.0 / (hidden as f64).sqrt();
        let mut uniform = |rows: usize, cols: usize| {
            Array2::from_shape_fn((rows, cols), |_| {
                R::from_f64(bound * (2.0 * rng.unit() - 1.0))
            })
        };
        let w_ih = uniform(4 * hidden, embedding_dim);
        let w_hh = uniform(4 * hidden, hidden);
        let bias = uniform(1, 4 * hidden).row(0).to_owned() + uniform(1, 4 * hidden).row(0);
        let w_out = uniform(classes, hidden);
        let b_out = uniform(1, classes).row(0).to_owned();
        let embedding =
            Array2::from_shape_fn((vocab, embedding_dim), |_| R::from_f64(rng.normal()));
        Self::from_parts(embedding, w_ih, w_hh, bias, w_out, b_out)
            .expect("shapes are consistent by construction")
    }

    pub fn vocab_size(&self) -> usize {
        self.embedding.nrows()
    }

    pub fn embedding_dim(&self) -> usize {
        self.embedding.ncols()
    }

    pub fn hidden_size(&self) -> usize {
        self.w_hh.ncols()
    }

    pub fn num_classes(&self) -> usize {
        self.w_out.nrows()
    }

    pub fn embedding(&self) -> ArrayView2<'_, R> {
        self.embedding.view()
    }

    /// Input-to-hidden weights `(4H, E)`, gate blocks i, f, g, o.
    pub fn w_ih(&self) -> ArrayView2<'_, R> {
        self.w_ih.view()
    }

    /// Hidden-to-hidden weights `(4H, H)`, gate blocks i, f, g, o.
    pub fn w_hh(&self) -> ArrayView2<'_, R> {
        self.w_hh.view()
    }

    /// [`Self::w_hh`] transposed, `(H, 4H)`, in standard layout.
    pub fn w_hh_t(&self) -> ArrayView2<'_, R> {
        self.w_hh_t.view()
    }

    /// `bias_ih + bias_hh`, `(4H)`.
    pub fn bias(&self) -> ArrayView1<'_, R> {
        self.bias.view()
    }

    /// Output weights `(C, H)`.
    pub fn w_out(&self) -> ArrayView2<'_, R> {
        self.w_out.view()
    }

    /// Output bias `(C)`.
    pub fn b_out(&self) -> ArrayView1<'_, R> {
        self.b_out.view()
    }

    /// Checks that a sentence is non-empty and every id is an embedding row.
    pub fn check_ids(&self, ids: &[usize]) -> Result<(), ModelError> {
        super::check_token_ids(ids, self.vocab_size())
    }

    /// Runs the LSTM from zero initial state over `ids`, as PyTorch `nn.LSTM` does.
    pub fn forward(&self, ids: &[usize]) -> Result<ForwardTrace<R>, ModelError> {
        Ok(self
            .forward_batch(&[ids])?
            .pop()
            .expect("one trace per sentence"))
    }

    /// The embedding rows of a sentence, `(T, E)`.
    pub fn embed(&self, ids: &[usize]) -> Result<Array2<R>, ModelError> {
        self.check_ids(ids)?;
        Ok(self.embedding.select(Axis(0), ids))
    }

    /// Forward passes of several sentences; at each step the recurrent products of all sentences
    /// still running are one matrix product.
    pub fn forward_batch(
        &self,
        sentences: &[&[usize]],
    ) -> Result<Vec<ForwardTrace<R>>, ModelError> {
        let inputs = sentences
            .iter()
            .map(|ids| self.embed(ids))
            .collect::<Result<Vec<_>, _>>()?;
        let views: Vec<ArrayView2<'_, R>> = inputs.iter().map(|rows| rows.view()).collect();
        Ok(self.forward_rows(&views))
    }

    /// [`forward_batch`](Self::forward_batch) of sentences given as embedding rows `(T, E)`, each
    /// with at least one row.
    pub fn forward_rows(&self, inputs: &[ArrayView2<'_, R>]) -> Vec<ForwardTrace<R>> {
        let h = self.hidden_size();
        let mut traces: Vec<ForwardTrace<R>> =
            inputs.iter().map(|rows| self.start_trace(*rows)).collect();
        let longest = inputs.iter().map(|rows| rows.nrows()).max().unwrap_or(0);
        let mut previous_hidden: Vec<R> = Vec::new();
        let mut recurrent: Vec<R> = Vec::new();
        for t in 0..longest {
            let running: Vec<usize> = (0..traces.len())
                .filter(|&s| t < inputs[s].nrows())
                .collect();
            recurrent.clear();
            recurrent.resize(running.len() * 4 * h, R::zero());
            if t > 0 {
                previous_hidden.clear();
                for &s in &running {
                    previous_hidden.extend(traces[s].hidden.row(t - 1));
                }
                matmul(
                    Mat::new(&previous_hidden, running.len(), h),
                    Mat::new(self.w_hh_t.as_slice().expect("standard layout"), h, 4 * h),
                    &mut recurrent,
                    false,
                );
            }
            for (&s, rec) in running.iter().zip(recurrent.chunks_exact(4 * h)) {
                self.advance(&mut traces[s], t, rec);
            }
        }
        for trace in &mut traces {
            let last = trace.hidden.nrows() - 1;
            trace.logits = self.output(trace.hidden.row(last), true);
        }
        traces
    }

    /// A trace with the input products filled in and everything else to be computed.
    fn start_trace(&self, rows: ArrayView2<'_, R>) -> ForwardTrace<R> {
        assert!(
            rows.nrows() > 0 && rows.ncols() == self.embedding_dim(),
            "a sentence of at least one embedding row"
        );
        let (h, steps) = (self.hidden_size(), rows.nrows());
        let rows = rows.as_standard_layout();
        let mut input_products = Array2::<R>::zeros((steps, 4 * h));
        matmul(
            Mat::new(
                rows.as_slice().expect("standard layout"),
                steps,
                self.embedding_dim(),
            ),
            Mat::new(
                self.w_ih_t.as_slice().expect("standard layout"),
                self.embedding_dim(),
                4 * h,
            ),
            input_products.as_slice_mut().expect("standard layout"),
            false,
        );
        ForwardTrace {
            input_products,
            preactivations: Array2::zeros((steps, 4 * h)),
            gates: Array2::zeros((steps, 4 * h)),
            cells: Array2::zeros((steps, h)),
            tanh_cells: Array2::zeros((steps, h)),
            hidden: Array2::zeros((steps, h)),
            logits: Vec::new(),
        }
    }

    /// Step `t` of one sentence, given `W_hh h_(t-1)` (zero at t = 0).
    fn advance(&self, trace: &mut ForwardTrace<R>, t: usize, recurrent: &[R]) {
        let previous_cell = if t > 0 {
            trace.cells.row(t - 1).to_vec()
        } else {
            vec![R::zero(); self.hidden_size()]
        };
        lstm_step(
            LstmStepInputs {
                input: trace
                    .input_products
                    .row(t)
                    .to_slice()
                    .expect("standard layout"),
                bias: self.bias.as_slice().expect("standard layout"),
                recurrent,
                previous_cell: &previous_cell,
            },
            LstmStepOutputs {
                preactivation: trace
                    .preactivations
                    .row_mut(t)
                    .into_slice()
                    .expect("standard layout"),
                gates: trace
                    .gates
                    .row_mut(t)
                    .into_slice()
                    .expect("standard layout"),
                cell: trace
                    .cells
                    .row_mut(t)
                    .into_slice()
                    .expect("standard layout"),
                tanh_cell: trace
                    .tanh_cells
                    .row_mut(t)
                    .into_slice()
                    .expect("standard layout"),
                hidden: trace
                    .hidden
                    .row_mut(t)
                    .into_slice()
                    .expect("standard layout"),
            },
        );
    }

    /// `W_out · state` accumulated in f64, plus the output bias when `with_bias`.
    pub fn output(&self, state: ArrayView1<'_, R>, with_bias: bool) -> Vec<f64> {
        self.w_out
            .rows()
            .into_iter()
            .zip(self.b_out.iter())
            .map(|(w, &b)| {
                let dot = dot_f64(
                    w.as_slice().expect("standard layout"),
                    state.as_slice().expect("contiguous state"),
                );
                if with_bias { dot + b.as_f64() } else { dot }
            })
            .collect()
    }
}

/// What one LSTM step reads: `W_ih x_t`, `b`, `W_hh h_(t-1)` (all 4H) and `c_(t-1)` (H).
struct LstmStepInputs<'a, R> {
    input: &'a [R],
    bias: &'a [R],
    recurrent: &'a [R],
    previous_cell: &'a [R],
}

/// What one LSTM step writes: z and the gates (4H), c, tanh(c), h (H).
struct LstmStepOutputs<'a, R> {
    preactivation: &'a mut [R],
    gates: &'a mut [R],
    cell: &'a mut [R],
    tanh_cell: &'a mut [R],
    hidden: &'a mut [R],
}

simd_dispatch! {
    /// The element-wise part of an LSTM step, gate order i, f, g, o.
    fn lstm_step<R: Real>(inputs: LstmStepInputs<'_, R>, outputs: LstmStepOutputs<'_, R>) {
        let h = outputs.cell.len();
        for (k, z) in outputs.preactivation.iter_mut().enumerate() {
            *z = inputs.input[k] + inputs.bias[k] + inputs.recurrent[k];
        }
        let (z_if, z_go) = outputs.preactivation.split_at(2 * h);
        let (gates_if, gates_go) = outputs.gates.split_at_mut(2 * h);
        for (gate, &z) in gates_if.iter_mut().zip(z_if) {
            *gate = z.sigmoid();
        }
        for (k, (gate, &z)) in gates_go.iter_mut().zip(z_go).enumerate() {
            *gate = if k < h { z.tanh_act() } else { z.sigmoid() };
        }
        let (i, rest) = outputs.gates.split_at(h);
        let (f, rest) = rest.split_at(h);
        let (g, o) = rest.split_at(h);
        for j in 0..h {
            let c = f[j] * inputs.previous_cell[j] + i[j] * g[j];
            outputs.cell[j] = c;
            outputs.tanh_cell[j] = c.tanh_act();
            outputs.hidden[j] = o[j] * outputs.tanh_cell[j];
        }
    }
}

impl<R: Real> Classifier<R> for LstmClassifier<R> {
    fn vocab_size(&self) -> usize {
        self.embedding.nrows()
    }

    fn embedding_dim(&self) -> usize {
        self.embedding.ncols()
    }

    fn num_classes(&self) -> usize {
        self.w_out.nrows()
    }

    fn embed(&self, ids: &[usize]) -> Result<Array2<R>, ModelError> {
        LstmClassifier::embed(self, ids)
    }

    fn logits(&self, inputs: &[ArrayView2<'_, R>]) -> Vec<Vec<f64>> {
        self.forward_rows(inputs)
            .into_iter()
            .map(|trace| trace.logits)
            .collect()
    }

    fn occluded_logits(&self, requests: &[Occlusion<'_, R>]) -> Vec<Occluded> {
        self.lstm_occluded_logits(requests)
    }

    fn path_gradients(&self, requests: &[PathRequest<'_, R>]) -> Vec<PathGradients> {
        self.lstm_path_gradients(requests)
    }
}
