//! The batched CD engine for stacked and bidirectional LSTMs and for GRUs (spec
//! `cd_architectures.md` §6): all spans of a sentence advance together through each layer and
//! direction, with one matrix product per step for the recurrent products of their states.
//!
//! Exact shortcuts (exact in real arithmetic; only rounding differs from the one-span reference):
//! - γ_h = h − β_h, so only β_h needs recurrent products once the forward pass is known (an
//!   LSTM's γ^c is propagated as well, at no extra activation cost: see [`super::kernel`]);
//! - a span's β is exactly zero until its relevant input first is: in layer 0 before its start
//!   (forward) or after its end (backward); above, wherever the layer below's β is still zero.
//!   Such steps are skipped and the span joins when its input does (the "join" rule of §6);
//! - spans whose states are equal so far share one lane (one state): in layer 0, those that
//!   joined at the same step and took the same role since (input inside the span or not, bias
//!   product relevant or not); above, those that also shared the layer below's lanes. A lane that
//!   splits has its recurrent product computed once, before the split;
//! - above layer 0 a lane's input product is split by the directions below, `W [β_f; β_b] =
//!   W_f β_f + W_b β_b`, and each part is computed once per lane of the layer below rather than
//!   once per lane of this layer: over a bidirectional layer every span and position is a lane of
//!   its own, while the layer below has about a third as many;
//! - LSTM steps run the one-layer engine's blocked kernel ([`StepTable`]), GRU steps
//!   [`gru_update`]; the bias-only shares are computed once per direction.

use ndarray::ArrayView1;
use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use super::engine::{completeness_residual, recurrent_product_columns};
use super::gru_kernel::{GruLane, GruPlan, GruScratch, GruStep, gru_update, row};
use super::kernel::{StepTable, StepValues};
use super::{Convention, Decomposition};
use crate::attribution::{
    Attribution, AttributionError, LinearTarget, SentenceSpans, Span, SpanScore, Target,
    check_sentences,
};
use crate::model::{CellKind, DirectionTrace, RnnClassifier, RnnTrace};
use crate::numeric::{Mat, Real, matmul, simd_dispatch};

/// The lane of a span at a position where its β is still exactly zero.
const NOT_JOINED: usize = usize::MAX;

/// Spans × positions of one chunk of a sentence's spans. A direction has at most one lane per span
/// and position, and every lane's state is kept until the layer above has run, so this bounds the
/// engine's memory for long sentences (11 MB per direction in f32 at H = 168).
const SPAN_POSITIONS_PER_CHUNK: usize = 1 << 14;

/// The weights of one direction restricted to the decomposed gates (LSTM i, f, g; GRU r, z, n),
/// transposed and padded to [`recurrent_product_columns`] `C`, and its bias values.
#[derive(Debug)]
struct DirectionPlan<R> {
    /// `(In, C)`; above layer 0, rows `b·H..(b + 1)·H` multiply direction b of the layer below.
    input: Vec<R>,
    /// `(H, C)`.
    recurrent: Vec<R>,
    /// `b_ih + b_hh` of the three decomposed gates.
    bias: Vec<R>,
    /// A GRU direction's bias shares.
    gru: Option<GruPlan<R>>,
}

impl<R: Real> DirectionPlan<R> {
    fn new(model: &RnnClassifier<R>, layer: usize, direction: usize) -> Self {
        let w = &model.layers()[layer][direction];
        let h = model.hidden_size();
        let columns = recurrent_product_columns(h);
        let pad = |transposed: &ndarray::Array2<R>| -> Vec<R> {
            let mut values = vec![R::zero(); transposed.nrows() * columns];
            for (row, source) in values.chunks_exact_mut(columns).zip(transposed.rows()) {
                for (v, &s) in row.iter_mut().zip(source.iter().take(3 * h)) {
                    *v = s;
                }
            }
            values
        };
        let (b_ih, b_hh) = (
            w.b_ih.as_slice().expect("standard layout"),
            w.b_hh.as_slice().expect("standard layout"),
        );
        Self {
            input: pad(&w.w_ih_t),
            recurrent: pad(&w.w_hh_t),
            bias: (0..3 * h).map(|k| b_ih[k] + b_hh[k]).collect(),
            gru: (model.architecture().cell == CellKind::Gru).then(|| GruPlan::new(b_ih, b_hh, h)),
        }
    }
}

/// Rows of the state operand per [`matmul`] call in [`product_by_rows`].
const ROWS_PER_PRODUCT: usize = 48;

/// `states · weights` for `(rows, H)` states and `(H, C)` weights into `out`, in calls of at most
/// [`ROWS_PER_PRODUCT`] rows: with more, the backend copies the weights into its own layout on
/// every call. Measured at H = 168, C = 512: 106-111 GFLOP/s for 64-210 rows in one call, 114-115
/// in calls of at most 48; the engine's steps have 20-210 rows.
fn product_by_rows<R: Real>(states: &[R], weights: &[R], h: usize, out: &mut [R]) {
    let columns = weights.len() / h;
    for (block, out) in states
        .chunks(ROWS_PER_PRODUCT * h)
        .zip(out.chunks_mut(ROWS_PER_PRODUCT * columns))
    {
        matmul(
            Mat::new(block, block.len() / h, h),
            Mat::new(weights, h, columns),
            out,
            false,
        );
    }
}

/// One direction of a layer as the layer above reads it.
struct LaneHistory<R> {
    /// The lane of each span at each position (`s·T + t`), [`NOT_JOINED`] where its β is zero.
    lane_of: Vec<usize>,
    /// The lanes at each position.
    lanes_at: Vec<Range<usize>>,
    /// β_h of every lane, `(lanes, H)`, lanes numbered in the order they were computed.
    states: Vec<R>,
}

/// Buffers of finished calls, one pool taken by each running call (one per worker), so that a
/// call does not allocate, zero and page-fault its states again: the allocator returns blocks of
/// this size to the system when they are freed (measured: 13 % of the time in page faults).
#[derive(Debug, Default)]
struct Workspace<R> {
    values: Vec<Vec<R>>,
    indices: Vec<Vec<usize>>,
}

impl<R: Real> Workspace<R> {
    /// An empty buffer, with the capacity of an earlier one where there is one.
    fn values(&mut self) -> Vec<R> {
        let mut buffer = self.values.pop().unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// `len` copies of `value`, in an earlier buffer where there is one.
    fn indices(&mut self, len: usize, value: usize) -> Vec<usize> {
        let mut buffer = self.indices.pop().unwrap_or_default();
        buffer.clear();
        buffer.resize(len, value);
        buffer
    }

    fn recycle(&mut self, history: LaneHistory<R>) {
        self.values.push(history.states);
        self.indices.push(history.lane_of);
    }
}

/// Spans whose states are equal so far, and the row of their previous state among the previous
/// step's lanes (`None`: β was zero).
struct Lane {
    members: Vec<usize>,
    source: Option<usize>,
}

/// Appends `members`, one lane before this step, to `out` as one lane per distinct `key`: the
/// first member's key keeps the list (in the common case, every member's).
fn split_lane<K: PartialEq>(
    mut members: Vec<usize>,
    source: Option<usize>,
    key: impl Fn(usize) -> K,
    out: &mut Vec<Lane>,
) {
    let first = key(members[0]);
    let mut others: Vec<(K, Vec<usize>)> = Vec::new();
    members.retain(|&s| {
        let k = key(s);
        if k == first {
            return true;
        }
        match others.iter_mut().find(|(other, _)| *other == k) {
            Some((_, group)) => group.push(s),
            None => others.push((k, vec![s])),
        }
        false
    });
    out.push(Lane { members, source });
    out.extend(
        others
            .into_iter()
            .map(|(_, members)| Lane { members, source }),
    );
}

/// CD under one convention for an [`RnnClassifier`], as an [`Attribution`] method.
#[derive(Debug)]
pub struct StackedDecomposition<'m, R: Real> {
    model: &'m RnnClassifier<R>,
    convention: Convention,
    keep_beta: bool,
    /// `plans[k][d]`.
    plans: Vec<Vec<DirectionPlan<R>>>,
    workspaces: Mutex<Vec<Workspace<R>>>,
}

impl<'m, R: Real> StackedDecomposition<'m, R> {
    pub fn new(model: &'m RnnClassifier<R>, convention: Convention) -> Self {
        let plans = (0..model.layers().len())
            .map(|k| {
                (0..model.architecture().directions())
                    .map(|d| DirectionPlan::new(model, k, d))
                    .collect()
            })
            .collect();
        Self {
            model,
            convention,
            keep_beta: false,
            plans,
            workspaces: Mutex::new(Vec::new()),
        }
    }

    /// The same method, its scores carrying the top layer's final β (`D·H`) as their embedding.
    pub fn with_beta(mut self) -> Self {
        self.keep_beta = true;
        self
    }

    /// CD of `spans` of a sentence given its forward pass; spans must fit the sentence.
    pub fn decompose(&self, trace: &RnnTrace<R>, spans: &[Span]) -> Vec<Decomposition> {
        let per_chunk = (SPAN_POSITIONS_PER_CHUNK / trace.len()).max(1);
        spans
            .chunks(per_chunk)
            .flat_map(|chunk| self.decompose_chunk(trace, chunk))
            .collect()
    }

    fn decompose_chunk(&self, trace: &RnnTrace<R>, spans: &[Span]) -> Vec<Decomposition> {
        let (len, h) = (trace.len(), self.model.hidden_size());
        let directions = self.model.architecture().directions();
        // A poisoned lock only means another call panicked; a call writes every value it reads.
        let take = || {
            self.workspaces
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let mut workspace = take().pop().unwrap_or_default();
        let mut below: Vec<LaneHistory<R>> = Vec::new();
        for k in 0..self.plans.len() {
            let layer = (0..directions)
                .map(|d| self.run_direction(trace, spans, (k, d), &below, &mut workspace))
                .collect();
            for history in std::mem::replace(&mut below, layer) {
                workspace.recycle(history);
            }
        }
        let width = directions * h;
        let mut features = vec![R::zero(); spans.len() * width];
        for (d, history) in below.iter().enumerate() {
            let last = if d == 1 { 0 } else { len - 1 };
            for (s, feature) in features.chunks_exact_mut(width).enumerate() {
                let lane = history.lane_of[s * len + last];
                feature[d * h..(d + 1) * h]
                    .copy_from_slice(&history.states[lane * h..(lane + 1) * h]);
            }
        }
        for history in below {
            workspace.recycle(history);
        }
        take().push(workspace);
        self.finish(trace, spans, &features)
    }

    /// Runs direction `d` of layer `k` over every span, given the lanes of the layer below.
    fn run_direction(
        &self,
        trace: &RnnTrace<R>,
        spans: &[Span],
        (k, d): (usize, usize),
        below: &[LaneHistory<R>],
        workspace: &mut Workspace<R>,
    ) -> LaneHistory<R> {
        let h = self.model.hidden_size();
        let (len, count) = (trace.len(), spans.len());
        let plan = &self.plans[k][d];
        let direction = &trace.layers[k].directions[d];
        let columns = recurrent_product_columns(h);
        let position = |step: usize| if d == 1 { len - 1 - step } else { step };
        // Per direction below, W_b β of each of its lanes at this step's position.
        let mut lower_products: Vec<Vec<R>> = below.iter().map(|_| workspace.values()).collect();
        let lower_lane = |b: usize, s: usize, t: usize| below[b].lane_of[s * len + t];
        let input_relevant = |s: usize, t: usize| {
            if k == 0 {
                spans[s].contains(t)
            } else {
                (0..below.len()).any(|b| lower_lane(b, s, t) != NOT_JOINED)
            }
        };
        // Spans in the order they join: at the first step where their relevant input is non-zero.
        let joins: Vec<usize> = (0..count)
            .map(|s| {
                (0..len)
                    .find(|&step| input_relevant(s, position(step)))
                    .expect("every span has a relevant input at some position")
            })
            .collect();
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by_key(|&s| joins[s]);
        let mut joined = 0;

        let mut history = LaneHistory {
            lane_of: workspace.indices(count * len, NOT_JOINED),
            lanes_at: vec![0..0; len],
            states: workspace.values(),
        };
        let mut operands = Operands::new(plan, h, workspace);
        let mut lanes: Vec<Lane> = Vec::new();
        let mut next: Vec<Lane> = Vec::new();
        // The first row of `history.states` holding the previous step's lanes.
        let mut first = 0;
        for step in 0..len {
            let t = position(step);
            let rows = lanes.len();
            operands.recurrent.resize(rows * columns, R::zero());
            product_by_rows(
                &history.states[first * h..(first + rows) * h],
                &plan.recurrent,
                h,
                &mut operands.recurrent,
            );
            // The key under which spans keep sharing a lane at t: equal keys at every step so far
            // mean equal states.
            let key = |s: usize| -> [usize; 3] {
                let relevant = usize::from(self.convention.bias_product_relevant(spans[s], t));
                if k == 0 {
                    [usize::from(spans[s].contains(t)), 0, relevant]
                } else {
                    let lane = |b: usize| {
                        if b < below.len() {
                            lower_lane(b, s, t)
                        } else {
                            0
                        }
                    };
                    [lane(0), lane(1), relevant]
                }
            };
            for (row, lane) in lanes.drain(..).enumerate() {
                split_lane(lane.members, Some(row), key, &mut next);
            }
            let start = joined;
            while joined < count && joins[order[joined]] <= step {
                joined += 1;
            }
            if start < joined {
                split_lane(order[start..joined].to_vec(), None, key, &mut next);
            }
            let new_first = history.states.len() / h;
            history.lanes_at[t] = new_first..new_first + next.len();
            for (i, lane) in next.iter().enumerate() {
                for &s in &lane.members {
                    history.lane_of[s * len + t] = new_first + i;
                }
            }
            history
                .states
                .resize((new_first + next.len()) * h, R::zero());
            let (previous, new) = history.states.split_at_mut(new_first * h);
            let previous = &previous[first * h..];
            for (b, (lower, products)) in below.iter().zip(&mut lower_products).enumerate() {
                let lanes = lower.lanes_at[t].clone();
                products.resize(lanes.len() * columns, R::zero());
                product_by_rows(
                    &lower.states[lanes.start * h..lanes.end * h],
                    &plan.input[b * h * columns..(b + 1) * h * columns],
                    h,
                    products,
                );
            }
            let context = StepContext {
                spans,
                len,
                t,
                previous_t: step.checked_sub(1).map(position),
                direction,
                below,
                lower_products: &lower_products,
                columns,
            };
            operands.advance(&context, self.convention, &next, previous, new);
            first = new_first;
            std::mem::swap(&mut lanes, &mut next);
        }
        operands.recycle(workspace);
        workspace.values.extend(lower_products);
        history
    }

    fn finish(&self, trace: &RnnTrace<R>, spans: &[Span], features: &[R]) -> Vec<Decomposition> {
        let width = trace.features.len();
        let logits_without_bias: Vec<f64> = trace
            .logits
            .iter()
            .zip(self.model.b_out())
            .map(|(l, b)| l - b.as_f64())
            .collect();
        spans
            .iter()
            .zip(features.chunks_exact(width))
            .map(|(&span, beta)| {
                let gamma: Vec<R> = trace
                    .features
                    .iter()
                    .zip(beta)
                    .map(|(&f, &b)| f - b)
                    .collect();
                let rel = self.model.output(beta, false);
                let irrel = self.model.output(&gamma, false);
                let residual = completeness_residual(&rel, &irrel, &logits_without_bias);
                Decomposition {
                    span,
                    rel,
                    irrel,
                    residual,
                    beta: self
                        .keep_beta
                        .then(|| beta.iter().map(|v| v.as_f64() as f32).collect()),
                }
            })
            .collect()
    }
}

/// What every lane of one step of one direction shares.
struct StepContext<'a, R> {
    spans: &'a [Span],
    len: usize,
    /// The position of this step and of the previous one in this direction's order.
    t: usize,
    previous_t: Option<usize>,
    direction: &'a DirectionTrace<R>,
    below: &'a [LaneHistory<R>],
    /// Per direction below, the input product of each of its lanes at t, `(lanes, C)`.
    lower_products: &'a [Vec<R>],
    columns: usize,
}

impl<R: Real> StepContext<'_, R> {
    /// The relevant input product at t of the lane holding span `s` above layer 0, the sum over
    /// the directions below of their lane's product, plus `base` when given (3H). A sum of one
    /// term is that term; a longer one is written to `sum`.
    fn input_product<'x>(&'x self, s: usize, base: Option<&'x [R]>, sum: &'x mut [R]) -> &'x [R] {
        let n = sum.len();
        let lower = self
            .below
            .iter()
            .zip(self.lower_products)
            .filter_map(|(lower, products)| {
                let lane = lower.lane_of[s * self.len + self.t];
                (lane != NOT_JOINED)
                    .then(|| &products[(lane - lower.lanes_at[self.t].start) * self.columns..][..n])
            });
        let mut terms = base.into_iter().chain(lower);
        let Some(first) = terms.next() else {
            sum.fill(R::zero());
            return sum;
        };
        let Some(second) = terms.next() else {
            return first;
        };
        add_pair(sum, first, second);
        for term in terms {
            add_assign(sum, term);
        }
        sum
    }
}

/// The per-step buffers of one direction's lanes.
struct Operands<'p, R> {
    plan: &'p DirectionPlan<R>,
    h: usize,
    /// V β_h of the previous step's lanes, `(lanes, C)`.
    recurrent: Vec<R>,
    /// The recurrent product, input and β_h of a lane whose β was zero.
    zero: Vec<R>,
    /// Above layer 0: a lane's relevant input product (for an LSTM, plus its recurrent product).
    combined: Vec<R>,
    cell: CellOperands<R>,
}

enum CellOperands<R> {
    Lstm {
        table: StepTable<R>,
        /// `[β^c | γ^c]` of the previous step's lanes, and of this step's.
        cells: Vec<R>,
        next_cells: Vec<R>,
        /// The cells of a lane that joins: β^c = 0 and γ^c the previous position's c.
        unstarted: Vec<R>,
        /// The step's z = W x + V h + b and tanh(c), which the forward pass does not keep.
        preactivation: Vec<R>,
        tanh_cell: Vec<R>,
    },
    Gru {
        step: GruStep<R>,
        scratch: GruScratch<R>,
    },
}

impl<'p, R: Real> Operands<'p, R> {
    fn new(plan: &'p DirectionPlan<R>, h: usize, workspace: &mut Workspace<R>) -> Self {
        let columns = recurrent_product_columns(h);
        let cell = match plan.gru {
            None => CellOperands::Lstm {
                table: StepTable::new(&plan.bias, h),
                cells: workspace.values(),
                next_cells: workspace.values(),
                unstarted: vec![R::zero(); 2 * h],
                preactivation: vec![R::zero(); 3 * h],
                tanh_cell: vec![R::zero(); h],
            },
            Some(_) => CellOperands::Gru {
                step: GruStep::new(h),
                scratch: GruScratch::new(h),
            },
        };
        Self {
            plan,
            h,
            recurrent: workspace.values(),
            zero: vec![R::zero(); columns],
            combined: vec![R::zero(); 3 * h],
            cell,
        }
    }

    fn recycle(self, workspace: &mut Workspace<R>) {
        workspace.values.push(self.recurrent);
        if let CellOperands::Lstm {
            cells, next_cells, ..
        } = self.cell
        {
            workspace.values.extend([cells, next_cells]);
        }
    }

    /// This step's state of every lane in `lanes` (β_h into `new`, `H` per lane) from the
    /// previous step's (`previous`, and [`Self::recurrent`] computed from it).
    fn advance(
        &mut self,
        cx: &StepContext<'_, R>,
        convention: Convention,
        lanes: &[Lane],
        previous: &[R],
        new: &mut [R],
    ) {
        let Self {
            plan,
            h,
            recurrent,
            zero,
            combined,
            cell,
        } = self;
        let (h, columns) = (*h, zero.len());
        let mask = |flag: bool| if flag { R::one() } else { R::zero() };
        let layer_zero = cx.below.is_empty();
        let (t, direction) = (cx.t, cx.direction);
        let input = &row(&direction.input_products, t)[..3 * h];
        let recurrent_row = |source: Option<usize>| match source {
            Some(r) => &recurrent[r * columns..r * columns + 3 * h],
            None => &zero[..3 * h],
        };
        match cell {
            CellOperands::Lstm {
                table,
                cells,
                next_cells,
                unstarted,
                preactivation,
                tanh_cell,
            } => {
                lstm_step_values(
                    input,
                    row(&direction.recurrent_products, t),
                    &plan.bias,
                    row(&direction.cells, t),
                    preactivation,
                    tanh_cell,
                );
                table.fill(StepValues {
                    input,
                    preactivation,
                    gates: row(&direction.gates, t),
                    tanh_cell,
                });
                match cx.previous_t {
                    Some(p) => unstarted[h..].copy_from_slice(row(&direction.cells, p)),
                    None => unstarted[h..].fill(R::zero()),
                }
                next_cells.resize(lanes.len() * 2 * h, R::zero());
                for (i, lane) in lanes.iter().enumerate() {
                    let s = lane.members[0];
                    let previous_cells = match lane.source {
                        Some(r) => &cells[r * 2 * h..(r + 1) * 2 * h],
                        None => &unstarted[..],
                    };
                    let relevant = mask(convention.bias_product_relevant(cx.spans[s], t));
                    let rec = recurrent_row(lane.source);
                    let (rel, in_span) = if layer_zero {
                        (rec, mask(cx.spans[s].contains(t)))
                    } else {
                        (cx.input_product(s, Some(rec), combined), R::zero())
                    };
                    table.update(
                        (rel, previous_cells),
                        (in_span, relevant),
                        &mut new[i * h..(i + 1) * h],
                        &mut next_cells[i * 2 * h..(i + 1) * 2 * h],
                    );
                }
                std::mem::swap(cells, next_cells);
            }
            CellOperands::Gru { step, scratch } => {
                let gru = plan.gru.as_ref().expect("a GRU direction has its plan");
                step.fill(gru, direction, t);
                for (i, lane) in lanes.iter().enumerate() {
                    let s = lane.members[0];
                    let previous_h = match lane.source {
                        Some(r) => &previous[r * h..(r + 1) * h],
                        None => &zero[..h],
                    };
                    let relevant_input = if layer_zero {
                        if cx.spans[s].contains(t) {
                            input
                        } else {
                            &zero[..3 * h]
                        }
                    } else {
                        cx.input_product(s, None, combined)
                    };
                    let lane = GruLane {
                        recurrent: recurrent_row(lane.source),
                        input: relevant_input,
                        bias_relevant: mask(convention.bias_product_relevant(cx.spans[s], t)),
                        previous: previous_h,
                    };
                    gru_update(gru, step, lane, scratch, &mut new[i * h..(i + 1) * h]);
                }
            }
        }
    }
}

simd_dispatch! {
    /// An LSTM step's pre-activations z = W x + V h + b of gates i, f, g, and tanh(c_t).
    fn lstm_step_values<R: Real>(
        input: &[R],
        recurrent: &[R],
        bias: &[R],
        cell: &[R],
        preactivation: &mut [R],
        tanh_cell: &mut [R],
    ) {
        for (k, z) in preactivation.iter_mut().enumerate() {
            *z = input[k] + recurrent[k] + bias[k];
        }
        for (value, &c) in tanh_cell.iter_mut().zip(cell) {
            *value = c.tanh_act();
        }
    }
}

simd_dispatch! {
    fn add_pair<R: Real>(sum: &mut [R], a: &[R], b: &[R]) {
        for ((s, &a), &b) in sum.iter_mut().zip(a).zip(b) {
            *s = a + b;
        }
    }
}

simd_dispatch! {
    fn add_assign<R: Real>(sum: &mut [R], values: &[R]) {
        for (s, &v) in sum.iter_mut().zip(values) {
            *s += v;
        }
    }
}

/// CD splits the logits, so it attributes targets linear in them; the delta only measures the
/// forward pass's rounding (γ is taken as full − β).
impl<R: Real> Attribution for StackedDecomposition<'_, R> {
    fn method(&self) -> &'static str {
        "cd"
    }

    fn variant(&self) -> Option<String> {
        Some(self.convention.name().to_string())
    }

    fn rows(&self, _len: usize, spans: usize) -> usize {
        spans
    }

    fn attribute(
        &self,
        sentences: &[SentenceSpans<'_>],
        target: Target,
    ) -> Result<Vec<Vec<SpanScore>>, AttributionError> {
        check_sentences(sentences, self.model.vocab_size())?;
        let bias = ArrayView1::from(self.model.b_out());
        // Each sentence is decomposed alone (its spans are the engine's batch), so sentences run
        // in parallel with results independent of the thread count.
        sentences
            .par_iter()
            .map(|sentence| {
                let trace = self.model.forward(sentence.token_ids)?;
                let linear = LinearTarget::new("cd", target, &trace.logits, bias)?;
                Ok(self
                    .decompose(&trace, sentence.spans)
                    .into_iter()
                    .map(|d| SpanScore {
                        embedding: d.beta,
                        ..linear.score(d.span, d.rel, d.irrel)
                    })
                    .collect())
            })
            .collect()
    }
}
