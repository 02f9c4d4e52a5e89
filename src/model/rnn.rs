//! Recurrent classifiers beyond the paper's: LSTM or GRU cells, any number of layers, one or two
//! directions, in the layout of PyTorch's `nn.LSTM` / `nn.GRU` (spec `cd_architectures.md` §1).
//!
//! The classifier reads the top layer's final states: h after the last token, and for a
//! bidirectional model the backward direction's state after the first token (PyTorch's
//! `h_n[-2]`, `h_n[-1]`).

use std::fmt;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::{ModelError, Occluded, Occlusion, PathGradients, PathRequest};
use crate::numeric::{Mat, Real, SplitMix64, dot_f64, matmul, simd_dispatch};

/// The recurrent cell.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    #[default]
    Lstm,
    Gru,
}

impl CellKind {
    /// Gate blocks per weight matrix: i, f, g, o or r, z, n.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// The recurrent module's name in the state_dict, and the YAML name.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the tensor names of a state_dict say about the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Architecture {
    pub cell: CellKind,
    pub layers: usize,
    pub bidirectional: bool,
}

impl Architecture {
    /// The paper's network: one unidirectional LSTM layer.
    pub const PAPER: Architecture = Architecture {
        cell: CellKind::Lstm,
        layers: 1,
        bidirectional: false,
    };

    pub fn directions(self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    pub fn is_paper(self) -> bool {
        self == Self::PAPER
    }

    /// The recurrent tensors of layer `layer`, direction `direction` (1 = backward), in the
    /// order `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    pub fn direction_tensors(self, layer: usize, direction: usize) -> [String; 4] {
        let suffix = if direction == 1 { "_reverse" } else { "" };
        let module = self.cell.name();
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
            .map(|kind| format!("{module}.{kind}_l{layer}{suffix}"))
    }

    /// Every tensor of the state_dict, in the order the loader, the saver and the trainer share.
    pub fn tensor_names(self) -> Vec<String> {
        let mut names = vec!["embed.weight".to_string()];
        for layer in 0..self.layers {
            for direction in 0..self.directions() {
                names.extend(self.direction_tensors(layer, direction));
            }
        }
        names.extend([
            "hidden_to_label.weight".into(),
            "hidden_to_label.bias".into(),
        ]);
        names
    }
}

/// "1-layer LSTM", "2-layer bidirectional GRU".
impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.bidirectional {
            " bidirectional"
        } else {
            ""
        };
        let cell = self.cell.name().to_uppercase();
        write!(f, "{}-layer{direction} {cell}", self.layers)
    }
}

/// The weights of one direction of one layer, in PyTorch's layout (gate blocks of H rows), with
/// their transposes for the products.
#[derive(Debug, Clone)]
pub struct DirectionWeights<R> {
    /// `(G·H, In)`.
    pub w_ih: Array2<R>,
    /// `(G·H, H)`.
    pub w_hh: Array2<R>,
    pub b_ih: Array1<R>,
    pub b_hh: Array1<R>,
    /// `(In, G·H)`.
    pub w_ih_t: Array2<R>,
    /// `(H, G·H)`.
    pub w_hh_t: Array2<R>,
}

impl<R: Real> DirectionWeights<R> {
    pub fn new(w_ih: Array2<R>, w_hh: Array2<R>, b_ih: Array1<R>, b_hh: Array1<R>) -> Self {
        let mut weights = Self {
            w_ih_t: Array2::zeros((0, 0)),
            w_hh_t: Array2::zeros((0, 0)),
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        };
        weights.refresh();
        weights
    }

    /// Computes the transposes, again after the weights changed in place (training).
    pub fn refresh(&mut self) {
        self.w_ih_t = self.w_ih.t().as_standard_layout().into_owned();
        self.w_hh_t = self.w_hh.t().as_standard_layout().into_owned();
    }
}

/// An embedding, a stack of recurrent layers and a linear output on the top layer's final states.
#[derive(Debug, Clone)]
pub struct RnnClassifier<R: Real> {
    architecture: Architecture,
    hidden: usize,
    embedding: Array2<R>,
    /// `layers[k][d]`: layer k, direction d (0 forward, 1 backward).
    layers: Vec<Vec<DirectionWeights<R>>>,
    /// `(C, D·H)`.
    w_out: Array2<R>,
    b_out: Array1<R>,
}

/// One direction's pass over a sentence; row t of each matrix belongs to position t, whatever
/// the direction's order.
#[derive(Debug, Clone)]
pub struct DirectionTrace<R> {
    /// `W_ih in_t` without bias, `(T, G·H)`.
    pub input_products: Array2<R>,
    /// `W_hh h_prev` without bias, h_prev the state before position t in this direction's order
    /// (zero at its first position), `(T, G·H)`.
    pub recurrent_products: Array2<R>,
    /// Gate values: σ(i), σ(f), tanh(g), σ(o) or σ(r), σ(z), tanh(n), `(T, G·H)`.
    pub gates: Array2<R>,
    /// LSTM cell states `(T, H)`; `(0, H)` for a GRU.
    pub cells: Array2<R>,
    /// `(T, H)`.
    pub hidden: Array2<R>,
}

/// One layer's passes and its output, both directions side by side.
#[derive(Debug, Clone)]
pub struct LayerTrace<R> {
    pub directions: Vec<DirectionTrace<R>>,
    /// `[h_fwd_t ; h_bwd_t]`, `(T, D·H)`.
    pub output: Array2<R>,
}

/// Every intermediate of a forward pass, kept for CD and backpropagation.
#[derive(Debug, Clone)]
pub struct RnnTrace<R> {
    /// The embedding rows, `(T, E)`.
    pub inputs: Array2<R>,
    pub layers: Vec<LayerTrace<R>>,
    /// The top layer's final states, `(D·H)`.
    pub features: Vec<R>,
    /// Output bias included.
    pub logits: Vec<f64>,
}

impl<R> RnnTrace<R> {
    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.nrows() == 0
    }
}

/// Positions in a direction's processing order.
pub fn processing_order(len: usize, backward: bool) -> Box<dyn DoubleEndedIterator<Item = usize>> {
    if backward {
        Box::new((0..len).rev())
    } else {
        Box::new(0..len)
    }
}

/// The position processed just before `t`, if any.
pub fn previous_position(t: usize, len: usize, backward: bool) -> Option<usize> {
    if backward {
        (t + 1 < len).then_some(t + 1)
    } else {
        t.checked_sub(1)
    }
}

impl<R: Real> RnnClassifier<R> {
    /// Builds a classifier from PyTorch-layout tensors; every shape is checked against the
    /// architecture (the loader names the file; this names the tensor).
    pub fn from_parts(
        architecture: Architecture,
        embedding: Array2<R>,
        layers: Vec<Vec<DirectionWeights<R>>>,
        w_out: Array2<R>,
        b_out: Array1<R>,
    ) -> Result<Self, ModelError> {
        let shape_error = |tensor: String, expected: Vec<usize>, actual: &[usize]| {
            Err(ModelError::Shape {
                path: "<memory>".into(),
                tensor,
                expected: format!("{expected:?}"),
                actual: actual.to_vec(),
            })
        };
        let hidden = layers
            .first()
            .and_then(|l| l.first())
            .map_or(0, |w| w.w_hh.ncols());
        let gates = architecture.cell.gates();
        let directions = architecture.directions();
        if layers.len() != architecture.layers || hidden == 0 || embedding.is_empty() {
            return Err(ModelError::Architecture {
                message: format!(
                    "{architecture} needs {} layers of {directions} directions with hidden size > 0 and a non-empty embedding",
                    architecture.layers
                ),
            });
        }
        for (k, layer) in layers.iter().enumerate() {
            if layer.len() != directions {
                return Err(ModelError::Architecture {
                    message: format!("layer {k} has {} directions, not {directions}", layer.len()),
                });
            }
            let input = if k == 0 {
                embedding.ncols()
            } else {
                directions * hidden
            };
            for (d, w) in layer.iter().enumerate() {
                let names = architecture.direction_tensors(k, d);
                let checks = [
                    (&names[0], vec![gates * hidden, input], w.w_ih.shape()),
                    (&names[1], vec![gates * hidden, hidden], w.w_hh.shape()),
                    (&names[2], vec![gates * hidden], w.b_ih.shape()),
                    (&names[3], vec![gates * hidden], w.b_hh.shape()),
                ];
                for (name, expected, actual) in checks {
                    if expected != actual {
                        return shape_error(name.clone(), expected, actual);
                    }
                }
            }
        }
        let classes = w_out.nrows();
        if classes == 0 || w_out.ncols() != directions * hidden {
            return shape_error(
                "hidden_to_label.weight".into(),
                vec![classes.max(1), directions * hidden],
                w_out.shape(),
            );
        }
        if b_out.len() != classes {
            return shape_error("hidden_to_label.bias".into(), vec![classes], b_out.shape());
        }
        Ok(Self {
            architecture,
            hidden,
            embedding,
            layers,
            w_out,
            b_out,
        })
    }

    /// PyTorch's default initialisation (embedding N(0, 1); every other weight and bias
    /// U(−1/√H, 1/√H)) from a seeded generator, for tests and benchmarks.
    pub fn seeded_random(
        architecture: Architecture,
        vocab: usize,
        embedding_dim: usize,
        hidden: usize,
        classes: usize,
        seed: u64,
    ) -> Self {
        let mut rng = SplitMix64(seed ^ 0x9E37_79B9_7F4A_7C15);
        let embedding =
            Array2::from_shape_fn((vocab, embedding_dim), |_| R::from_f64(rng.normal()));
        Self::initialise(architecture, embedding, hidden, classes, seed)
    }

    /// The given embedding rows and every other weight and bias U(−1/√H, 1/√H) from `seed`, as
    /// PyTorch's `nn.LSTM`, `nn.GRU` and `nn.Linear` start: what training starts from.
    pub fn initialise(
        architecture: Architecture,
        embedding: Array2<R>,
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
        let gh = architecture.cell.gates() * hidden;
        let directions = architecture.directions();
        let layers = (0..architecture.layers)
            .map(|k| {
                let input = if k == 0 {
                    embedding.ncols()
                } else {
                    directions * hidden
                };
                (0..directions)
                    .map(|_| {
                        let w_ih = uniform(gh, input);
                        let w_hh = uniform(gh, hidden);
                        let b_ih = uniform(1, gh).row(0).to_owned();
                        let b_hh = uniform(1, gh).row(0).to_owned();
                        DirectionWeights::new(w_ih, w_hh, b_ih, b_hh)
                    })
                    .collect()
            })
            .collect();
        let w_out = uniform(classes, directions * hidden);
        let b_out = uniform(1, classes).row(0).to_owned();
        Self::from_parts(architecture, embedding, layers, w_out, b_out)
            .expect("shapes are consistent by construction")
    }

    /// Starts every LSTM forget gate's bias at `value` (in `bias_ih`; `bias_hh`'s becomes 0).
    pub fn set_forget_bias(&mut self, value: f64) {
        let h = self.hidden;
        for layer in &mut self.layers {
            for w in layer {
                w.b_ih
                    .slice_mut(ndarray::s![h..2 * h])
                    .fill(R::from_f64(value));
                w.b_hh.slice_mut(ndarray::s![h..2 * h]).fill(R::zero());
            }
        }
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    pub fn vocab_size(&self) -> usize {
        self.embedding.nrows()
    }

    pub fn embedding_dim(&self) -> usize {
        self.embedding.ncols()
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn num_classes(&self) -> usize {
        self.w_out.nrows()
    }

    pub fn embedding(&self) -> ArrayView2<'_, R> {
        self.embedding.view()
    }

    /// `layers()[k][d]`: layer k, direction d.
    pub fn layers(&self) -> &[Vec<DirectionWeights<R>>] {
        &self.layers
    }

    /// `(C, D·H)`.
    pub fn w_out(&self) -> ArrayView2<'_, R> {
        self.w_out.view()
    }

    pub fn b_out(&self) -> &[R] {
        self.b_out.as_slice().expect("standard layout")
    }

    /// The input width of layer `k`.
    pub fn layer_input(&self, k: usize) -> usize {
        if k == 0 {
            self.embedding_dim()
        } else {
            self.architecture.directions() * self.hidden
        }
    }

    /// Every tensor's values in [`Architecture::tensor_names`] order, row-major.
    pub fn tensors(&self) -> Vec<&[R]> {
        let mut tensors: Vec<&[R]> = vec![self.embedding.as_slice().expect("standard layout")];
        for layer in &self.layers {
            for w in layer {
                for t in [&w.w_ih, &w.w_hh] {
                    tensors.push(t.as_slice().expect("standard layout"));
                }
                for b in [&w.b_ih, &w.b_hh] {
                    tensors.push(b.as_slice().expect("standard layout"));
                }
            }
        }
        tensors.push(self.w_out.as_slice().expect("standard layout"));
        tensors.push(self.b_out.as_slice().expect("standard layout"));
        tensors
    }

    /// [`Self::tensors`], writable; call [`Self::refresh`] after writing.
    pub fn tensors_mut(&mut self) -> Vec<&mut [R]> {
        let mut tensors = vec![self.embedding.as_slice_mut().expect("standard layout")];
        for layer in &mut self.layers {
            for w in layer {
                let DirectionWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    ..
                } = w;
                tensors.push(w_ih.as_slice_mut().expect("standard layout"));
                tensors.push(w_hh.as_slice_mut().expect("standard layout"));
                tensors.push(b_ih.as_slice_mut().expect("standard layout"));
                tensors.push(b_hh.as_slice_mut().expect("standard layout"));
            }
        }
        tensors.push(self.w_out.as_slice_mut().expect("standard layout"));
        tensors.push(self.b_out.as_slice_mut().expect("standard layout"));
        tensors
    }

    /// Recomputes the transposed copies after [`Self::tensors_mut`].
    pub fn refresh(&mut self) {
        for layer in &mut self.layers {
            for w in layer {
                w.refresh();
            }
        }
    }

    /// The same network in another precision.
    pub fn cast<S: Real>(&self) -> RnnClassifier<S> {
        let m = |a: &Array2<R>| a.mapv(|v| S::from_f64(v.as_f64()));
        let v = |a: &Array1<R>| a.mapv(|v| S::from_f64(v.as_f64()));
        RnnClassifier {
            architecture: self.architecture,
            hidden: self.hidden,
            embedding: m(&self.embedding),
            layers: self
                .layers
                .iter()
                .map(|layer| {
                    layer
                        .iter()
                        .map(|w| {
                            DirectionWeights::new(m(&w.w_ih), m(&w.w_hh), v(&w.b_ih), v(&w.b_hh))
                        })
                        .collect()
                })
                .collect(),
            w_out: m(&self.w_out),
            b_out: v(&self.b_out),
        }
    }

    /// Checks that a sentence is non-empty and every id is an embedding row.
    pub fn check_ids(&self, ids: &[usize]) -> Result<(), ModelError> {
        super::check_token_ids(ids, self.vocab_size())
    }

    /// The embedding rows of a sentence, `(T, E)`.
    pub fn embed(&self, ids: &[usize]) -> Result<Array2<R>, ModelError> {
        self.check_ids(ids)?;
        Ok(self.embedding.select(Axis(0), ids))
    }

    /// The forward pass over `ids` from zero initial states, as PyTorch runs it.
    pub fn forward(&self, ids: &[usize]) -> Result<RnnTrace<R>, ModelError> {
        Ok(self.forward_rows(self.embed(ids)?))
    }

    /// The forward pass over embedding rows `(T, E)`, T ≥ 1.
    pub fn forward_rows(&self, inputs: Array2<R>) -> RnnTrace<R> {
        assert!(
            inputs.nrows() > 0 && inputs.ncols() == self.embedding_dim(),
            "a sentence of at least one embedding row"
        );
        let layers = self.forward_layers(inputs.view(), 1);
        let features = self.features(&layers, 0, inputs.nrows());
        let logits = self.output(&features, true);
        RnnTrace {
            inputs,
            layers,
            features,
            logits,
        }
    }

    /// Forward passes of `batch` sentences of one length, their input rows stacked sentence after
    /// sentence (`(batch·T, E)`); every step is one matrix product for all of them. Row b·T + t of
    /// each trace matrix belongs to sentence b, position t.
    pub(super) fn forward_layers(
        &self,
        inputs: ArrayView2<'_, R>,
        batch: usize,
    ) -> Vec<LayerTrace<R>> {
        let h = self.hidden;
        let mut layers: Vec<LayerTrace<R>> = Vec::with_capacity(self.layers.len());
        for (k, weights) in self.layers.iter().enumerate() {
            let input = if k == 0 {
                inputs
            } else {
                layers[k - 1].output.view()
            };
            let directions: Vec<DirectionTrace<R>> = weights
                .iter()
                .enumerate()
                .map(|(d, w)| self.run_direction(w, input, batch, d == 1))
                .collect();
            let mut output = Array2::<R>::zeros((input.nrows(), directions.len() * h));
            for (d, trace) in directions.iter().enumerate() {
                output
                    .slice_mut(ndarray::s![.., d * h..(d + 1) * h])
                    .assign(&trace.hidden);
            }
            layers.push(LayerTrace { directions, output });
        }
        layers
    }

    /// The top layer's final states of sentence `b` of a batch of `len`-token sentences.
    pub(super) fn features(&self, layers: &[LayerTrace<R>], b: usize, len: usize) -> Vec<R> {
        let top = layers.last().expect("at least one layer");
        let mut features = top.directions[0].hidden.row(b * len + len - 1).to_vec();
        if let Some(backward) = top.directions.get(1) {
            features.extend(backward.hidden.row(b * len));
        }
        features
    }

    /// One direction of one layer over the input rows of a batch.
    fn run_direction(
        &self,
        w: &DirectionWeights<R>,
        input: ArrayView2<'_, R>,
        batch: usize,
        backward: bool,
    ) -> DirectionTrace<R> {
        let (rows, h) = (input.nrows(), self.hidden);
        let len = rows / batch;
        let gh = self.architecture.cell.gates() * h;
        let input = input.as_standard_layout();
        let mut input_products = Array2::<R>::zeros((rows, gh));
        matmul(
            Mat::new(
                input.as_slice().expect("standard layout"),
                rows,
                input.ncols(),
            ),
            Mat::new(
                w.w_ih_t.as_slice().expect("standard layout"),
                input.ncols(),
                gh,
            ),
            input_products.as_slice_mut().expect("standard layout"),
            false,
        );
        let mut recurrent_products = Array2::<R>::zeros((rows, gh));
        let mut gates = Array2::<R>::zeros((rows, gh));
        let lstm = self.architecture.cell == CellKind::Lstm;
        let mut cells = Array2::<R>::zeros((if lstm { rows } else { 0 }, h));
        let mut hidden = Array2::<R>::zeros((rows, h));
        let (b_ih, b_hh) = (
            w.b_ih.as_slice().expect("standard layout"),
            w.b_hh.as_slice().expect("standard layout"),
        );
        let mut previous_hidden = vec![R::zero(); batch * h];
        let mut previous_cell = vec![R::zero(); h];
        let mut recurrent = vec![R::zero(); batch * gh];
        for t in processing_order(len, backward) {
            let previous = previous_position(t, len, backward);
            if let Some(p) = previous {
                for b in 0..batch {
                    previous_hidden[b * h..(b + 1) * h].copy_from_slice(
                        hidden.row(b * len + p).as_slice().expect("standard layout"),
                    );
                }
                matmul(
                    Mat::new(&previous_hidden, batch, h),
                    Mat::new(w.w_hh_t.as_slice().expect("standard layout"), h, gh),
                    &mut recurrent,
                    false,
                );
            }
            for b in 0..batch {
                let row = b * len + t;
                let rec = &recurrent[b * gh..(b + 1) * gh];
                recurrent_products
                    .row_mut(row)
                    .assign(&ArrayView1::from(rec));
                let inp = input_products.row(row);
                let inp = inp.as_slice().expect("standard layout");
                let h_prev = &previous_hidden[b * h..(b + 1) * h];
                let mut gate_row = gates.row_mut(row);
                let gate = gate_row.as_slice_mut().expect("standard layout");
                let mut h_row = hidden.row_mut(row);
                let h_row = h_row.as_slice_mut().expect("standard layout");
                let products = CellProducts {
                    input: inp,
                    recurrent: rec,
                    b_ih,
                    b_hh,
                };
                if lstm {
                    match previous {
                        Some(p) => previous_cell.copy_from_slice(
                            cells.row(b * len + p).as_slice().expect("standard layout"),
                        ),
                        None => previous_cell.fill(R::zero()),
                    }
                    let mut c_row = cells.row_mut(row);
                    let c_row = c_row.as_slice_mut().expect("standard layout");
                    lstm_cell(products, &previous_cell, gate, c_row, h_row);
                } else {
                    gru_cell(products, h_prev, gate, h_row);
                }
            }
        }
        DirectionTrace {
            input_products,
            recurrent_products,
            gates,
            cells,
            hidden,
        }
    }

    /// `W_out · features` accumulated in f64, plus the output bias when `with_bias`.
    pub fn output(&self, features: &[R], with_bias: bool) -> Vec<f64> {
        self.w_out
            .rows()
            .into_iter()
            .zip(self.b_out.iter())
            .map(|(w, &b)| {
                let dot = dot_f64(w.as_slice().expect("standard layout"), features);
                if with_bias { dot + b.as_f64() } else { dot }
            })
            .collect()
    }
}

/// One position's products without bias and the biases, gates in PyTorch's order.
#[derive(Clone, Copy)]
struct CellProducts<'a, R> {
    input: &'a [R],
    recurrent: &'a [R],
    b_ih: &'a [R],
    b_hh: &'a [R],
}

simd_dispatch! {
    /// One position of an LSTM direction: gates i, f, g, o, the cell and the hidden state.
    fn lstm_cell<R: Real>(
        products: CellProducts<'_, R>,
        previous_cell: &[R],
        gate: &mut [R],
        cell: &mut [R],
        hidden: &mut [R],
    ) {
        let h = cell.len();
        let CellProducts { input, recurrent, b_ih, b_hh } = products;
        for (k, value) in gate.iter_mut().enumerate() {
            *value = input[k] + b_ih[k] + recurrent[k] + b_hh[k];
        }
        let (logistic_if, rest) = gate.split_at_mut(2 * h);
        let (candidate, output) = rest.split_at_mut(h);
        for value in logistic_if.iter_mut().chain(output.iter_mut()) {
            *value = value.sigmoid();
        }
        for value in candidate.iter_mut() {
            *value = value.tanh_act();
        }
        for j in 0..h {
            let c = gate[h + j] * previous_cell[j] + gate[j] * gate[2 * h + j];
            cell[j] = c;
            hidden[j] = gate[3 * h + j] * c.tanh_act();
        }
    }
}

simd_dispatch! {
    /// One position of a GRU direction: gates r, z, the candidate n and the hidden state.
    fn gru_cell<R: Real>(
        products: CellProducts<'_, R>,
        previous_hidden: &[R],
        gate: &mut [R],
        hidden: &mut [R],
    ) {
        let h = hidden.len();
        let CellProducts { input, recurrent, b_ih, b_hh } = products;
        for k in 0..2 * h {
            gate[k] = (input[k] + b_ih[k] + recurrent[k] + b_hh[k]).sigmoid();
        }
        for j in 0..h {
            let n = (input[2 * h + j] + b_ih[2 * h + j] + gate[j] * (recurrent[2 * h + j] + b_hh[2 * h + j]))
                .tanh_act();
            gate[2 * h + j] = n;
            let z = gate[h + j];
            hidden[j] = (R::one() - z) * n + z * previous_hidden[j];
        }
    }
}

impl<R: Real> super::Classifier<R> for RnnClassifier<R> {
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
        RnnClassifier::embed(self, ids)
    }

    fn logits(&self, inputs: &[ArrayView2<'_, R>]) -> Vec<Vec<f64>> {
        inputs
            .iter()
            .map(|rows| self.forward_rows(rows.to_owned()).logits)
            .collect()
    }

    /// Every copy runs in full: with a backward direction or layers above, a zeroed span changes
    /// states on both sides of it.
    fn occluded_logits(&self, requests: &[Occlusion<'_, R>]) -> Vec<Occluded> {
        requests
            .iter()
            .map(|request| Occluded {
                logits: self.forward_rows(request.input.to_owned()).logits,
                occluded: request
                    .spans
                    .iter()
                    .map(|span| {
                        let mut copy = request.input.to_owned();
                        copy.slice_mut(ndarray::s![span.clone(), ..])
                            .fill(R::zero());
                        self.forward_rows(copy).logits
                    })
                    .collect(),
            })
            .collect()
    }

    /// Request by request, all points of a request in one batch: a forward pass, then
    /// backpropagation through time of ∂F/∂logits.
    fn path_gradients(&self, requests: &[PathRequest<'_, R>]) -> Vec<PathGradients> {
        requests
            .iter()
            .map(|request| self.path_gradients_of(request))
            .collect()
    }
}
