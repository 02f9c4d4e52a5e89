//! The element-wise CD recurrence: one new state from the previous one and its recurrent products.
//!
//! Everything a step needs that does not depend on the span (W x_t, the pre-activations, the gate
//! values of the forward pass, the biases and their activations) is laid out once per step in a
//! [`StepTable`], block by block of [`LANES`] hidden units, so that the per-state loop reads each
//! block's values with one bounds check and runs each instruction on [`LANES`] units.

use ndarray::Axis;

use crate::model::ForwardTrace;
use crate::numeric::{Real, logistic_gap, simd_dispatch};

/// Hidden units per block: two AVX-512 vectors of f32, so that every instruction of the
/// recurrence's long dependency chains (an exponential, a division and the cell update per gate)
/// is issued twice on independent data. Measured on a kernel-only loop at H = 168: 25-30 % less
/// time per state than one-vector blocks, although 32-unit blocks cover 192 units to 16-unit
/// blocks' 176; 3-4 % more spans per second in the whole engine.
const LANES: usize = 32;

type Lanes<R> = [R; LANES];

/// The step's shared values for [`LANES`] consecutive hidden units; gates in the order i, f, g.
#[derive(Clone, Copy, Default)]
struct UnitBlock<R> {
    /// W x_t.
    input: [Lanes<R>; 3],
    /// σ(b_i), σ(b_f), tanh(b_g): the bias's Shapley share, the same at every step.
    bias_gate: [Lanes<R>; 3],
    /// ½[act(z) − act(b)], the half of each Shapley share that the other players' order shares.
    half_gap: [Lanes<R>; 3],
    /// The exponent of [`logistic_gap`]'s u is this plus the recurrent product times
    /// [`EXP_SLOPE`]: −b_i, −b_f, −2 b_g while x_t is outside the span (index 0), and the same
    /// with W x_t added to b while it is inside (index 1).
    exp_offset: [[Lanes<R>; 3]; 2],
    /// [`logistic_gap`]'s anchor: e^-(b + z) for i and f, e^-2(b + z) for g (tanh(x) = 2σ(2x) − 1).
    anchor: [Lanes<R>; 3],
    /// σ(z_f).
    forget_gate: Lanes<R>,
    /// tanh(z_g).
    candidate: Lanes<R>,
    /// σ(b_i)·tanh(b_g).
    bias_product: Lanes<R>,
    /// o_t (the output gate is not decomposed).
    output_gate: Lanes<R>,
    /// ½ o_t tanh(c_t).
    half_output_tanh_cell: Lanes<R>,
}

/// The gate arguments of [`UnitBlock`]'s units, which the per-state loop reads only in blocks
/// that take [`separate_shares`]: kept apart so that the values every state reads stay compact.
#[derive(Clone, Copy, Default)]
struct ArgumentBlock<R> {
    /// b.
    bias: [Lanes<R>; 3],
    /// z_t = W x_t + V h_(t-1) + b.
    preactivation: [Lanes<R>; 3],
}

/// d(exponent of u)/d(rel) per gate: σ(x) needs e^-x, tanh(x) = 2σ(2x) − 1 needs e^-2x.
const EXP_SLOPE: [f64; 3] = [-1.0, -1.0, -2.0];

/// A step's shared values for every hidden unit, in blocks of [`LANES`] units.
///
/// Block k covers units `k·LANES ..` except the last, which ends at the last unit and so overlaps
/// the one before when the hidden size is not a multiple of [`LANES`]: the overlapping units are
/// computed twice from the same inputs and written with the same values, which costs less than a
/// scalar remainder loop. A hidden size below [`LANES`] has one block padded with zeros.
pub(super) struct StepTable<R> {
    hidden: usize,
    blocks: Vec<UnitBlock<R>>,
    arguments: Vec<ArgumentBlock<R>>,
    /// Per block: every |b + z| is within [`Real::EXP_SUM_LIMIT`] (halved for g) at this step, so
    /// its gates take one exponential each through [`logistic_gap`] (see [`paired_shares`]).
    paired: Vec<bool>,
}

impl<R: Real> StepTable<R> {
    /// A table holding the bias values `b_ih + b_hh` of gates i, f, g (the first 3H of `bias`);
    /// [`Self::fill`] adds a step's forward values.
    pub fn new(bias: &[R], hidden: usize) -> Self {
        let mut table = Self {
            hidden,
            blocks: vec![UnitBlock::default(); hidden.div_ceil(LANES)],
            arguments: vec![ArgumentBlock::default(); hidden.div_ceil(LANES)],
            paired: vec![false; hidden.div_ceil(LANES)],
        };
        for k in 0..table.blocks.len() {
            let start = table.block_start(k);
            let block = &mut table.blocks[k];
            for (j, unit) in (start..hidden.min(start + LANES)).enumerate() {
                for gate in 0..3 {
                    let b = bias[gate * hidden + unit];
                    table.arguments[k].bias[gate][j] = b;
                    block.bias_gate[gate][j] = if gate < 2 { b.sigmoid() } else { b.tanh_act() };
                    block.exp_offset[0][gate][j] = R::from_f64(EXP_SLOPE[gate]) * b;
                }
                block.bias_product[j] = block.bias_gate[0][j] * block.bias_gate[2][j];
            }
        }
        table
    }

    fn block_start(&self, k: usize) -> usize {
        (k * LANES).min(self.hidden.saturating_sub(LANES))
    }

    /// Loads one step of the forward pass.
    pub fn fill(&mut self, step: StepValues<'_, R>) {
        let StepValues {
            input,
            preactivation,
            gates,
            tanh_cell,
        } = step;
        let h = self.hidden;
        let half = R::from_f64(0.5);
        for k in 0..self.blocks.len() {
            let start = self.block_start(k);
            let block = &mut self.blocks[k];
            for (j, unit) in (start..h.min(start + LANES)).enumerate() {
                for (gate, &slope) in EXP_SLOPE.iter().enumerate() {
                    let at = gate * h + unit;
                    block.input[gate][j] = input[at];
                    self.arguments[k].preactivation[gate][j] = preactivation[at];
                    block.exp_offset[1][gate][j] =
                        R::from_f64(slope) * (self.arguments[k].bias[gate][j] + input[at]);
                    block.half_gap[gate][j] = half * (gates[at] - block.bias_gate[gate][j]);
                }
                block.forget_gate[j] = gates[h + unit];
                block.candidate[j] = gates[2 * h + unit];
                block.output_gate[j] = gates[3 * h + unit];
                block.half_output_tanh_cell[j] = half * gates[3 * h + unit] * tanh_cell[unit];
            }
        }
        for ((block, arguments), paired) in self
            .blocks
            .iter_mut()
            .zip(&self.arguments)
            .zip(&mut self.paired)
        {
            *paired = fill_anchors(block, arguments);
        }
    }

    /// One new state (β_h and `[β^c | γ^c]`) from the previous one: `recurrent` holds its
    /// recurrent products `V_ifg β_h` (3H), `cells` its `[β^c | γ^c]` (2H).
    pub fn update(
        &self,
        (recurrent, cells): (&[R], &[R]),
        role: RoleMasks<R>,
        out_h: &mut [R],
        out_cells: &mut [R],
    ) {
        let h = self.hidden;
        assert!(
            recurrent.len() == 3 * h
                && cells.len() == 2 * h
                && out_h.len() == h
                && out_cells.len() == 2 * h,
            "state sizes"
        );
        if h >= LANES {
            update_blocks(self, h, recurrent, cells, role, out_h, out_cells);
            return;
        }
        // One block: the rows go through zero-padded copies, LANES units per gate.
        let pad = |values: &[R]| {
            let mut padded = [R::zero(); 3 * LANES];
            for (gate, chunk) in values.chunks_exact(h).enumerate() {
                padded[gate * LANES..gate * LANES + h].copy_from_slice(chunk);
            }
            padded
        };
        let mut padded_h = [R::zero(); LANES];
        let mut padded_cells = [R::zero(); 2 * LANES];
        update_blocks(
            self,
            LANES,
            &pad(recurrent),
            &pad(cells)[..2 * LANES],
            role,
            &mut padded_h,
            &mut padded_cells,
        );
        out_h.copy_from_slice(&padded_h[..h]);
        out_cells[..h].copy_from_slice(&padded_cells[..h]);
        out_cells[h..].copy_from_slice(&padded_cells[LANES..LANES + h]);
    }
}

/// What [`StepTable::fill`] reads of one step of an LSTM's forward pass (gates i, f, g, o).
#[derive(Clone, Copy)]
pub(super) struct StepValues<'a, R> {
    /// W x_t without bias (at least 3H).
    pub input: &'a [R],
    /// z_t = W x_t + V h_(t-1) + b (at least 3H).
    pub preactivation: &'a [R],
    /// σ(i), σ(f), tanh(g), σ(o) (4H).
    pub gates: &'a [R],
    /// tanh(c_t) (H).
    pub tanh_cell: &'a [R],
}

impl<'a, R: Real> StepValues<'a, R> {
    /// Step `t` of a one-layer LSTM's forward pass.
    pub fn of(trace: &'a ForwardTrace<R>, t: usize) -> Self {
        let row = |m: &'a ndarray::Array2<R>| -> &'a [R] {
            m.index_axis(Axis(0), t)
                .to_slice()
                .expect("rows of standard-layout matrices")
        };
        Self {
            input: row(&trace.input_products),
            preactivation: row(&trace.preactivations),
            gates: row(&trace.gates),
            tanh_cell: row(&trace.tanh_cells),
        }
    }
}

/// The step role as 0/1 multipliers: (x_t in span, bias×bias product relevant).
pub(super) type RoleMasks<R> = (R, R);

simd_dispatch! {
    /// Sets the block's [`logistic_gap`] anchors from its biases and pre-activations; returns
    /// whether they are all within [`Real::EXP_SUM_LIMIT`].
    fn fill_anchors<R: Real>(block: &mut UnitBlock<R>, arguments: &ArgumentBlock<R>) -> bool {
        let limit = R::EXP_SUM_LIMIT;
        let mut within = true;
        for (gate, &slope) in EXP_SLOPE.iter().enumerate() {
            let slope = R::from_f64(slope);
            for j in 0..LANES {
                let exponent =
                    slope * (arguments.bias[gate][j] + arguments.preactivation[gate][j]);
                within &= exponent.abs() <= limit;
                block.anchor[gate][j] = exponent.max(-limit).min(limit).exp_bounded();
            }
        }
        within
    }
}

/// One block of the previous state.
struct RowBlock<'a, R> {
    recurrent: [&'a Lanes<R>; 3],
    beta_c: &'a Lanes<R>,
    gamma_c: &'a Lanes<R>,
}

/// One block of the new state's cells.
struct NewCells<'a, R> {
    beta_c: &'a mut Lanes<R>,
    gamma_c: &'a mut Lanes<R>,
}

fn lanes<R>(values: &[R], start: usize) -> &Lanes<R> {
    values[start..start + LANES]
        .try_into()
        .expect("a block lies inside its row")
}

fn lanes_mut<R>(values: &mut [R], start: usize) -> &mut Lanes<R> {
    (&mut values[start..start + LANES])
        .try_into()
        .expect("a block lies inside its row")
}

simd_dispatch! {
    /// [`StepTable::update`] for rows laid out `width` (≥ [`LANES`]) units per gate, block by block: first the
    /// cells of every block, then the hidden state of every block. Two shorter loops rather than
    /// one long dependency chain per block let out-of-order execution overlap consecutive blocks
    /// (measured: 5-10 % more spans per second at length 20). Each pass only writes values it
    /// computed from the previous state, so the overlapping last block may be computed twice.
    fn update_blocks<R: Real>(
        table: &StepTable<R>,
        width: usize,
        recurrent: &[R],
        cells: &[R],
        role: RoleMasks<R>,
        out_h: &mut [R],
        out_cells: &mut [R],
    ) {
        let h = width;
        let (out_beta_c, out_gamma_c) = out_cells.split_at_mut(h);
        for (k, block) in table.blocks.iter().enumerate() {
            let start = table.block_start(k);
            let rows = RowBlock {
                recurrent: [
                    lanes(recurrent, start),
                    lanes(recurrent, h + start),
                    lanes(recurrent, 2 * h + start),
                ],
                beta_c: lanes(cells, start),
                gamma_c: lanes(cells, h + start),
            };
            let mut new = NewCells {
                beta_c: lanes_mut(out_beta_c, start),
                gamma_c: lanes_mut(out_gamma_c, start),
            };
            let separate = (!table.paired[k]).then_some(&table.arguments[k]);
            update_units(block, separate, &rows, role, &mut new);
        }
        for (k, block) in table.blocks.iter().enumerate() {
            let start = table.block_start(k);
            hidden_units(
                block,
                lanes(out_beta_c, start),
                lanes(out_gamma_c, start),
                lanes_mut(out_h, start),
            );
        }
    }
}

/// The CD recurrence of the cells for one block of units (authors' `CD`, steps 1-6 of the fixtures
/// README; [`hidden_units`] is step 7), with `b + irrel` taken as `z − rel`. The role masks are 0
/// or 1, so the loop has no branches; the choice of [`paired_shares`] or [`separate_shares`] is
/// one branch per block.
///
/// γ^c is propagated rather than taken as `c − β^c`: when a span covers nearly all of a long
/// sentence, γ^c is small while |c| is large, and the forward pass's f32 rounding of c (about 3e-6
/// at |c| ≈ 10 on the trained SST model) would enter tanh(γ^c) at full slope. The irrelevant gate
/// shares cost no activations: the three shares add up to the gate value.
#[inline(always)]
fn update_units<R: Real>(
    c: &UnitBlock<R>,
    separate: Option<&ArgumentBlock<R>>,
    prev: &RowBlock<'_, R>,
    role: RoleMasks<R>,
    new: &mut NewCells<'_, R>,
) {
    if let Some(arguments) = separate {
        for j in 0..LANES {
            let shares = separate_shares(c, arguments, prev, role.0, j);
            update_cell(c, prev, role.1, j, shares, new);
        }
    } else {
        let exp_offset = &c.exp_offset[usize::from(role.0 != R::zero())];
        for j in 0..LANES {
            let shares = paired_shares(c, exp_offset, prev, j);
            update_cell(c, prev, role.1, j, shares, new);
        }
    }
}

/// The Shapley shares (rel, irrel) of gates i, f, g in act(b + rel + irrel), the bias first, from
/// a = act(b + rel) and d = act(z − rel) = act(b + irrel):
/// rel' = ½[a − act(b)] + ½[act(z) − d] = ½(a − d) + ½[act(z) − act(b)], irrel' likewise.
type GateShares<R> = [(R, R); 3];

/// [`GateShares`] with a − d from one exponential per gate: (b + rel) + (z − rel) = b + z is
/// the same for every state of the step, so [`logistic_gap`] needs only e^-(b + rel) and the
/// step's anchor. For g, ½(a − d) = σ(2(b + rel)) − σ(2(z − rel)) is the gap itself. rel is the
/// recurrent product plus W x_t inside the span, so the exponent is one multiply-add from the
/// offsets of the state's role.
#[inline(always)]
fn paired_shares<R: Real>(
    c: &UnitBlock<R>,
    exp_offset: &[Lanes<R>; 3],
    prev: &RowBlock<'_, R>,
    j: usize,
) -> GateShares<R> {
    let limit = R::EXP_SQUARE_LIMIT;
    let share = |gate: usize| {
        let exponent =
            prev.recurrent[gate][j].mul_add(R::from_f64(EXP_SLOPE[gate]), exp_offset[gate][j]);
        let u = exponent.max(-limit).min(limit).exp_bounded();
        let gap = logistic_gap(u, c.anchor[gate][j]);
        let half_slope = R::from_f64(-0.5 * EXP_SLOPE[gate]);
        let half_gap = c.half_gap[gate][j];
        (
            gap.mul_add(half_slope, half_gap),
            gap.mul_add(-half_slope, half_gap),
        )
    };
    // An array literal rather than `array::from_fn`, which the compiler may leave as a call
    // outside this function's SIMD target features.
    [share(0), share(1), share(2)]
}

/// [`GateShares`] from two activations per gate, for blocks where some |b + z| is too large for
/// [`paired_shares`].
#[inline(always)]
fn separate_shares<R: Real>(
    c: &UnitBlock<R>,
    arguments: &ArgumentBlock<R>,
    prev: &RowBlock<'_, R>,
    in_span: R,
    j: usize,
) -> GateShares<R> {
    let half = R::from_f64(0.5);
    let gate_arguments = |gate: usize| {
        let rel = in_span.mul_add(c.input[gate][j], prev.recurrent[gate][j]);
        (
            arguments.bias[gate][j] + rel,
            arguments.preactivation[gate][j] - rel,
        )
    };
    let ((a_i, d_i), (a_f, d_f), (a_g, d_g)) =
        (gate_arguments(0), gate_arguments(1), gate_arguments(2));
    let activations = [
        R::sigmoid_pair(a_i, d_i),
        R::sigmoid_pair(a_f, d_f),
        R::tanh_pair(a_g, d_g),
    ];
    let share = |gate: usize| {
        let (a, d) = activations[gate];
        let gap = a - d;
        let half_gap = c.half_gap[gate][j];
        (gap.mul_add(half, half_gap), gap.mul_add(-half, half_gap))
    };
    [share(0), share(1), share(2)]
}

/// β^c and γ^c of unit `j` from the gate shares and the previous cells.
#[inline(always)]
fn update_cell<R: Real>(
    c: &UnitBlock<R>,
    prev: &RowBlock<'_, R>,
    bias_relevant: R,
    j: usize,
    [(r_i, ir_i), (r_f, ir_f), (r_g, ir_g)]: GateShares<R>,
    new: &mut NewCells<'_, R>,
) {
    let bias_irrelevant = R::one() - bias_relevant;
    let (gb_i, gb_f, gb_g) = (c.bias_gate[0][j], c.bias_gate[1][j], c.bias_gate[2][j]);
    let prev_beta_c = prev.beta_c[j];
    new.beta_c[j] = r_i.mul_add(
        r_g + gb_g,
        gb_i.mul_add(
            r_g,
            bias_relevant.mul_add(c.bias_product[j], (r_f + gb_f) * prev_beta_c),
        ),
    );
    new.gamma_c[j] = ir_i.mul_add(
        c.candidate[j],
        (r_i + gb_i).mul_add(
            ir_g,
            bias_irrelevant.mul_add(
                c.bias_product[j],
                c.forget_gate[j].mul_add(prev.gamma_c[j], ir_f * prev_beta_c),
            ),
        ),
    );
}

/// β_h = o ⊙ ½[tanh(β^c) + tanh(c) − tanh(γ^c)] for one block of units (the two-player Shapley
/// split of tanh(c)), with tanh(β^c) − tanh(γ^c) = 2(v − u) / ((1 + u)(1 + v)) for u = e^-2β^c,
/// v = e^-2γ^c: no sign handling, and no cancellation when both are saturated.
#[inline(always)]
fn hidden_units<R: Real>(
    c: &UnitBlock<R>,
    beta_c: &Lanes<R>,
    gamma_c: &Lanes<R>,
    h: &mut Lanes<R>,
) {
    let limit = R::EXP_SQUARE_LIMIT;
    let minus_two = R::from_f64(-2.0);
    for j in 0..LANES {
        let u = (minus_two * beta_c[j]).max(-limit).min(limit).exp_bounded();
        let v = (minus_two * gamma_c[j])
            .max(-limit)
            .min(limit)
            .exp_bounded();
        let half_tanh_gap = (v - u) / ((R::one() + u) * (R::one() + v));
        h[j] = c.output_gate[j].mul_add(half_tanh_gap, c.half_output_tanh_cell[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LstmClassifier;
    use crate::numeric::SplitMix64;

    struct Previous {
        recurrent: Vec<f32>,
        cells: Vec<f32>,
        role: RoleMasks<f32>,
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// One step of the CD recurrence in f64 with the standard library's activations, straight
    /// from the formulas of the fixtures README: (β_h, β^c, γ^c) of unit `u`.
    fn reference_unit(
        trace: &ForwardTrace<f32>,
        bias: &[f32],
        t: usize,
        state: &Previous,
        u: usize,
    ) -> (f64, f64, f64) {
        let h = trace.hidden.ncols();
        let at = |m: &ndarray::Array2<f32>, i: usize| f64::from(m[(t, i)]);
        let (in_span, bias_relevant) = (f64::from(state.role.0), f64::from(state.role.1));
        let shares = |gate: usize| {
            let act = |x: f64| if gate < 2 { sigmoid(x) } else { x.tanh() };
            let i = gate * h + u;
            let b = f64::from(bias[i]);
            let z = at(&trace.preactivations, i);
            let rel = in_span * at(&trace.input_products, i) + f64::from(state.recurrent[i]);
            let (a, d) = (act(b + rel), act(z - rel));
            (
                0.5 * (a - act(b)) + 0.5 * (act(z) - d),
                0.5 * (d - act(b)) + 0.5 * (act(z) - a),
                act(b),
            )
        };
        let ((r_i, ir_i, gb_i), (r_f, ir_f, gb_f), (r_g, ir_g, gb_g)) =
            (shares(0), shares(1), shares(2));
        let (beta_c, gamma_c) = (f64::from(state.cells[u]), f64::from(state.cells[h + u]));
        let new_beta_c =
            r_i * (r_g + gb_g) + gb_i * r_g + bias_relevant * gb_i * gb_g + (r_f + gb_f) * beta_c;
        let new_gamma_c = ir_i * (r_g + ir_g + gb_g)
            + (r_i + gb_i) * ir_g
            + (1.0 - bias_relevant) * gb_i * gb_g
            + (r_f + ir_f + gb_f) * gamma_c
            + ir_f * beta_c;
        let o = at(&trace.gates, 3 * h + u);
        let tanh_c = at(&trace.cells, u).tanh();
        let new_beta_h = 0.5 * o * (new_beta_c.tanh() + tanh_c - new_gamma_c.tanh());
        (new_beta_h, new_beta_c, new_gamma_c)
    }

    /// The f32 kernel against the f64 formulas for one step, on a model with large weights where
    /// some blocks take one exponential per gate and others, with |b + z| beyond the limit, two
    /// activations; hidden 40 also has an overlapping last block, and hidden 9 a padded one.
    #[test]
    fn one_step_matches_f64_formulas_on_both_activation_paths() {
        let mut blocks_by_path = [[0; 2]; 2];
        for (hidden, scale) in [(40, 12.0_f32), (9, 12.0), (9, 3.0)] {
            let m = LstmClassifier::<f32>::seeded_random(7, 6, hidden, 2, 11);
            let model = LstmClassifier::from_parts(
                m.embedding().to_owned(),
                &m.w_ih() * scale,
                &m.w_hh() * scale,
                &m.bias() * scale,
                m.w_out().to_owned(),
                m.b_out().to_owned(),
            )
            .unwrap();
            let bias = model.bias().to_vec();
            let ids: Vec<usize> = (0..12).map(|k| (k * 5 + 2) % 7).collect();
            let trace = model.forward(&ids).unwrap();
            let mut table = StepTable::new(model.bias().as_slice().unwrap(), hidden);
            let mut rng = SplitMix64(hidden as u64);
            let mut random = |n: usize, size: f64| -> Vec<f32> {
                (0..n)
                    .map(|_| (size * (2.0 * rng.unit() - 1.0)) as f32)
                    .collect()
            };
            let counts = &mut blocks_by_path[usize::from(hidden < LANES)];
            let mut worst = 0.0_f64;
            for t in 0..ids.len() {
                table.fill(StepValues::of(&trace, t));
                for &paired in &table.paired {
                    counts[usize::from(paired)] += 1;
                }
                let states: Vec<Previous> = (0..4)
                    .map(|k| Previous {
                        recurrent: random(3 * hidden, 8.0),
                        cells: random(2 * hidden, 4.0),
                        role: ((k % 2) as f32, (k / 2) as f32),
                    })
                    .collect();
                let mut out_h = vec![f32::NAN; 4 * hidden];
                let mut out_cells = vec![f32::NAN; 8 * hidden];
                for (row, state) in states.iter().enumerate() {
                    table.update(
                        (&state.recurrent, &state.cells),
                        state.role,
                        &mut out_h[row * hidden..(row + 1) * hidden],
                        &mut out_cells[2 * row * hidden..2 * (row + 1) * hidden],
                    );
                }
                for (row, state) in states.iter().enumerate() {
                    for u in 0..hidden {
                        let (beta_h, beta_c, gamma_c) = reference_unit(&trace, &bias, t, state, u);
                        for (got, want) in [
                            (out_h[row * hidden + u], beta_h),
                            (out_cells[2 * row * hidden + u], beta_c),
                            (out_cells[(2 * row + 1) * hidden + u], gamma_c),
                        ] {
                            worst = worst.max((f64::from(got) - want).abs());
                        }
                    }
                }
            }
            assert!(
                worst < 1e-5,
                "hidden {hidden}, scale {scale}: worst difference {worst}"
            );
        }
        assert!(
            blocks_by_path.iter().flatten().all(|&n| n > 0),
            "blocks [separate, paired] for hidden 40 and 9: {blocks_by_path:?}"
        );
    }
}
