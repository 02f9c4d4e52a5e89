//! The element-wise CD recurrence: one new state from the previous one and its recurrent products.
//!
//! Everything a step needs that does not depend on the span (W x_t, the pre-activations, the gate
//! values of the forward pass, the biases and their activations) is laid out once per step in a
//! [`StepTable`], block by block of [`LANES`] hidden units, so that the per-state loop reads each
//! block's values with one bounds check and runs [`LANES`] units per vector instruction.

use ndarray::{ArrayView1, Axis};

use crate::model::{ForwardTrace, LstmClassifier};
use crate::numeric::{Real, simd_dispatch};

/// Hidden units per block: one AVX-512 vector of f32.
const LANES: usize = 16;

type Lanes<R> = [R; LANES];

/// The step's shared values for [`LANES`] consecutive hidden units; gates in the order i, f, g.
#[derive(Clone, Copy, Default)]
struct UnitBlock<R> {
    /// W x_t.
    input: [Lanes<R>; 3],
    /// b.
    bias: [Lanes<R>; 3],
    /// z_t = W x_t + V h_(t-1) + b.
    preactivation: [Lanes<R>; 3],
    /// σ(b_i), σ(b_f), tanh(b_g): the bias's Shapley share, the same at every step.
    bias_gate: [Lanes<R>; 3],
    /// ½[act(z) − act(b)], the half of each Shapley share that the other players' order shares.
    half_gap: [Lanes<R>; 3],
    /// σ(z_f).
    forget_gate: Lanes<R>,
    /// tanh(z_g).
    candidate: Lanes<R>,
    /// σ(b_i)·tanh(b_g).
    bias_product: Lanes<R>,
    /// ½ o_t (the output gate is not decomposed).
    half_output_gate: Lanes<R>,
    /// tanh(c_t).
    tanh_cell: Lanes<R>,
}

/// A step's shared values for every hidden unit, in blocks of [`LANES`] units.
///
/// Block k covers units `k·LANES ..` except the last, which ends at the last unit and so overlaps
/// the one before when the hidden size is not a multiple of [`LANES`]: the overlapping units are
/// computed twice from the same inputs and written with the same values, which costs less than a
/// scalar remainder loop. A hidden size below [`LANES`] has one block padded with zeros.
pub(super) struct StepTable<R> {
    hidden: usize,
    blocks: Vec<UnitBlock<R>>,
}

impl<R: Real> StepTable<R> {
    /// A table holding the model's bias values; [`Self::fill`] adds a step's forward values.
    pub fn new(model: &LstmClassifier<R>) -> Self {
        let hidden = model.hidden_size();
        let mut table = Self {
            hidden,
            blocks: vec![UnitBlock::default(); hidden.div_ceil(LANES)],
        };
        let bias = model.bias();
        for k in 0..table.blocks.len() {
            let start = table.block_start(k);
            let block = &mut table.blocks[k];
            for (j, unit) in (start..hidden.min(start + LANES)).enumerate() {
                for gate in 0..3 {
                    let b = bias[gate * hidden + unit];
                    block.bias[gate][j] = b;
                    block.bias_gate[gate][j] = if gate < 2 { b.sigmoid() } else { b.tanh_act() };
                }
                block.bias_product[j] = block.bias_gate[0][j] * block.bias_gate[2][j];
            }
        }
        table
    }

    fn block_start(&self, k: usize) -> usize {
        (k * LANES).min(self.hidden.saturating_sub(LANES))
    }

    /// Loads step `t` of the sentence's forward pass.
    pub fn fill(&mut self, trace: &ForwardTrace<R>, t: usize) {
        let [input, preactivation, gates, tanh_cell]: [ArrayView1<'_, R>; 4] = [
            &trace.input_products,
            &trace.preactivations,
            &trace.gates,
            &trace.tanh_cells,
        ]
        .map(|m| m.index_axis(Axis(0), t));
        let h = self.hidden;
        let half = R::from_f64(0.5);
        for k in 0..self.blocks.len() {
            let start = self.block_start(k);
            let block = &mut self.blocks[k];
            for (j, unit) in (start..h.min(start + LANES)).enumerate() {
                for gate in 0..3 {
                    let at = gate * h + unit;
                    block.input[gate][j] = input[at];
                    block.preactivation[gate][j] = preactivation[at];
                    block.half_gap[gate][j] = half * (gates[at] - block.bias_gate[gate][j]);
                }
                block.forget_gate[j] = gates[h + unit];
                block.candidate[j] = gates[2 * h + unit];
                block.half_output_gate[j] = half * gates[3 * h + unit];
                block.tanh_cell[j] = tanh_cell[unit];
            }
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

/// The step role as 0/1 multipliers: (x_t in span, bias×bias product relevant).
pub(super) type RoleMasks<R> = (R, R);

/// One block of the previous state.
struct RowBlock<R> {
    recurrent: [Lanes<R>; 3],
    beta_c: Lanes<R>,
    gamma_c: Lanes<R>,
}

/// One block of the new state's cells.
#[derive(Default)]
struct NewCells<R> {
    beta_c: Lanes<R>,
    gamma_c: Lanes<R>,
}

fn lanes<R: Copy>(values: &[R], start: usize) -> Lanes<R> {
    values[start..start + LANES]
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
            let mut new = NewCells::default();
            update_units(block, &rows, role, &mut new);
            out_beta_c[start..start + LANES].copy_from_slice(&new.beta_c);
            out_gamma_c[start..start + LANES].copy_from_slice(&new.gamma_c);
        }
        for (k, block) in table.blocks.iter().enumerate() {
            let start = table.block_start(k);
            let new_h = hidden_units(block, &lanes(out_beta_c, start), &lanes(out_gamma_c, start));
            out_h[start..start + LANES].copy_from_slice(&new_h);
        }
    }
}

/// The CD recurrence of the cells for one block of units (authors' `CD`, steps 1-6 of the fixtures
/// README; [`hidden_units`] is step 7), with `b + irrel` taken as `z − rel`. The role masks are 0
/// or 1, so the loop has no branches.
///
/// γ^c is propagated rather than taken as `c − β^c`: when a span covers nearly all of a long
/// sentence, γ^c is small while |c| is large, and the forward pass's f32 rounding of c (about 3e-6
/// at |c| ≈ 10 on the trained SST model) would enter tanh(γ^c) at full slope. The irrelevant gate
/// shares cost no activations: the three shares add up to the gate value.
#[inline(always)]
fn update_units<R: Real>(
    c: &UnitBlock<R>,
    prev: &RowBlock<R>,
    (in_span, bias_relevant): RoleMasks<R>,
    new: &mut NewCells<R>,
) {
    let half = R::from_f64(0.5);
    let bias_irrelevant = R::one() - bias_relevant;
    // Shapley shares (rel, irrel) in act(b + rel + irrel) with the bias first, from
    // a = act(b + rel) and d = act(z − rel) = act(b + irrel):
    // rel' = ½[a − act(b)] + ½[act(z) − d] = ½(a − d) + ½[act(z) − act(b)], irrel' likewise.
    let shares = |a: R, d: R, half_gap: R| {
        let gap = a - d;
        (gap.mul_add(half, half_gap), gap.mul_add(-half, half_gap))
    };
    for j in 0..LANES {
        let rel_i = in_span.mul_add(c.input[0][j], prev.recurrent[0][j]);
        let rel_f = in_span.mul_add(c.input[1][j], prev.recurrent[1][j]);
        let rel_g = in_span.mul_add(c.input[2][j], prev.recurrent[2][j]);
        let (a_i, d_i) = R::sigmoid_pair(c.bias[0][j] + rel_i, c.preactivation[0][j] - rel_i);
        let (a_f, d_f) = R::sigmoid_pair(c.bias[1][j] + rel_f, c.preactivation[1][j] - rel_f);
        let (a_g, d_g) = R::tanh_pair(c.bias[2][j] + rel_g, c.preactivation[2][j] - rel_g);
        let (r_i, ir_i) = shares(a_i, d_i, c.half_gap[0][j]);
        let (r_f, ir_f) = shares(a_f, d_f, c.half_gap[1][j]);
        let (r_g, ir_g) = shares(a_g, d_g, c.half_gap[2][j]);
        let (gb_i, gb_f, gb_g) = (c.bias_gate[0][j], c.bias_gate[1][j], c.bias_gate[2][j]);
        let prev_beta_c = prev.beta_c[j];
        let beta_c = r_i.mul_add(
            r_g + gb_g,
            gb_i.mul_add(
                r_g,
                bias_relevant.mul_add(c.bias_product[j], (r_f + gb_f) * prev_beta_c),
            ),
        );
        let gamma_c = ir_i.mul_add(
            c.candidate[j],
            (r_i + gb_i).mul_add(
                ir_g,
                bias_irrelevant.mul_add(
                    c.bias_product[j],
                    c.forget_gate[j].mul_add(prev.gamma_c[j], ir_f * prev_beta_c),
                ),
            ),
        );
        new.beta_c[j] = beta_c;
        new.gamma_c[j] = gamma_c;
    }
}

/// β_h = o ⊙ ½[tanh(β^c) + tanh(c) − tanh(γ^c)] for one block of units (the two-player Shapley
/// split of tanh(c)).
#[inline(always)]
fn hidden_units<R: Real>(c: &UnitBlock<R>, beta_c: &Lanes<R>, gamma_c: &Lanes<R>) -> Lanes<R> {
    let mut h = [R::zero(); LANES];
    for j in 0..LANES {
        let (tanh_beta_c, tanh_gamma_c) = R::tanh_pair(beta_c[j], gamma_c[j]);
        h[j] = c.half_output_gate[j] * ((tanh_beta_c + c.tanh_cell[j]) - tanh_gamma_c);
    }
    h
}
