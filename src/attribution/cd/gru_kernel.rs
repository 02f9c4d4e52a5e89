//! The element-wise GRU step of CD (spec `cd_architectures.md` §4): one lane's new β_h from its
//! previous β_h and the relevant parts of its input and recurrent products, γ taken as full − β.
//!
//! Everything that does not depend on the lane (the forward pass's products and gates, the bias
//! shares, the anchors of [`logistic_gap`]) is laid out once per step in a [`GruStep`].

use crate::model::DirectionTrace;
use crate::numeric::{Real, logistic_gap, simd_dispatch};

/// The bias values of one GRU direction and their activations.
#[derive(Debug)]
pub(super) struct GruPlan<R> {
    /// `b_ih + b_hh` of gates r and z (2H).
    bias: Vec<R>,
    /// σ(b_r), σ(b_z), then the candidate's bias share n_0 = tanh(b_in + r_0 ⊙ b_hn) (3H).
    bias_shares: Vec<R>,
    /// b_hn (H).
    b_hn: Vec<R>,
    /// b_in + r_0 ⊙ b_hn (H).
    bias_n: Vec<R>,
}

impl<R: Real> GruPlan<R> {
    pub fn new(b_ih: &[R], b_hh: &[R], h: usize) -> Self {
        let bias: Vec<R> = (0..2 * h).map(|k| b_ih[k] + b_hh[k]).collect();
        let b_hn = b_hh[2 * h..3 * h].to_vec();
        let mut bias_shares: Vec<R> = bias.iter().map(|b| b.sigmoid()).collect();
        let bias_n: Vec<R> = (0..h)
            .map(|j| b_ih[2 * h + j] + bias_shares[j] * b_hn[j])
            .collect();
        bias_shares.extend(bias_n.iter().map(|b| b.tanh_act()));
        Self {
            bias,
            bias_shares,
            b_hn,
            bias_n,
        }
    }
}

/// What the forward pass gives of one position of one direction, shared by every lane.
pub(super) struct GruStep<R> {
    /// Input plus recurrent products of r and z without bias (2H).
    full: Vec<R>,
    /// σ(r), σ(z), tanh(n) at t (3H).
    gates: Vec<R>,
    /// The full products of the candidate: W_n x (H) and V_n h (H).
    input_n: Vec<R>,
    recurrent_n: Vec<R>,
    /// ½[σ(z) − σ(b)] of r and z: the half of each Shapley share that is the same for every lane.
    half_gap: Vec<R>,
    /// [`logistic_gap`]'s anchors e^-(z + 2b) of r and z (z without bias).
    anchor: Vec<R>,
    /// Whether every |z + 2b| is within [`Real::EXP_SUM_LIMIT`]; if not, the step takes two
    /// activations per gate.
    paired: bool,
}

impl<R: Real> GruStep<R> {
    pub fn new(h: usize) -> Self {
        Self {
            full: vec![R::zero(); 2 * h],
            gates: vec![R::zero(); 3 * h],
            input_n: vec![R::zero(); h],
            recurrent_n: vec![R::zero(); h],
            half_gap: vec![R::zero(); 2 * h],
            anchor: vec![R::zero(); 2 * h],
            paired: true,
        }
    }

    /// Loads position `t` of a direction's forward pass.
    pub fn fill(&mut self, plan: &GruPlan<R>, direction: &DirectionTrace<R>, t: usize) {
        let (input, recurrent) = (
            row(&direction.input_products, t),
            row(&direction.recurrent_products, t),
        );
        let h = self.input_n.len();
        self.gates.copy_from_slice(row(&direction.gates, t));
        self.input_n.copy_from_slice(&input[2 * h..3 * h]);
        self.recurrent_n.copy_from_slice(&recurrent[2 * h..3 * h]);
        self.paired = fill_shared(plan, input, recurrent, self);
    }
}

/// Row `t` of a standard-layout matrix.
pub(super) fn row<R>(m: &ndarray::Array2<R>, t: usize) -> &[R] {
    m.row(t)
        .to_slice()
        .expect("rows of standard-layout matrices are contiguous")
}

simd_dispatch! {
    /// The gate values' shared halves and anchors of [`GruStep`]; returns whether every anchor's
    /// exponent is within [`Real::EXP_SUM_LIMIT`].
    fn fill_shared<R: Real>(
        plan: &GruPlan<R>,
        input: &[R],
        recurrent: &[R],
        step: &mut GruStep<R>,
    ) -> bool {
        let (half, limit) = (R::from_f64(0.5), R::EXP_SUM_LIMIT);
        let mut paired = true;
        for k in 0..step.full.len() {
            step.full[k] = input[k] + recurrent[k];
            let exponent = -(step.full[k] + plan.bias[k] + plan.bias[k]);
            paired &= exponent.abs() <= limit;
            step.anchor[k] = exponent.max(-limit).min(limit).exp_bounded();
            step.half_gap[k] = (step.gates[k] - plan.bias_shares[k]) * half;
        }
        paired
    }
}

/// Per-lane buffers of [`gru_update`].
pub(super) struct GruScratch<R> {
    /// β and γ Shapley shares of r and z (2H each).
    rel: Vec<R>,
    irrel: Vec<R>,
    /// The candidate's arguments with β and with γ (H each).
    rel_n: Vec<R>,
    irrel_n: Vec<R>,
}

impl<R: Real> GruScratch<R> {
    pub fn new(h: usize) -> Self {
        Self {
            rel: vec![R::zero(); 2 * h],
            irrel: vec![R::zero(); 2 * h],
            rel_n: vec![R::zero(); h],
            irrel_n: vec![R::zero(); h],
        }
    }
}

/// One lane's relevant operands: V β_h and the relevant input product (each at least 3H, gates
/// r, z, n), whether the bias product is relevant (1) or not (0), and the lane's previous β_h.
#[derive(Clone, Copy)]
pub(super) struct GruLane<'a, R> {
    pub recurrent: &'a [R],
    pub input: &'a [R],
    pub bias_relevant: R,
    pub previous: &'a [R],
}

simd_dispatch! {
    /// The GRU step of spec §4 for one lane. The r and z shares take one exponential each through
    /// [`logistic_gap`] when the step's anchors allow it, else both activations. Every loop runs
    /// over contiguous slices, so that it vectorises.
    pub(super) fn gru_update<R: Real>(
        plan: &GruPlan<R>,
        step: &GruStep<R>,
        lane: GruLane<'_, R>,
        scratch: &mut GruScratch<R>,
        out: &mut [R],
    ) {
        let h = out.len();
        let half = R::from_f64(0.5);
        let GruLane { recurrent: rec, input: inp, bias_relevant, previous } = lane;
        let GruScratch { rel, irrel, rel_n, irrel_n } = scratch;
        if step.paired {
            let limit = R::EXP_SQUARE_LIMIT;
            for k in 0..2 * h {
                let exponent = -(rec[k] + inp[k] + plan.bias[k]);
                let u = exponent.max(-limit).min(limit).exp_bounded();
                let gap = logistic_gap(u, step.anchor[k]) * half;
                rel[k] = step.half_gap[k] + gap;
                irrel[k] = step.half_gap[k] - gap;
            }
        } else {
            for k in 0..2 * h {
                let relevant = rec[k] + inp[k];
                (rel[k], irrel[k]) = R::sigmoid_pair(
                    relevant + plan.bias[k],
                    (step.full[k] - relevant) + plan.bias[k],
                );
            }
            for k in 0..2 * h {
                let gap = (rel[k] - irrel[k]) * half;
                rel[k] = step.half_gap[k] + gap;
                irrel[k] = step.half_gap[k] - gap;
            }
        }
        let (r_0, rest) = plan.bias_shares.split_at(h);
        let (z_0, n_0) = rest.split_at(h);
        let (r_beta, z_beta) = rel.split_at(h);
        let r_gamma = &irrel[..h];
        let (v_beta, w_rel) = (&rec[2 * h..3 * h], &inp[2 * h..3 * h]);
        for j in 0..h {
            let (v_all, b_hn) = (step.recurrent_n[j], plan.b_hn[j]);
            rel_n[j] = w_rel[j] + r_beta[j] * v_beta[j] + r_beta[j] * b_hn + r_0[j] * v_beta[j]
                + plan.bias_n[j];
            irrel_n[j] = (step.input_n[j] - w_rel[j])
                + r_gamma[j] * (v_all + b_hn)
                + (r_beta[j] + r_0[j]) * (v_all - v_beta[j])
                + plan.bias_n[j];
        }
        for (a, b) in rel_n.iter_mut().zip(irrel_n.iter_mut()) {
            (*a, *b) = R::tanh_pair(*a, *b);
        }
        let candidate = &step.gates[2 * h..3 * h];
        for j in 0..h {
            let n_beta = (rel_n[j] - n_0[j] + candidate[j] - irrel_n[j]) * half;
            let (u_beta, u_0) = (-z_beta[j], R::one() - z_0[j]);
            out[j] = u_beta * n_beta
                + u_beta * n_0[j]
                + u_0 * n_beta
                + (z_beta[j] + z_0[j]) * previous[j]
                + bias_relevant * u_0 * n_0[j];
        }
    }
}
