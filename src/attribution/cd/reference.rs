//! CD one span at a time, transcribed from the authors' `sent_util.CD`.
//!
//! β and γ are both propagated, with matrix-vector products per step and nothing shared between
//! spans. It is the oracle for the batched engine's shortcuts and the naive baseline of the benchmark.

use ndarray::{Array1, ArrayView1, s};

use super::Convention;
use super::Decomposition;
use super::engine::completeness_residual;
use crate::attribution::{AttributionError, Span, check_spans};
use crate::model::LstmClassifier;
use crate::numeric::Real;

/// The authors' `decomp_three(a, b, c, act)`: Shapley shares of `a` and `b` in `act(a + b + c)`
/// with the bias `c` placed first; the bias's share is `act(c)`.
pub(super) fn decomp_three<R: Real>(
    a: ArrayView1<'_, R>,
    b: ArrayView1<'_, R>,
    c: ArrayView1<'_, R>,
    act: fn(R) -> R,
) -> (Array1<R>, Array1<R>, Array1<R>) {
    let half = R::from_f64(0.5);
    let ac = (&a + &c).mapv(act);
    let bc = (&b + &c).mapv(act);
    let abc = (&a + &b + c).mapv(act);
    let c_act = c.mapv(act);
    let a_share = (&ac - &c_act + &abc - &bc) * half;
    let b_share = (&bc - &c_act + &abc - &ac) * half;
    (a_share, b_share, c_act)
}

/// CD of one span, with no batching or sharing; `logits` (with output bias) come from the
/// sentence's forward pass and only serve the completeness residual.
pub fn decompose_one_span<R: Real>(
    model: &LstmClassifier<R>,
    token_ids: &[usize],
    logits: &[f64],
    span: Span,
    convention: Convention,
) -> Result<Decomposition, AttributionError> {
    check_spans(&[span], token_ids.len())?;
    model.check_ids(token_ids)?;
    let h = model.hidden_size();
    let (w_ih, w_hh, bias) = (model.w_ih(), model.w_hh(), model.bias());
    let block = |k: usize| s![k * h..(k + 1) * h];
    let half = R::from_f64(0.5);
    let mut beta_h = Array1::<R>::zeros(h);
    let mut gamma_h = Array1::<R>::zeros(h);
    let mut beta_c = Array1::<R>::zeros(h);
    let mut gamma_c = Array1::<R>::zeros(h);

    for (t, &id) in token_ids.iter().enumerate() {
        let input = w_ih.dot(&model.embedding().row(id));
        let mut rel = w_hh.slice(s![..3 * h, ..]).dot(&beta_h);
        let mut irrel = w_hh.slice(s![..3 * h, ..]).dot(&gamma_h);
        if span.contains(t) {
            rel += &input.slice(s![..3 * h]);
        } else {
            irrel += &input.slice(s![..3 * h]);
        }
        let (rel_i, irrel_i, bias_i) = decomp_three(
            rel.slice(block(0)),
            irrel.slice(block(0)),
            bias.slice(block(0)),
            R::sigmoid,
        );
        let (rel_g, irrel_g, bias_g) = decomp_three(
            rel.slice(block(2)),
            irrel.slice(block(2)),
            bias.slice(block(2)),
            R::tanh_act,
        );
        let mut next_beta_c = &rel_i * &(&rel_g + &bias_g) + &bias_i * &rel_g;
        let mut next_gamma_c =
            &irrel_i * &(&rel_g + &irrel_g + &bias_g) + &(&rel_i + &bias_i) * &irrel_g;
        if convention.bias_product_relevant(span, t) {
            next_beta_c += &(&bias_i * &bias_g);
        } else {
            next_gamma_c += &(&bias_i * &bias_g);
        }
        if t > 0 {
            let (rel_f, irrel_f, bias_f) = decomp_three(
                rel.slice(block(1)),
                irrel.slice(block(1)),
                bias.slice(block(1)),
                R::sigmoid,
            );
            next_beta_c += &((&rel_f + &bias_f) * &beta_c);
            next_gamma_c += &((&rel_f + &irrel_f + &bias_f) * &gamma_c + &irrel_f * &beta_c);
        }
        let output_gate = (&input.slice(block(3))
            + &w_hh.slice(s![3 * h.., ..]).dot(&(&beta_h + &gamma_h))
            + bias.slice(block(3)))
        .mapv(R::sigmoid);
        beta_c = next_beta_c;
        gamma_c = next_gamma_c;
        let tanh_beta = beta_c.mapv(R::tanh_act);
        let tanh_gamma = gamma_c.mapv(R::tanh_act);
        let tanh_sum = (&beta_c + &gamma_c).mapv(R::tanh_act);
        beta_h = &output_gate * &((&tanh_beta + &(&tanh_sum - &tanh_gamma)) * half);
        gamma_h = &output_gate * &((&tanh_gamma + &(&tanh_sum - &tanh_beta)) * half);
    }

    let rel = model.output(beta_h.view(), false);
    let irrel = model.output(gamma_h.view(), false);
    let logits_without_bias: Vec<f64> = logits
        .iter()
        .zip(model.b_out())
        .map(|(l, b)| l - b.as_f64())
        .collect();
    let residual = completeness_residual(&rel, &irrel, &logits_without_bias);
    Ok(Decomposition {
        span,
        rel,
        irrel,
        residual,
        beta: Some(beta_h.iter().map(|v| v.as_f64() as f32).collect()),
    })
}
