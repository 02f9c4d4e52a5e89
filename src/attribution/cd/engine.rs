//! The batched CD engine: all spans of a sentence advance together.
//!
//! Exact shortcuts (each exact in real arithmetic; only rounding differs from the authors' code):
//! - γ = h − β, so only β_h needs recurrent products once the forward pass is known (γ^c is
//!   propagated too, at no extra activation cost: see [`update_state_body`]), and
//!   `b + irrel = z − rel` where z is the full pre-activation;
//! - the input products W x_t, the activations of the bias alone and of the full pre-activation, the
//!   output gate, c_t and tanh(c_t) come from the forward pass and are shared by every span;
//! - β is exactly zero before a span starts, γ is exactly zero while everything has been relevant,
//!   and spans share one state for as long as their step roles agree (see [`super::lanes`]);
//! - at each step the recurrent products of every live state are one matrix product
//!   `(lanes × H) · (H × 3H)`; the output gate is not decomposed, so only gates i, f, g need it.

use ndarray::{Array2, ArrayView1, Axis, linalg::general_mat_mul, s};

use super::Convention;
use super::lanes::{LanePlanner, StateUpdate};
use crate::attribution::{Span, SpanAttribution};
use crate::model::{ForwardTrace, LstmClassifier};
use crate::numeric::Real;

/// CD of `spans` (already checked to fit the sentence) given the sentence's forward pass.
pub fn decompose<R: Real>(
    model: &LstmClassifier<R>,
    trace: &ForwardTrace<R>,
    spans: &[Span],
    convention: Convention,
) -> Vec<SpanAttribution> {
    let h = model.hidden_size();
    let steps = trace.hidden.nrows();
    let recurrent_ifg_t = model.w_hh().slice_move(s![..3 * h, ..]).reversed_axes();
    let gate_bias = GateBias::new(model);
    let mut planner = LanePlanner::new(spans, convention);
    let mut beta_h = Array2::<R>::zeros((0, h));
    // Per state: β^c in the first H columns, γ^c in the last H.
    let mut cells = Array2::<R>::zeros((0, 2 * h));
    let mut recurrent = Array2::<R>::zeros((0, 3 * h));
    let zero_recurrent = vec![R::zero(); 3 * h];
    // A span that has not started has β = 0 and so γ^c = c.
    let mut unstarted_cells = vec![R::zero(); 2 * h];

    for t in 0..steps {
        if beta_h.nrows() > 0 {
            recurrent = Array2::zeros((beta_h.nrows(), 3 * h));
            general_mat_mul(
                R::one(),
                &beta_h,
                &recurrent_ifg_t,
                R::zero(),
                &mut recurrent,
            );
        }
        if t > 0 {
            unstarted_cells[h..].copy_from_slice(contiguous(trace.cells.row(t - 1)));
        }
        let step = StepInputs::new(trace, &gate_bias, t, h);
        let updates = planner.plan_step(t);
        let mut next_h = Array2::<R>::zeros((updates.len(), h));
        let mut next_cells = Array2::<R>::zeros((updates.len(), 2 * h));
        for (update, (mut out_h, mut out_cells)) in updates
            .iter()
            .zip(next_h.rows_mut().into_iter().zip(next_cells.rows_mut()))
        {
            match *update {
                StateUpdate::Whole => {
                    out_h.assign(&trace.hidden.row(t));
                    out_cells.slice_mut(s![..h]).assign(&trace.cells.row(t));
                }
                StateUpdate::Recur { source, role } => {
                    let previous = match source {
                        Some(row) => (contiguous(recurrent.row(row)), contiguous(cells.row(row))),
                        None => (zero_recurrent.as_slice(), unstarted_cells.as_slice()),
                    };
                    let mask = |flag: bool| if flag { R::one() } else { R::zero() };
                    update_state(
                        &step,
                        previous,
                        (mask(role.in_span), mask(role.bias_relevant)),
                        out_h.as_slice_mut().expect("standard layout"),
                        out_cells.as_slice_mut().expect("standard layout"),
                    );
                }
            }
        }
        beta_h = next_h;
        cells = next_cells;
    }

    let last_h = trace.hidden.row(steps - 1);
    let logits_without_bias: Vec<f64> = trace
        .logits
        .iter()
        .zip(model.b_out())
        .map(|(l, b)| l - b.as_f64())
        .collect();
    let mut results: Vec<Option<SpanAttribution>> = vec![None; spans.len()];
    for (state, members) in planner.final_lanes() {
        let row = state.expect("every span is non-empty, so its lane has left the zero state");
        let beta = beta_h.row(row);
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

/// One new state (β_h and `[β^c | γ^c]`) from the previous one.
///
/// Dispatches to a copy compiled for AVX2 when the CPU has it, so the activation polynomials run
/// eight lanes wide; both copies perform the same IEEE operations and give identical results.
fn update_state<R: Real>(
    step: &StepInputs<'_, R>,
    previous: Previous<'_, R>,
    role: RoleMasks<R>,
    out_h: &mut [R],
    out_cells: &mut [R],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        unsafe { update_state_avx512(step, previous, role, out_h, out_cells) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { update_state_avx2(step, previous, role, out_h, out_cells) };
        return;
    }
    update_state_body(step, previous, role, out_h, out_cells);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn update_state_avx512<R: Real>(
    step: &StepInputs<'_, R>,
    previous: Previous<'_, R>,
    role: RoleMasks<R>,
    out_h: &mut [R],
    out_cells: &mut [R],
) {
    update_state_body(step, previous, role, out_h, out_cells);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn update_state_avx2<R: Real>(
    step: &StepInputs<'_, R>,
    previous: Previous<'_, R>,
    role: RoleMasks<R>,
    out_h: &mut [R],
    out_cells: &mut [R],
) {
    update_state_body(step, previous, role, out_h, out_cells);
}

/// The CD recurrence for one state and all hidden units (authors' `CD`, steps 1-7 of the
/// fixtures README), with `b + irrel` taken as `z − rel`. The role masks are 0 or 1, so the loop
/// has no branches.
///
/// γ^c is propagated rather than taken as `c − β^c`: when a span covers nearly all of a long
/// sentence, γ^c is small while |c| is large, and the forward pass's f32 rounding of c (about
/// 3e-6 at |c| ≈ 10 on the trained SST model) would enter tanh(γ^c) at full slope. The irrelevant
/// gate shares cost no activations: the three shares add up to the gate value.
#[inline(always)]
fn update_state_body<R: Real>(
    step: &StepInputs<'_, R>,
    (recurrent, prev_cells): Previous<'_, R>,
    (in_span, bias_relevant): RoleMasks<R>,
    out_h: &mut [R],
    out_cells: &mut [R],
) {
    let h = out_h.len();
    let [rec_i, rec_f, rec_g] = gate_blocks(recurrent, h);
    let [wx_i, wx_f, wx_g] = gate_blocks(step.input, h);
    let [b_i, b_f, b_g] = gate_blocks(step.bias, h);
    let [z_i, z_f, z_g] = gate_blocks(step.preactivation, h);
    let [gz_i, gz_f, gz_g] = gate_blocks(step.gate, h);
    let [gb_i, gb_f, gb_g] = gate_blocks(step.bias_gate, h);
    let (o, tanh_c) = (&step.output_gate[..h], &step.tanh_cell[..h]);
    let (prev_beta_c, prev_gamma_c) = prev_cells[..2 * h].split_at(h);
    let (out_beta_c, out_gamma_c) = out_cells[..2 * h].split_at_mut(h);
    let half = R::from_f64(0.5);
    let bias_irrelevant = R::one() - bias_relevant;
    // Shapley shares (rel, irrel) in act(b + rel + irrel) with the bias first, from
    // a = act(b + rel) and d = act(z − rel) = act(b + irrel):
    // rel' = ½[a − act(b)] + ½[act(z) − d], irrel' = ½[d − act(b)] + ½[act(z) − a].
    let shares =
        |a: R, d: R, gb: R, gz: R| (half * ((a - gb) + (gz - d)), half * ((d - gb) + (gz - a)));
    for j in 0..h {
        let rel_i = rec_i[j] + in_span * wx_i[j];
        let rel_f = rec_f[j] + in_span * wx_f[j];
        let rel_g = rec_g[j] + in_span * wx_g[j];
        let (r_i, ir_i) = shares(
            R::sigmoid(b_i[j] + rel_i),
            R::sigmoid(z_i[j] - rel_i),
            gb_i[j],
            gz_i[j],
        );
        let (r_f, ir_f) = shares(
            R::sigmoid(b_f[j] + rel_f),
            R::sigmoid(z_f[j] - rel_f),
            gb_f[j],
            gz_f[j],
        );
        let (r_g, ir_g) = shares(
            R::tanh_act(b_g[j] + rel_g),
            R::tanh_act(z_g[j] - rel_g),
            gb_g[j],
            gz_g[j],
        );
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
        out_h[j] = o[j] * (half * (beta_c.tanh_act() + tanh_c[j] - gamma_c.tanh_act()));
    }
}
/// The i, f, g blocks of a vector laid out in PyTorch gate order.
#[inline(always)]
fn gate_blocks<T>(v: &[T], h: usize) -> [&[T]; 3] {
    [&v[..h], &v[h..2 * h], &v[2 * h..3 * h]]
}
