//! CD of one span for any [`RnnClassifier`], transcribed from the spec (`cd_architectures.md`
//! §2-§5): β and γ both propagated through every layer and direction with matrix-vector products,
//! nothing shared. The oracle for the batched engine's shortcuts.

use ndarray::{Array1, Array2, s};

use super::engine::completeness_residual;
use super::{Convention, Decomposition};
use crate::attribution::{AttributionError, Span, check_spans};
use crate::model::{CellKind, RnnClassifier, processing_order};
use crate::numeric::Real;

/// The authors' `decomp_three` on owned vectors.
fn decomp_three<R: Real>(
    a: &Array1<R>,
    b: &Array1<R>,
    c: &Array1<R>,
    act: fn(R) -> R,
) -> (Array1<R>, Array1<R>, Array1<R>) {
    super::reference::decomp_three(a.view(), b.view(), c.view(), act)
}

/// CD of one span; `logits` (with output bias) only serve the completeness residual.
pub fn decompose_one_span_rnn<R: Real>(
    model: &RnnClassifier<R>,
    token_ids: &[usize],
    logits: &[f64],
    span: Span,
    convention: Convention,
) -> Result<Decomposition, AttributionError> {
    check_spans(&[span], token_ids.len())?;
    let inputs = model.embed(token_ids)?;
    let len = token_ids.len();
    let h = model.hidden_size();
    let architecture = model.architecture();
    let directions = architecture.directions();
    let mut rel_in = inputs.clone();
    for t in 0..len {
        if !span.contains(t) {
            rel_in.row_mut(t).fill(R::zero());
        }
    }
    let mut irrel_in = &inputs - &rel_in;
    let mut features = (Vec::new(), Vec::new());
    for (k, layer) in model.layers().iter().enumerate() {
        let mut rel_out = Array2::<R>::zeros((len, directions * h));
        let mut irrel_out = Array2::<R>::zeros((len, directions * h));
        for (d, w) in layer.iter().enumerate() {
            let backward = d == 1;
            let block = |q: usize| s![q * h..(q + 1) * h];
            let bias = &w.b_ih + &w.b_hh;
            let mut beta_h = Array1::<R>::zeros(h);
            let mut gamma_h = Array1::<R>::zeros(h);
            let mut beta_c = Array1::<R>::zeros(h);
            let mut gamma_c = Array1::<R>::zeros(h);
            for (step, t) in processing_order(len, backward).enumerate() {
                let relevant_bias = convention.bias_product_relevant(span, t);
                let input_rel = w.w_ih.dot(&rel_in.row(t));
                let input_irrel = w.w_ih.dot(&irrel_in.row(t));
                let rec_rel = w.w_hh.dot(&beta_h);
                let rec_irrel = w.w_hh.dot(&gamma_h);
                let part = |v: &Array1<R>, q: usize| v.slice(block(q)).to_owned();
                match architecture.cell {
                    CellKind::Lstm => {
                        let rel = &input_rel + &rec_rel;
                        let irrel = &input_irrel + &rec_irrel;
                        let (ri, ii, bi) = decomp_three(
                            &part(&rel, 0),
                            &part(&irrel, 0),
                            &part(&bias, 0),
                            R::sigmoid,
                        );
                        let (rg, ig, bg) = decomp_three(
                            &part(&rel, 2),
                            &part(&irrel, 2),
                            &part(&bias, 2),
                            R::tanh_act,
                        );
                        let mut next_beta_c = &ri * &(&rg + &bg) + &bi * &rg;
                        let mut next_gamma_c = &ii * &(&rg + &ig + &bg) + &(&ri + &bi) * &ig;
                        if relevant_bias {
                            next_beta_c += &(&bi * &bg);
                        } else {
                            next_gamma_c += &(&bi * &bg);
                        }
                        if step > 0 {
                            let (rf, if_, bf) = decomp_three(
                                &part(&rel, 1),
                                &part(&irrel, 1),
                                &part(&bias, 1),
                                R::sigmoid,
                            );
                            next_beta_c += &((&rf + &bf) * &beta_c);
                            next_gamma_c += &((&rf + &if_ + &bf) * &gamma_c + &if_ * &beta_c);
                        }
                        let output_gate = (part(&input_rel, 3)
                            + part(&input_irrel, 3)
                            + part(&rec_rel, 3)
                            + part(&rec_irrel, 3)
                            + part(&bias, 3))
                        .mapv(R::sigmoid);
                        beta_c = next_beta_c;
                        gamma_c = next_gamma_c;
                        let (tanh_beta, tanh_gamma) =
                            (beta_c.mapv(R::tanh_act), gamma_c.mapv(R::tanh_act));
                        let tanh_sum = (&beta_c + &gamma_c).mapv(R::tanh_act);
                        let half = R::from_f64(0.5);
                        beta_h = &output_gate * &((&tanh_beta + &(&tanh_sum - &tanh_gamma)) * half);
                        gamma_h =
                            &output_gate * &((&tanh_gamma + &(&tanh_sum - &tanh_beta)) * half);
                    }
                    CellKind::Gru => {
                        let gate_bias = |q: usize| part(&w.b_ih, q) + part(&w.b_hh, q);
                        let (r_beta, r_gamma, r_0) = decomp_three(
                            &(part(&input_rel, 0) + part(&rec_rel, 0)),
                            &(part(&input_irrel, 0) + part(&rec_irrel, 0)),
                            &gate_bias(0),
                            R::sigmoid,
                        );
                        let (z_beta, z_gamma, z_0) = decomp_three(
                            &(part(&input_rel, 1) + part(&rec_rel, 1)),
                            &(part(&input_irrel, 1) + part(&rec_irrel, 1)),
                            &gate_bias(1),
                            R::sigmoid,
                        );
                        let (v_beta, v_gamma) = (part(&rec_rel, 2), part(&rec_irrel, 2));
                        let b_hn = part(&w.b_hh, 2);
                        let rel_n = part(&input_rel, 2)
                            + &r_beta * &v_beta
                            + &r_beta * &b_hn
                            + &r_0 * &v_beta;
                        let irrel_n = part(&input_irrel, 2)
                            + &r_gamma * &(&v_beta + &v_gamma + &b_hn)
                            + &(&r_beta + &r_0) * &v_gamma;
                        let bias_n = part(&w.b_ih, 2) + &r_0 * &b_hn;
                        let (n_beta, n_gamma, n_0) =
                            decomp_three(&rel_n, &irrel_n, &bias_n, R::tanh_act);
                        let (u_beta, u_gamma) = (z_beta.mapv(|z| -z), z_gamma.mapv(|z| -z));
                        let u_0 = z_0.mapv(|z| R::one() - z);
                        let mut next_beta = &u_beta * &n_beta
                            + &u_beta * &n_0
                            + &u_0 * &n_beta
                            + &(&z_beta + &z_0) * &beta_h;
                        let mut next_gamma = &u_gamma * &(&n_beta + &n_gamma + &n_0)
                            + &(&u_beta + &u_0) * &n_gamma
                            + &z_gamma * &beta_h
                            + &(&z_beta + &z_gamma + &z_0) * &gamma_h;
                        if relevant_bias {
                            next_beta += &(&u_0 * &n_0);
                        } else {
                            next_gamma += &(&u_0 * &n_0);
                        }
                        beta_h = next_beta;
                        gamma_h = next_gamma;
                    }
                }
                rel_out.slice_mut(s![t, d * h..(d + 1) * h]).assign(&beta_h);
                irrel_out
                    .slice_mut(s![t, d * h..(d + 1) * h])
                    .assign(&gamma_h);
            }
        }
        if k + 1 == model.layers().len() {
            let final_state = |out: &Array2<R>| -> Vec<R> {
                let mut state = out.slice(s![len - 1, ..h]).to_vec();
                if directions == 2 {
                    state.extend(out.slice(s![0, h..]));
                }
                state
            };
            features = (final_state(&rel_out), final_state(&irrel_out));
        }
        rel_in = rel_out;
        irrel_in = irrel_out;
    }
    let rel = model.output(&features.0, false);
    let irrel = model.output(&features.1, false);
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
        beta: Some(features.0.iter().map(|v| v.as_f64() as f32).collect()),
    })
}
