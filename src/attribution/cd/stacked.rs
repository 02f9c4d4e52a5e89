//! The batched CD engine for stacked and bidirectional LSTMs and for GRUs (spec
//! `cd_architectures.md` §6): all spans of a sentence advance together through each layer and
//! direction, one matrix product per step for their recurrent products and, above the first
//! layer, one for their input products.
//!
//! Exact shortcuts (exact in real arithmetic; only rounding differs from the one-span reference):
//! - γ = full − β for every state and product, so only β is propagated: the full input and
//!   recurrent products, gate values, cells and hidden states come from the forward pass;
//! - a span's β is exactly zero until its relevant input first is: in layer 0 before its start
//!   (forward) or after its end (backward); above, wherever the layer below's β is still zero.
//!   Such steps are skipped and the span joins when its input does (the "join" rule of §6);
//! - spans whose states are equal so far share one lane (one state row): in layer 0, those that
//!   joined at the same step and took the same role since (input inside the span or not, bias
//!   product relevant or not); above, those that also shared the layer below's lanes;
//! - the bias-only shares (σ(b), tanh(b), for the GRU's candidate tanh(b_in + r_0 b_hn)) are one
//!   vector per direction, and each gate's Shapley share takes one exponential ([`GapTable`]).

use ndarray::ArrayView1;
use rayon::prelude::*;

use super::engine::{completeness_residual, recurrent_product_columns};
use super::{Convention, Decomposition};
use crate::attribution::{
    Attribution, AttributionError, LinearTarget, SentenceSpans, Span, SpanScore, Target,
    check_sentences,
};
use crate::model::{CellKind, DirectionTrace, RnnClassifier, RnnTrace};
use crate::numeric::{Mat, Real, logistic_gap, matmul, simd_dispatch};

/// The lane of a span at a position where its β is still exactly zero: all such spans share it.
const NOT_JOINED: usize = usize::MAX;

/// Spans × positions held at once for the layer outputs (β of every span at every position,
/// `D·H` wide): bounds the engine's memory for long sentences.
const SPAN_POSITIONS_PER_CHUNK: usize = 1 << 15;

/// The weights of one direction restricted to the decomposed gates (LSTM i, f, g; GRU r, z, n),
/// transposed and padded to [`recurrent_product_columns`], and the bias shares.
#[derive(Debug)]
struct DirectionPlan<R> {
    /// `(In, C)`.
    input: Vec<R>,
    /// `(H, C)`.
    recurrent: Vec<R>,
    /// `b_ih + b_hh` of the three decomposed gates (for the GRU's candidate: unused).
    bias: Vec<R>,
    /// act(bias) of the three gates; the GRU's third block is n_0 = tanh(b_in + r_0 ⊙ b_hn).
    bias_shares: Vec<R>,
    /// GRU: b_hn and b_in + r_0 ⊙ b_hn.
    b_hn: Vec<R>,
    bias_n: Vec<R>,
    /// The [`GapTable`] exponent slope of each decomposed logistic or tanh unit (LSTM i, f, g;
    /// GRU r, z): −1 for logistic gates, −2 for tanh.
    slope: Vec<R>,
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
        let bias: Vec<R> = (0..3 * h).map(|k| w.b_ih[k] + w.b_hh[k]).collect();
        let gru = model.architecture().cell == CellKind::Gru;
        let mut bias_shares: Vec<R> = bias
            .iter()
            .enumerate()
            .map(|(k, &b)| {
                if (2 * h..3 * h).contains(&k) {
                    b.tanh_act()
                } else {
                    b.sigmoid()
                }
            })
            .collect();
        let (mut b_hn, mut bias_n) = (Vec::new(), Vec::new());
        if gru {
            b_hn = (0..h).map(|j| w.b_hh[2 * h + j]).collect();
            bias_n = (0..h)
                .map(|j| w.b_ih[2 * h + j] + bias_shares[j] * b_hn[j])
                .collect();
            for j in 0..h {
                bias_shares[2 * h + j] = bias_n[j].tanh_act();
            }
        }
        let width = if gru { 2 * h } else { 3 * h };
        let slope = (0..width)
            .map(|k| R::from_f64(if k >= 2 * h { -2.0 } else { -1.0 }))
            .collect();
        Self {
            input: pad(&w.w_ih_t),
            recurrent: pad(&w.w_hh_t),
            bias,
            bias_shares,
            b_hn,
            bias_n,
            slope,
        }
    }
}

/// CD under one convention for an [`RnnClassifier`], as an [`Attribution`] method.
#[derive(Debug)]
pub struct StackedDecomposition<'m, R: Real> {
    model: &'m RnnClassifier<R>,
    convention: Convention,
    keep_beta: bool,
    /// `plans[k][d]`.
    plans: Vec<Vec<DirectionPlan<R>>>,
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
        let model = self.model;
        let (len, h) = (trace.len(), model.hidden_size());
        let architecture = model.architecture();
        let directions = architecture.directions();
        let width = directions * h;
        let count = spans.len();
        // A GRU has no cell state: only LSTM lanes carry β^c.
        let lstm = architecture.cell == CellKind::Lstm;
        // Per span, the positions (inclusive) where the current layer's relevant input may be
        // non-zero.
        let mut ranges: Vec<(usize, usize)> = spans.iter().map(|s| (s.start, s.end - 1)).collect();
        let mut below: Vec<R> = Vec::new();
        // Per direction of the layer below, the lane of each span at each position (`s·T + t`),
        // [`NOT_JOINED`] where its β is still zero.
        let mut below_lanes: Vec<Vec<usize>> = Vec::new();
        let mut features = vec![R::zero(); count * width];
        let columns = recurrent_product_columns(h);
        let mut recurrent = vec![R::zero(); count * columns];
        let mut input_rel = vec![R::zero(); count * columns];
        let mut gathered: Vec<R> = Vec::new();
        for (k, plans) in self.plans.iter().enumerate() {
            let top = k + 1 == self.plans.len();
            let in_width = model.layer_input(k);
            let mut output = if top {
                Vec::new()
            } else {
                vec![R::zero(); count * len * width]
            };
            let mut layer_lanes: Vec<Vec<usize>> = Vec::with_capacity(plans.len());
            let mut next_lane_id = 0;
            for (d, plan) in plans.iter().enumerate() {
                let backward = d == 1;
                let direction = &trace.layers[k].directions[d];
                // The processing step at which each span's relevant input starts, and the spans
                // in that order.
                let joins: Vec<usize> = ranges
                    .iter()
                    .map(|&(lo, hi)| if backward { len - 1 - hi } else { lo })
                    .collect();
                let mut order: Vec<usize> = (0..count).collect();
                order.sort_by_key(|&s| joins[s]);
                let mut joined = 0;
                // One state per lane: spans whose states are equal so far, because they joined at
                // the same step and took the same role at every step since: in layer 0, input
                // inside the span or not and bias product relevant or not; above, the lanes of the
                // layer below at the position (equal inputs) and the bias product's relevance.
                let mut lanes: Vec<Vec<usize>> = Vec::new();
                let mut lane_of = vec![NOT_JOINED; count * len];
                let (mut beta_h, mut beta_c) = (Vec::new(), Vec::new());
                let (mut next_h, mut next_c) = (Vec::new(), Vec::new());
                for step in 0..len {
                    let t = if backward { len - 1 - step } else { step };
                    let role = |s: usize| -> (usize, usize, bool) {
                        let relevant = self.convention.bias_product_relevant(spans[s], t);
                        if k == 0 {
                            (usize::from(spans[s].contains(t)), 0, relevant)
                        } else {
                            let lane = |d: usize| below_lanes.get(d).map_or(0, |l| l[s * len + t]);
                            (lane(0), lane(1), relevant)
                        }
                    };
                    let mut next_lanes: Vec<Vec<usize>> = Vec::with_capacity(lanes.len() + 4);
                    next_h.clear();
                    next_c.clear();
                    let mut split = |members: Vec<usize>, state: Option<usize>| {
                        let mut groups: Vec<((usize, usize, bool), Vec<usize>)> = Vec::new();
                        for s in members {
                            let key = role(s);
                            match groups.iter_mut().find(|(k, _)| *k == key) {
                                Some((_, group)) => group.push(s),
                                None => groups.push((key, vec![s])),
                            }
                        }
                        for (_, group) in groups {
                            match state {
                                Some(row) => {
                                    next_h.extend_from_slice(&beta_h[row * h..(row + 1) * h]);
                                    if lstm {
                                        next_c.extend_from_slice(&beta_c[row * h..(row + 1) * h]);
                                    }
                                }
                                None => {
                                    next_h.resize(next_h.len() + h, R::zero());
                                    if lstm {
                                        next_c.resize(next_c.len() + h, R::zero());
                                    }
                                }
                            }
                            next_lanes.push(group);
                        }
                    };
                    for (row, members) in std::mem::take(&mut lanes).into_iter().enumerate() {
                        split(members, Some(row));
                    }
                    let first = joined;
                    while joined < count && joins[order[joined]] <= step {
                        joined += 1;
                    }
                    split(order[first..joined].to_vec(), None);
                    lanes = next_lanes;
                    for members in &lanes {
                        for &s in members {
                            lane_of[s * len + t] = next_lane_id;
                        }
                        next_lane_id += 1;
                    }
                    std::mem::swap(&mut beta_h, &mut next_h);
                    std::mem::swap(&mut beta_c, &mut next_c);
                    let running = lanes.len();
                    matmul(
                        Mat::new(&beta_h, running, h),
                        Mat::new(&plan.recurrent, h, columns),
                        &mut recurrent,
                        false,
                    );
                    if k == 0 {
                        let source = &direction.input_products.row(t);
                        for (rank, members) in lanes.iter().enumerate() {
                            let row = &mut input_rel[rank * columns..rank * columns + 3 * h];
                            if spans[members[0]].contains(t) {
                                for (v, &x) in row.iter_mut().zip(source.iter()) {
                                    *v = x;
                                }
                            } else {
                                row.fill(R::zero());
                            }
                        }
                    } else {
                        gathered.clear();
                        for members in &lanes {
                            let at = (members[0] * len + t) * in_width;
                            gathered.extend_from_slice(&below[at..at + in_width]);
                        }
                        matmul(
                            Mat::new(&gathered, running, in_width),
                            Mat::new(&plan.input, in_width, columns),
                            &mut input_rel,
                            false,
                        );
                    }
                    let relevant: Vec<R> = lanes
                        .iter()
                        .map(|members| {
                            if self.convention.bias_product_relevant(spans[members[0]], t) {
                                R::one()
                            } else {
                                R::zero()
                            }
                        })
                        .collect();
                    let rows = Rows {
                        recurrent: &recurrent[..running * columns],
                        input_rel: &input_rel[..running * columns],
                        columns,
                        relevant: &relevant,
                    };
                    let position = Position::new(direction, plan, t, h);
                    match architecture.cell {
                        CellKind::Lstm => {
                            lstm_rows(plan, &position, rows, &mut beta_h, &mut beta_c)
                        }
                        CellKind::Gru => gru_rows(plan, &position, rows, &mut beta_h),
                    }
                    if !top {
                        for (rank, members) in lanes.iter().enumerate() {
                            for &s in members {
                                let at = (s * len + t) * width + d * h;
                                output[at..at + h]
                                    .copy_from_slice(&beta_h[rank * h..(rank + 1) * h]);
                            }
                        }
                    }
                }
                if top {
                    for (rank, members) in lanes.iter().enumerate() {
                        for &s in members {
                            features[s * width + d * h..s * width + (d + 1) * h]
                                .copy_from_slice(&beta_h[rank * h..(rank + 1) * h]);
                        }
                    }
                }
                layer_lanes.push(lane_of);
            }
            below_lanes = layer_lanes;
            if architecture.bidirectional {
                ranges.fill((0, len - 1));
            } else {
                for range in &mut ranges {
                    range.1 = len - 1;
                }
            }
            below = output;
        }
        self.finish(trace, spans, &features)
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

/// What the forward pass gives of one position of one direction, for every span.
struct Position<'a, R> {
    /// Input plus recurrent products without bias, of the three decomposed gates.
    full: Vec<R>,
    /// The gate values at t.
    gates: &'a [R],
    /// LSTM: c_t and tanh(c_t); GRU: the full recurrent product of the candidate, V_n h.
    cell: Vec<R>,
    tanh_cell: Vec<R>,
    /// GRU: the full input product of the candidate, W_n x.
    input_n: Vec<R>,
    /// The decomposed gates' (LSTM i, f, g; GRU r, z) shared halves of their Shapley shares,
    /// ½[act(z + b) − act(b)], and [`logistic_gap`]'s anchors e^(slope·(z + 2b)).
    shares: GapTable<'a, R>,
}

/// What lets a row's Shapley share of a gate take one exponential instead of two: with
/// a = rel + b and d = z − rel + b (z without bias), act(a) − act(d) = logistic_gap(e^(slope·a),
/// e^(slope·(a + d))) scaled by the slope ([`DirectionPlan::slope`]; tanh(x) = 2σ(2x) − 1), and
/// a + d is the same for every span.
struct GapTable<'a, R> {
    half_gap: Vec<R>,
    anchor: Vec<R>,
    slope: &'a [R],
    /// Whether every |slope·(a + d)| is within [`Real::EXP_SUM_LIMIT`]; if not, the step takes
    /// two activations per gate.
    paired: bool,
}

impl<'a, R: Real> Position<'a, R> {
    fn new(
        direction: &'a DirectionTrace<R>,
        plan: &'a DirectionPlan<R>,
        t: usize,
        h: usize,
    ) -> Self {
        let contiguous = |row: ArrayView1<'a, R>| -> &'a [R] {
            row.to_slice().expect("rows of standard-layout matrices")
        };
        let input = contiguous(direction.input_products.row(t));
        let recurrent = contiguous(direction.recurrent_products.row(t));
        let full: Vec<R> = (0..3 * h).map(|k| input[k] + recurrent[k]).collect();
        let gates = contiguous(direction.gates.row(t));
        let lstm = direction.cells.nrows() > 0;
        let slope = &plan.slope;
        let width = slope.len();
        let half = R::from_f64(0.5);
        let limit = R::EXP_SUM_LIMIT;
        let mut paired = true;
        let anchor = (0..width)
            .map(|k| {
                let exponent = slope[k] * (full[k] + plan.bias[k] + plan.bias[k]);
                paired &= exponent.abs() <= limit;
                exponent.max(-limit).min(limit).exp_bounded()
            })
            .collect();
        let shares = GapTable {
            half_gap: (0..width)
                .map(|k| (gates[k] - plan.bias_shares[k]) * half)
                .collect(),
            anchor,
            slope,
            paired,
        };
        if lstm {
            let cell = direction.cells.row(t).to_vec();
            let tanh_cell = cell.iter().map(|c| c.tanh_act()).collect();
            Self {
                full,
                gates,
                cell,
                tanh_cell,
                input_n: Vec::new(),
                shares,
            }
        } else {
            Self {
                full,
                gates,
                cell: recurrent[2 * h..3 * h].to_vec(),
                tanh_cell: Vec::new(),
                input_n: input[2 * h..3 * h].to_vec(),
                shares,
            }
        }
    }
}

/// The per-span operands of one step: `C`-wide rows of V β and W β_in, and whether the bias
/// product is relevant (1) or not (0).
#[derive(Clone, Copy)]
struct Rows<'a, R> {
    recurrent: &'a [R],
    input_rel: &'a [R],
    columns: usize,
    relevant: &'a [R],
}

/// Per-row buffers of the row kernels, three gate blocks wide.
struct Scratch<R> {
    with_rel: Vec<R>,
    with_irrel: Vec<R>,
}

impl<R: Real> Scratch<R> {
    fn new(width: usize) -> Self {
        Self {
            with_rel: vec![R::zero(); width],
            with_irrel: vec![R::zero(); width],
        }
    }
}

simd_dispatch! {
    /// For one span's row, the β Shapley share ½[act(rel + b) − act(b) + act(z) − act(irrel + b)]
    /// of each decomposed gate unit in `with_rel` and the γ share in `with_irrel`, for as many
    /// units as the scratch holds. One exponential per unit through [`GapTable`] when the step's
    /// anchors allow it, else both activations (those from `tanh_from` on are tanh, the others
    /// logistic). Every loop runs over contiguous slices, so that it vectorises.
    fn gate_shares<R: Real>(
        rec: &[R],
        inp: &[R],
        position: &Position<'_, R>,
        bias: &[R],
        tanh_from: usize,
        scratch: &mut Scratch<R>,
    ) {
        let Scratch { with_rel, with_irrel } = scratch;
        let table = &position.shares;
        let full = &position.full;
        if table.paired {
            let limit = R::EXP_SQUARE_LIMIT;
            let minus_half = R::from_f64(-0.5);
            for k in 0..with_rel.len() {
                let exponent = table.slope[k] * (rec[k] + inp[k] + bias[k]);
                let u = exponent.max(-limit).min(limit).exp_bounded();
                let gap = logistic_gap(u, table.anchor[k]) * (minus_half * table.slope[k]);
                with_rel[k] = table.half_gap[k] + gap;
                with_irrel[k] = table.half_gap[k] - gap;
            }
            return;
        }
        for k in 0..with_rel.len() {
            let rel = rec[k] + inp[k];
            with_rel[k] = rel + bias[k];
            with_irrel[k] = (full[k] - rel) + bias[k];
        }
        let (rel_sigmoid, rel_tanh) = with_rel.split_at_mut(tanh_from);
        let (irrel_sigmoid, irrel_tanh) = with_irrel.split_at_mut(tanh_from);
        for (a, b) in rel_sigmoid.iter_mut().zip(irrel_sigmoid.iter_mut()) {
            (*a, *b) = R::sigmoid_pair(*a, *b);
        }
        for (a, b) in rel_tanh.iter_mut().zip(irrel_tanh.iter_mut()) {
            (*a, *b) = R::tanh_pair(*a, *b);
        }
        let half = R::from_f64(0.5);
        for k in 0..with_rel.len() {
            let gap = (with_rel[k] - with_irrel[k]) * half;
            with_rel[k] = table.half_gap[k] + gap;
            with_irrel[k] = table.half_gap[k] - gap;
        }
    }
}

simd_dispatch! {
    /// The LSTM step of spec §3 for every running span, γ taken as full − β.
    fn lstm_rows<R: Real>(
        plan: &DirectionPlan<R>,
        position: &Position<'_, R>,
        rows: Rows<'_, R>,
        beta_h: &mut [R],
        beta_c: &mut [R],
    ) {
        let h = position.cell.len();
        let half = R::from_f64(0.5);
        let mut scratch = Scratch::new(3 * h);
        let shares = &plan.bias_shares;
        let (bi, rest) = shares.split_at(h);
        let (bf, bg) = rest.split_at(h);
        let output_gate = &position.gates[3 * h..4 * h];
        for (rank, (state_h, state_c)) in beta_h
            .chunks_exact_mut(h)
            .zip(beta_c.chunks_exact_mut(h))
            .enumerate()
        {
            let columns = rank * rows.columns..rank * rows.columns + 3 * h;
            gate_shares(
                &rows.recurrent[columns.clone()],
                &rows.input_rel[columns],
                position,
                &plan.bias,
                2 * h,
                &mut scratch,
            );
            let relevant = rows.relevant[rank];
            let (ri, rest) = scratch.with_rel.split_at(h);
            let (rf, rg) = rest.split_at(h);
            for j in 0..h {
                let c = ri[j] * (rg[j] + bg[j])
                    + bi[j] * rg[j]
                    + relevant * bi[j] * bg[j]
                    + (rf[j] + bf[j]) * state_c[j];
                state_c[j] = c;
            }
            for j in 0..h {
                let c = state_c[j];
                let (tanh_beta, tanh_gamma) = R::tanh_pair(c, position.cell[j] - c);
                state_h[j] = output_gate[j] * (tanh_beta + position.tanh_cell[j] - tanh_gamma) * half;
            }
        }
    }
}

simd_dispatch! {
    /// The GRU step of spec §4 for every running span, γ taken as full − β.
    fn gru_rows<R: Real>(
        plan: &DirectionPlan<R>,
        position: &Position<'_, R>,
        rows: Rows<'_, R>,
        beta_h: &mut [R],
    ) {
        let h = position.cell.len();
        let half = R::from_f64(0.5);
        let mut scratch = Scratch::new(2 * h);
        let shares = &plan.bias_shares;
        let (r_0, rest) = shares.split_at(h);
        let (z_0, n_0) = rest.split_at(h);
        let candidate = &position.gates[2 * h..3 * h];
        let mut rel_n = vec![R::zero(); h];
        let mut irrel_n = vec![R::zero(); h];
        for (rank, state) in beta_h.chunks_exact_mut(h).enumerate() {
            let first = rank * rows.columns;
            let (rec, inp) = (
                &rows.recurrent[first..first + 3 * h],
                &rows.input_rel[first..first + 3 * h],
            );
            // The r and z blocks (both logistic).
            gate_shares(rec, inp, position, &plan.bias, 2 * h, &mut scratch);
            let (r_beta, rest) = scratch.with_rel.split_at(h);
            let z_beta = &rest[..h];
            let r_gamma = &scratch.with_irrel[..h];
            let (v_beta, w_rel) = (&rec[2 * h..], &inp[2 * h..]);
            for j in 0..h {
                let (v_all, b_hn) = (position.cell[j], plan.b_hn[j]);
                rel_n[j] = w_rel[j] + r_beta[j] * v_beta[j] + r_beta[j] * b_hn + r_0[j] * v_beta[j]
                    + plan.bias_n[j];
                irrel_n[j] = (position.input_n[j] - w_rel[j])
                    + r_gamma[j] * (v_all + b_hn)
                    + (r_beta[j] + r_0[j]) * (v_all - v_beta[j])
                    + plan.bias_n[j];
            }
            for (a, b) in rel_n.iter_mut().zip(irrel_n.iter_mut()) {
                (*a, *b) = R::tanh_pair(*a, *b);
            }
            let relevant = rows.relevant[rank];
            for j in 0..h {
                let n_beta = (rel_n[j] - n_0[j] + candidate[j] - irrel_n[j]) * half;
                let (u_beta, u_0) = (-z_beta[j], R::one() - z_0[j]);
                state[j] = u_beta * n_beta
                    + u_beta * n_0[j]
                    + u_0 * n_beta
                    + (z_beta[j] + z_0[j]) * state[j]
                    + relevant * u_0 * n_0[j];
            }
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
