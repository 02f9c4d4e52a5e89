//! The batched CD engine: all spans of a sentence advance together.
//!
//! Exact shortcuts (each exact in real arithmetic; only rounding differs from the authors' code):
//! - γ = h − β, so only β_h needs recurrent products once the forward pass is known (γ^c is
//!   propagated too, at no extra activation cost: see [`update_state`]), and
//!   `b + irrel = z − rel` where z is the full pre-activation;
//! - the input products W x_t, the activations of the bias alone and of the full pre-activation, the
//!   output gate, c_t and tanh(c_t) come from the forward pass and are shared by every span;
//! - β is exactly zero before a span starts, γ is exactly zero while everything has been relevant,
//!   and spans share one state for as long as their step roles agree (see [`super::lanes`]);
//! - at each step the recurrent products of every live state are one matrix product
//!   `(lanes × H) · (H × 3H)`; the output gate is not decomposed, so only gates i, f, g need it.

use ndarray::{Array2, ArrayView1, Axis};

use super::Convention;
use super::lanes::{LanePlanner, StateUpdate};
use crate::attribution::{Span, SpanAttribution};
use crate::model::{ForwardTrace, LstmClassifier};
use crate::numeric::{Real, matmul_transposed, simd_dispatch};

/// CD of `spans` (already checked to fit the sentence) given the sentence's forward pass.
pub fn decompose<R: Real>(
    model: &LstmClassifier<R>,
    trace: &ForwardTrace<R>,
    spans: &[Span],
    convention: Convention,
) -> Vec<SpanAttribution> {
    decompose_batch(model, &[(trace, spans)], convention)
        .pop()
        .expect("one result per sentence")
}

/// CD of several sentences at once: at each step the recurrent products of every live state of
/// every sentence still running are one matrix product. Spans must already fit their sentences.
pub fn decompose_batch<R: Real>(
    model: &LstmClassifier<R>,
    sentences: &[(&ForwardTrace<R>, &[Span])],
    convention: Convention,
) -> Vec<Vec<SpanAttribution>> {
    let h = model.hidden_size();
    let recurrent_ifg = &model.w_hh().to_slice().expect("standard layout")[..3 * h * h];
    let gate_bias = GateBias::new(model);
    let mut planners: Vec<LanePlanner<'_>> = sentences
        .iter()
        .map(|&(_, spans)| LanePlanner::new(spans, convention))
        .collect();
    let mut results: Vec<Vec<SpanAttribution>> = vec![Vec::new(); sentences.len()];
    let longest = sentences
        .iter()
        .map(|(trace, _)| trace.hidden.nrows())
        .max()
        .unwrap_or(0);
    // States of the previous step, sentence after sentence: β_h (H per row), [β^c | γ^c] (2H per
    // row), and their recurrent products V_ifg β_h (3H per row). `offsets[s]` is the first row of
    // sentence s.
    // A state holds at least one span, so the span count bounds the rows: reserving it once
    // avoids reallocating (and page-faulting) as the states grow step by step.
    let max_rows: usize = sentences.iter().map(|(_, spans)| spans.len()).sum();
    let mut beta_h: Vec<R> = Vec::with_capacity(max_rows * h);
    let mut cells: Vec<R> = Vec::with_capacity(max_rows * 2 * h);
    let mut recurrent: Vec<R> = Vec::with_capacity(max_rows * 3 * h);
    let mut next_h: Vec<R> = Vec::with_capacity(max_rows * h);
    let mut next_cells: Vec<R> = Vec::with_capacity(max_rows * 2 * h);
    let mut offsets = vec![0usize; sentences.len()];
    let mut next_offsets = vec![0usize; sentences.len()];
    let zero_recurrent = vec![R::zero(); 3 * h];
    // A span that has not started has β = 0 and so γ^c = c.
    let mut unstarted_cells = vec![R::zero(); 2 * h];

    for t in 0..longest {
        let rows = beta_h.len() / h;
        recurrent.resize(rows * 3 * h, R::zero());
        matmul_transposed(&beta_h, recurrent_ifg, rows, h, 3 * h, &mut recurrent);
        // Plan every running sentence first, so the next states are sized once; the kernel
        // writes every element, so the buffers need no clearing.
        let mut next_rows = 0;
        for (s, &(trace, _)) in sentences.iter().enumerate() {
            next_offsets[s] = next_rows;
            if t < trace.hidden.nrows() {
                next_rows += planners[s].plan_step(t).len();
            }
        }
        next_h.resize(next_rows * h, R::zero());
        next_cells.resize(next_rows * 2 * h, R::zero());
        for (s, &(trace, _)) in sentences.iter().enumerate() {
            if t >= trace.hidden.nrows() {
                continue;
            }
            let updates = planners[s].updates();
            if t > 0 {
                unstarted_cells[h..].copy_from_slice(contiguous(trace.cells.row(t - 1)));
            }
            let step = StepInputs::new(trace, &gate_bias, t, h);
            let first = next_offsets[s];
            for (k, update) in updates.iter().enumerate() {
                let out_h = &mut next_h[(first + k) * h..(first + k + 1) * h];
                let out_cells = &mut next_cells[(first + k) * 2 * h..(first + k + 1) * 2 * h];
                match *update {
                    StateUpdate::Whole => {
                        out_h.copy_from_slice(contiguous(trace.hidden.row(t)));
                        out_cells[..h].copy_from_slice(contiguous(trace.cells.row(t)));
                        out_cells[h..].fill(R::zero());
                    }
                    StateUpdate::Recur { source, role } => {
                        let previous = match source {
                            Some(row) => {
                                let row = offsets[s] + row;
                                (
                                    &recurrent[row * 3 * h..(row + 1) * 3 * h],
                                    &cells[row * 2 * h..(row + 1) * 2 * h],
                                )
                            }
                            None => (zero_recurrent.as_slice(), unstarted_cells.as_slice()),
                        };
                        let mask = |flag: bool| if flag { R::one() } else { R::zero() };
                        update_state(
                            &step,
                            previous,
                            (mask(role.in_span), mask(role.bias_relevant)),
                            out_h,
                            out_cells,
                        );
                    }
                }
            }
            if t + 1 == trace.hidden.nrows() {
                let states = &next_h[first * h..];
                results[s] = finish(model, trace, sentences[s].1, &planners[s], states);
            }
        }
        std::mem::swap(&mut beta_h, &mut next_h);
        std::mem::swap(&mut cells, &mut next_cells);
        std::mem::swap(&mut offsets, &mut next_offsets);
        // Sentences that just finished keep no rows: drop their states from the next product.
        if sentences
            .iter()
            .any(|(trace, _)| trace.hidden.nrows() == t + 1)
        {
            drop_finished(sentences, t, h, &mut beta_h, &mut cells, &mut offsets);
        }
    }
    results
}

/// Keeps only the states of the sentences still running after step `t`, moving them down in place
/// and updating their row offsets.
fn drop_finished<R: Real>(
    sentences: &[(&ForwardTrace<R>, &[Span])],
    t: usize,
    h: usize,
    beta_h: &mut Vec<R>,
    cells: &mut Vec<R>,
    offsets: &mut [usize],
) {
    let total_rows = beta_h.len() / h;
    let mut kept = 0;
    for s in 0..sentences.len() {
        let (start, end) = (
            offsets[s],
            offsets.get(s + 1).copied().unwrap_or(total_rows),
        );
        offsets[s] = kept;
        if t + 1 < sentences[s].0.hidden.nrows() {
            beta_h.copy_within(start * h..end * h, kept * h);
            cells.copy_within(start * 2 * h..end * 2 * h, kept * 2 * h);
            kept += end - start;
        }
    }
    beta_h.truncate(kept * h);
    cells.truncate(kept * 2 * h);
}

/// Scores of every span of a finished sentence from its last states (`states` starts at the
/// sentence's first row).
fn finish<R: Real>(
    model: &LstmClassifier<R>,
    trace: &ForwardTrace<R>,
    spans: &[Span],
    planner: &LanePlanner<'_>,
    states: &[R],
) -> Vec<SpanAttribution> {
    let h = model.hidden_size();
    let last_h = trace.hidden.row(trace.hidden.nrows() - 1);
    let logits_without_bias: Vec<f64> = trace
        .logits
        .iter()
        .zip(model.b_out())
        .map(|(l, b)| l - b.as_f64())
        .collect();
    let mut results: Vec<Option<SpanAttribution>> = vec![None; spans.len()];
    for (state, members) in planner.final_lanes() {
        let row = state.expect("every span is non-empty, so its lane has left the zero state");
        let beta = ArrayView1::from(&states[row * h..(row + 1) * h]);
        let gamma = &last_h - &beta;
        let rel = model.output(beta, false);
        let irrel = model.output(gamma.view(), false);
        let residual = completeness_residual(&rel, &irrel, &logits_without_bias);
        for &i in members {
            results[i] = Some(SpanAttribution {
                span: spans[i],
                rel: rel.clone(),
                irrel: irrel.clone(),
                residual,
            });
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every span belongs to a lane"))
        .collect()
}

/// max over classes of |rel + irrel − (logits − bias)|.
pub(super) fn completeness_residual(
    rel: &[f64],
    irrel: &[f64],
    logits_without_bias: &[f64],
) -> f64 {
    rel.iter()
        .zip(irrel)
        .zip(logits_without_bias)
        .map(|((r, i), l)| (r + i - l).abs())
        .fold(0.0, f64::max)
}

fn contiguous<R>(row: ArrayView1<'_, R>) -> &[R] {
    row.to_slice()
        .expect("rows of standard-layout matrices are contiguous")
}

/// The gate biases b_i, b_f, b_g and their activations σ(b_i), σ(b_f), tanh(b_g) (the bias's
/// Shapley share), the same at every step.
struct GateBias<R> {
    raw: Vec<R>,
    activated: Vec<R>,
}

impl<R: Real> GateBias<R> {
    fn new(model: &LstmClassifier<R>) -> Self {
        let h = model.hidden_size();
        let raw: Vec<R> = model.bias().iter().take(3 * h).copied().collect();
        let activated = raw
            .iter()
            .enumerate()
            .map(|(k, &b)| if k < 2 * h { b.sigmoid() } else { b.tanh_act() })
            .collect();
        Self { raw, activated }
    }
}

/// Everything one step needs that does not depend on the span, as slices of the forward pass.
struct StepInputs<'a, R> {
    /// W x_t for gates i, f, g.
    input: &'a [R],
    /// Full pre-activations z_t for gates i, f, g.
    preactivation: &'a [R],
    /// σ(z_i), σ(z_f), tanh(z_g).
    gate: &'a [R],
    /// b_i, b_f, b_g.
    bias: &'a [R],
    /// σ(b_i), σ(b_f), tanh(b_g).
    bias_gate: &'a [R],
    /// The (undecomposed) output gate o_t.
    output_gate: &'a [R],
    tanh_cell: &'a [R],
}

impl<'a, R: Real> StepInputs<'a, R> {
    fn new(trace: &'a ForwardTrace<R>, bias: &'a GateBias<R>, t: usize, h: usize) -> Self {
        let row = |m: &'a Array2<R>| contiguous(m.index_axis(Axis(0), t));
        let gates = row(&trace.gates);
        Self {
            input: &row(&trace.input_products)[..3 * h],
            preactivation: &row(&trace.preactivations)[..3 * h],
            gate: &gates[..3 * h],
            bias: &bias.raw,
            bias_gate: &bias.activated,
            output_gate: &gates[3 * h..],
            tanh_cell: row(&trace.tanh_cells),
        }
    }
}

/// The previous state's recurrent products `V_ifg β_h` and its cells `[β^c | γ^c]`.
type Previous<'a, R> = (&'a [R], &'a [R]);

/// The step role as 0/1 multipliers: (x_t in span, bias×bias product relevant).
type RoleMasks<R> = (R, R);

simd_dispatch! {
    /// One new state (β_h and `[β^c | γ^c]`) from the previous one.
    ///
    /// The CD recurrence for one state and all hidden units (authors' `CD`, steps 1-7 of the
    /// fixtures README), with `b + irrel` taken as `z − rel`. The role masks are 0 or 1, so the loop
    /// has no branches.
    ///
    /// γ^c is propagated rather than taken as `c − β^c`: when a span covers nearly all of a long
    /// sentence, γ^c is small while |c| is large, and the forward pass's f32 rounding of c (about
    /// 3e-6 at |c| ≈ 10 on the trained SST model) would enter tanh(γ^c) at full slope. The irrelevant
    /// gate shares cost no activations: the three shares add up to the gate value.
    fn update_state<R: Real>(
        step: &StepInputs<'_, R>,
        previous: Previous<'_, R>,
        role: RoleMasks<R>,
        out_h: &mut [R],
        out_cells: &mut [R],
    ) {
        // Fixed-width blocks vectorise without a scalar remainder loop (168 = 10·16 + 8 would leave 8
        // units to scalar code, as costly as 128 in vector lanes). The last block overlaps the one
        // before; its units are recomputed from the same inputs and written with the same values.
        const BLOCK: usize = 16;
        let h = out_h.len();
        if h < BLOCK {
            update_units(step, previous, role, out_h, out_cells, 0, h);
            return;
        }
        let mut lo = 0;
        while lo + BLOCK <= h {
            update_units(step, previous, role, out_h, out_cells, lo, BLOCK);
            lo += BLOCK;
        }
        if lo < h {
            update_units(step, previous, role, out_h, out_cells, h - BLOCK, BLOCK);
        }
    }
}

/// Hidden units `lo .. lo + width` of [`update_state`].
#[inline(always)]
fn update_units<'a, R: Real>(
    step: &StepInputs<'a, R>,
    (recurrent, prev_cells): Previous<'a, R>,
    (in_span, bias_relevant): RoleMasks<R>,
    out_h: &mut [R],
    out_cells: &mut [R],
    lo: usize,
    width: usize,
) {
    let h = out_h.len();
    let unit = |v: &'a [R], block: usize| -> &'a [R] { &v[block * h + lo..][..width] };
    let (rec_i, rec_f, rec_g) = (unit(recurrent, 0), unit(recurrent, 1), unit(recurrent, 2));
    let (wx_i, wx_f, wx_g) = (
        unit(step.input, 0),
        unit(step.input, 1),
        unit(step.input, 2),
    );
    let (b_i, b_f, b_g) = (unit(step.bias, 0), unit(step.bias, 1), unit(step.bias, 2));
    let (z_i, z_f, z_g) = (
        unit(step.preactivation, 0),
        unit(step.preactivation, 1),
        unit(step.preactivation, 2),
    );
    let (gz_i, gz_f, gz_g) = (unit(step.gate, 0), unit(step.gate, 1), unit(step.gate, 2));
    let (gb_i, gb_f, gb_g) = (
        unit(step.bias_gate, 0),
        unit(step.bias_gate, 1),
        unit(step.bias_gate, 2),
    );
    let (o, tanh_c) = (unit(step.output_gate, 0), unit(step.tanh_cell, 0));
    let (prev_beta_c, prev_gamma_c) = (unit(prev_cells, 0), unit(prev_cells, 1));
    let (out_beta_c, out_gamma_c) = out_cells.split_at_mut(h);
    let out_beta_c = &mut out_beta_c[lo..][..width];
    let out_gamma_c = &mut out_gamma_c[lo..][..width];
    let out_h = &mut out_h[lo..][..width];
    let half = R::from_f64(0.5);
    let bias_irrelevant = R::one() - bias_relevant;
    // Shapley shares (rel, irrel) in act(b + rel + irrel) with the bias first, from
    // a = act(b + rel) and d = act(z − rel) = act(b + irrel):
    // rel' = ½[a − act(b)] + ½[act(z) − d], irrel' = ½[d − act(b)] + ½[act(z) − a].
    let shares =
        |a: R, d: R, gb: R, gz: R| (half * ((a - gb) + (gz - d)), half * ((d - gb) + (gz - a)));
    for j in 0..width {
        let rel_i = rec_i[j] + in_span * wx_i[j];
        let rel_f = rec_f[j] + in_span * wx_f[j];
        let rel_g = rec_g[j] + in_span * wx_g[j];
        let (a_i, d_i) = R::sigmoid_pair(b_i[j] + rel_i, z_i[j] - rel_i);
        let (a_f, d_f) = R::sigmoid_pair(b_f[j] + rel_f, z_f[j] - rel_f);
        let (a_g, d_g) = R::tanh_pair(b_g[j] + rel_g, z_g[j] - rel_g);
        let (r_i, ir_i) = shares(a_i, d_i, gb_i[j], gz_i[j]);
        let (r_f, ir_f) = shares(a_f, d_f, gb_f[j], gz_f[j]);
        let (r_g, ir_g) = shares(a_g, d_g, gb_g[j], gz_g[j]);
        let bias_product = gb_i[j] * gb_g[j];
        let beta_c = r_i * (r_g + gb_g[j])
            + gb_i[j] * r_g
            + bias_relevant * bias_product
            + (r_f + gb_f[j]) * prev_beta_c[j];
        let gamma_c = ir_i * gz_g[j]
            + (r_i + gb_i[j]) * ir_g
            + bias_irrelevant * bias_product
            + gz_f[j] * prev_gamma_c[j]
            + ir_f * prev_beta_c[j];
        out_beta_c[j] = beta_c;
        out_gamma_c[j] = gamma_c;
        let (tanh_beta_c, tanh_gamma_c) = R::tanh_pair(beta_c, gamma_c);
        out_h[j] = o[j] * (half * (tanh_beta_c + tanh_c[j] - tanh_gamma_c));
    }
}
