//! The batched CD engine: all spans of a sentence advance together.
//!
//! Exact shortcuts (each exact in real arithmetic; only rounding differs from the authors' code):
//! - γ = h − β, so only β_h needs recurrent products once the forward pass is known (γ^c is
//!   propagated too, at no extra activation cost: see [`super::kernel`]), and
//!   `b + irrel = z − rel` where z is the full pre-activation;
//! - the input products W x_t, the activations of the bias alone and of the full pre-activation, the
//!   output gate, c_t and tanh(c_t) come from the forward pass and are shared by every span;
//! - β is exactly zero before a span starts, γ is exactly zero while everything has been relevant,
//!   and spans share one state for as long as their step roles agree (see [`super::lanes`]);
//! - at each step the recurrent products of every live state are one matrix product
//!   `(lanes × H) · (H × 3H)`; the output gate is not decomposed, so only gates i, f, g need it.

use ndarray::ArrayView1;

use super::Convention;
use super::Decomposition;
use super::kernel::{StepTable, StepValues};
use super::lanes::{LanePlanner, StateUpdate};
use crate::attribution::Span;
use crate::model::{ForwardTrace, LstmClassifier};
use crate::numeric::{Mat, Real, matmul};

/// Columns of the engine's recurrent product for hidden size `hidden`: 3H, rounded up to a multiple
/// of 16 with zero weights. The GEMM backend copies the weight operand on every call unless its
/// column count is a multiple of its vector width (16 f32); the copy cost 5 % of the engine's time
/// at H = 168, the 8 extra columns 1.6 % more multiply-adds.
pub fn recurrent_product_columns(hidden: usize) -> usize {
    (3 * hidden).next_multiple_of(16)
}

/// The recurrent weights of gates i, f, g as the engine multiplies them: V_ifgᵀ, `(H, C)` with
/// C = [`recurrent_product_columns`], the columns past 3H zero.
#[derive(Debug, Clone)]
pub(super) struct RecurrentWeights<R> {
    values: Vec<R>,
    columns: usize,
}

impl<R: Real> RecurrentWeights<R> {
    pub fn new(model: &LstmClassifier<R>) -> Self {
        let h = model.hidden_size();
        let columns = recurrent_product_columns(h);
        let mut values = vec![R::zero(); h * columns];
        for (row, source) in values.chunks_exact_mut(columns).zip(model.w_hh_t().rows()) {
            row[..3 * h].copy_from_slice(&source.as_slice().expect("standard layout")[..3 * h]);
        }
        Self { values, columns }
    }
}

/// The state buffers of [`decompose_batch`], kept from one call to the next so that they are not
/// allocated, zeroed and page-faulted again for every batch. They only grow; a call uses the first
/// rows it needs, and every value it reads it has written first.
#[derive(Debug, Default)]
pub(super) struct Workspace<R> {
    /// β_h of the current step's states (H per row).
    beta_h: Vec<R>,
    /// `[β^c | γ^c]` of the current step's states (2H per row).
    cells: Vec<R>,
    /// Their recurrent products V_ifg β_h (C per row, see [`recurrent_product_columns`]).
    recurrent: Vec<R>,
    /// The next step's β_h and cells.
    next_h: Vec<R>,
    next_cells: Vec<R>,
}

/// Makes `buffer` hold at least `len` values.
fn grow<R: Real>(buffer: &mut Vec<R>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, R::zero());
    }
}

/// CD of several sentences at once: at each step the recurrent products of every live state of
/// every sentence still running are one matrix product. Spans must already fit their sentences.
pub(super) fn decompose_batch<R: Real>(
    model: &LstmClassifier<R>,
    weights: &RecurrentWeights<R>,
    workspace: &mut Workspace<R>,
    sentences: &[(&ForwardTrace<R>, &[Span])],
    convention: Convention,
    keep_beta: bool,
) -> Vec<Vec<Decomposition>> {
    let h = model.hidden_size();
    let width = weights.columns;
    let mut step = StepTable::new(model.bias().as_slice().expect("standard layout"), h);
    let mut planners: Vec<LanePlanner<'_>> = sentences
        .iter()
        .map(|&(_, spans)| LanePlanner::new(spans, convention))
        .collect();
    let mut results: Vec<Vec<Decomposition>> = vec![Vec::new(); sentences.len()];
    let longest = sentences
        .iter()
        .map(|(trace, _)| trace.hidden.nrows())
        .max()
        .unwrap_or(0);
    // The previous step's states, sentence after sentence: `rows` of them, `offsets[s]` the first
    // row of sentence s.
    let Workspace {
        beta_h,
        cells,
        recurrent,
        next_h,
        next_cells,
    } = workspace;
    let mut rows = 0;
    let mut offsets = vec![0usize; sentences.len()];
    let mut next_offsets = vec![0usize; sentences.len()];
    let zero_recurrent = vec![R::zero(); 3 * h];
    // A span that has not started has β = 0 and so γ^c = c.
    let mut unstarted_cells = vec![R::zero(); 2 * h];

    for t in 0..longest {
        grow(recurrent, rows * width);
        matmul(
            Mat::new(beta_h, rows, h),
            Mat::new(&weights.values, h, width),
            recurrent,
            false,
        );
        // Plan every running sentence first, so the next states are sized once.
        let mut next_rows = 0;
        for (s, &(trace, _)) in sentences.iter().enumerate() {
            next_offsets[s] = next_rows;
            if t < trace.hidden.nrows() {
                next_rows += planners[s].plan_step(t).len();
            }
        }
        grow(next_h, next_rows * h);
        grow(next_cells, next_rows * 2 * h);
        for (s, &(trace, _)) in sentences.iter().enumerate() {
            if t >= trace.hidden.nrows() {
                continue;
            }
            let updates = planners[s].updates();
            if t > 0 {
                unstarted_cells[h..].copy_from_slice(contiguous(trace.cells.row(t - 1)));
            }
            step.fill(StepValues::of(trace, t));
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
                                    &recurrent[row * width..row * width + 3 * h],
                                    &cells[row * 2 * h..(row + 1) * 2 * h],
                                )
                            }
                            None => (zero_recurrent.as_slice(), unstarted_cells.as_slice()),
                        };
                        let mask = |flag: bool| if flag { R::one() } else { R::zero() };
                        step.update(
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
                results[s] = finish(
                    model,
                    trace,
                    sentences[s].1,
                    &planners[s],
                    states,
                    keep_beta,
                );
            }
        }
        std::mem::swap(beta_h, next_h);
        std::mem::swap(cells, next_cells);
        std::mem::swap(&mut offsets, &mut next_offsets);
        rows = next_rows;
        // Sentences that just finished keep no rows: drop their states from the next product.
        if sentences
            .iter()
            .any(|(trace, _)| trace.hidden.nrows() == t + 1)
        {
            rows = drop_finished(sentences, t, h, rows, (beta_h, cells), &mut offsets);
        }
    }
    results
}

/// Keeps only the states of the sentences still running after step `t`, moving them down in place
/// and updating their row offsets; returns the number of rows kept.
fn drop_finished<R: Real>(
    sentences: &[(&ForwardTrace<R>, &[Span])],
    t: usize,
    h: usize,
    total_rows: usize,
    (beta_h, cells): (&mut [R], &mut [R]),
    offsets: &mut [usize],
) -> usize {
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
    kept
}

/// Scores of every span of a finished sentence from its last states (`states` starts at the
/// sentence's first row), with β_T itself when `keep_beta`.
fn finish<R: Real>(
    model: &LstmClassifier<R>,
    trace: &ForwardTrace<R>,
    spans: &[Span],
    planner: &LanePlanner<'_>,
    states: &[R],
    keep_beta: bool,
) -> Vec<Decomposition> {
    let h = model.hidden_size();
    let last_h = contiguous(trace.hidden.row(trace.hidden.nrows() - 1));
    let logits_without_bias: Vec<f64> = trace
        .logits
        .iter()
        .zip(model.b_out())
        .map(|(l, b)| l - b.as_f64())
        .collect();
    let mut results: Vec<Option<Decomposition>> = vec![None; spans.len()];
    let mut gamma = vec![R::zero(); h];
    for (state, members) in planner.final_lanes() {
        let row = state.expect("every span is non-empty, so its lane has left the zero state");
        let beta = &states[row * h..(row + 1) * h];
        for ((g, &l), &b) in gamma.iter_mut().zip(last_h).zip(beta) {
            *g = l - b;
        }
        let rel = model.output(ArrayView1::from(beta), false);
        let irrel = model.output(ArrayView1::from(gamma.as_slice()), false);
        let residual = completeness_residual(&rel, &irrel, &logits_without_bias);
        let kept = keep_beta.then(|| beta.iter().map(|v| v.as_f64() as f32).collect::<Vec<f32>>());
        let (&last, others) = members
            .split_last()
            .expect("a lane holds at least one span");
        for &i in others {
            results[i] = Some(Decomposition {
                span: spans[i],
                rel: rel.clone(),
                irrel: irrel.clone(),
                residual,
                beta: kept.clone(),
            });
        }
        results[last] = Some(Decomposition {
            span: spans[last],
            rel,
            irrel,
            residual,
            beta: kept,
        });
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
