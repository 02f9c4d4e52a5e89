//! Logits of copies of sentences with a span of embedding rows set to zero (leave-one-out), for
//! the LSTM classifier.
//!
//! A zeroed span changes nothing before it, so every copy starts from the sentence's own forward
//! state just before the span. Copies of spans with the same start are one state while their
//! inputs agree (all zero), and part at the end of each shorter span: one lane per start runs
//! with zero inputs, and at each end a lane with the real inputs branches off it. At every step
//! the recurrent products of every lane of every sentence are one matrix product.

use std::collections::BTreeMap;

use ndarray::ArrayView1;

use super::backprop::forward_step;
use super::{LstmClassifier, Occluded, Occlusion};
use crate::numeric::{Mat, Real, matmul};

/// One state advancing through a sentence.
struct Lane {
    request: usize,
    /// Whether its inputs are zero (it is inside its spans) or the sentence's own.
    zeroed: bool,
    /// For a zeroed lane: the ends (before the sentence's end) where spans leave it, ascending,
    /// with the spans that end there.
    branches: Vec<(usize, Vec<usize>)>,
    /// The spans whose copy ends as this lane's final state.
    results: Vec<usize>,
}

impl<R: Real> LstmClassifier<R> {
    /// [`Classifier::occluded_logits`](super::Classifier::occluded_logits) for this LSTM.
    pub(super) fn lstm_occluded_logits(&self, requests: &[Occlusion<'_, R>]) -> Vec<Occluded> {
        let (h, g4) = (self.hidden_size(), 4 * self.hidden_size());
        let inputs: Vec<_> = requests.iter().map(|r| r.input).collect();
        let traces = self.forward_rows(&inputs);
        // Per request: start → end → the spans with that start and end.
        let groups: Vec<BTreeMap<usize, BTreeMap<usize, Vec<usize>>>> = requests
            .iter()
            .map(|r| {
                let mut by_start: BTreeMap<usize, BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
                for (k, span) in r.spans.iter().enumerate() {
                    assert!(
                        span.start < span.end && span.end <= r.input.nrows(),
                        "spans are non-empty and inside the sentence"
                    );
                    by_start
                        .entry(span.start)
                        .or_default()
                        .entry(span.end)
                        .or_default()
                        .push(k);
                }
                by_start
            })
            .collect();
        let mut results: Vec<Occluded> = requests
            .iter()
            .zip(&traces)
            .map(|(r, trace)| Occluded {
                logits: trace.logits.clone(),
                occluded: vec![Vec::new(); r.spans.len()],
            })
            .collect();

        let longest = requests.iter().map(|r| r.input.nrows()).max().unwrap_or(0);
        let bias = self.bias.as_slice().expect("standard layout");
        let w_hh_t = Mat::new(self.w_hh_t.as_slice().expect("standard layout"), h, g4);
        let mut lanes: Vec<Lane> = Vec::new();
        let (mut state_h, mut state_c): (Vec<R>, Vec<R>) = (Vec::new(), Vec::new());
        for t in 0..longest {
            // New lanes, from the sentence's own state before step t.
            for (i, by_start) in groups.iter().enumerate() {
                let Some(by_end) = by_start.get(&t) else {
                    continue;
                };
                let len = requests[i].input.nrows();
                let mut branches: Vec<(usize, Vec<usize>)> = Vec::new();
                let mut at_end = Vec::new();
                for (&end, spans) in by_end {
                    if end == len {
                        at_end.extend_from_slice(spans);
                    } else {
                        branches.push((end, spans.clone()));
                    }
                }
                lanes.push(Lane {
                    request: i,
                    zeroed: true,
                    branches,
                    results: at_end,
                });
                if t == 0 {
                    state_h.extend(std::iter::repeat_n(R::zero(), h));
                    state_c.extend(std::iter::repeat_n(R::zero(), h));
                } else {
                    state_h.extend(traces[i].hidden.row(t - 1));
                    state_c.extend(traces[i].cells.row(t - 1));
                }
            }
            // Spans ending before step t continue with the real inputs.
            for l in 0..lanes.len() {
                let lane = &mut lanes[l];
                if !(lane.zeroed && lane.branches.first().is_some_and(|(end, _)| *end == t)) {
                    continue;
                }
                let (_, spans) = lane.branches.remove(0);
                if lane.branches.is_empty() && lane.results.is_empty() {
                    lane.zeroed = false;
                    lane.results = spans;
                } else {
                    let request = lane.request;
                    lanes.push(Lane {
                        request,
                        zeroed: false,
                        branches: Vec::new(),
                        results: spans,
                    });
                    state_h.extend_from_within(l * h..(l + 1) * h);
                    state_c.extend_from_within(l * h..(l + 1) * h);
                }
            }
            // One step of every lane.
            let n = lanes.len();
            let mut z = vec![R::zero(); n * g4];
            for (row, lane) in z.chunks_exact_mut(g4).zip(&lanes) {
                if !lane.zeroed {
                    row.copy_from_slice(
                        traces[lane.request]
                            .input_products
                            .row(t)
                            .as_slice()
                            .expect("standard layout"),
                    );
                }
            }
            if t > 0 {
                matmul(Mat::new(&state_h, n, h), w_hh_t, &mut z, true);
            }
            let (mut next_c, mut tanh_c, mut next_h) = (
                vec![R::zero(); n * h],
                vec![R::zero(); n * h],
                vec![R::zero(); n * h],
            );
            forward_step(
                &mut z,
                bias,
                Some(&state_c),
                &mut next_c,
                &mut tanh_c,
                &mut next_h,
            );
            // Lanes of sentences ending at step t are done.
            let mut kept = 0;
            for l in 0..n {
                let lane = &lanes[l];
                if requests[lane.request].input.nrows() == t + 1 {
                    let logits = self.output(ArrayView1::from(&next_h[l * h..(l + 1) * h]), true);
                    for &span in &lane.results {
                        results[lane.request].occluded[span] = logits.clone();
                    }
                } else {
                    next_h.copy_within(l * h..(l + 1) * h, kept * h);
                    next_c.copy_within(l * h..(l + 1) * h, kept * h);
                    lanes.swap(l, kept);
                    kept += 1;
                }
            }
            lanes.truncate(kept);
            next_h.truncate(kept * h);
            next_c.truncate(kept * h);
            (state_h, state_c) = (next_h, next_c);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use crate::model::{Classifier, LstmClassifier, Occlusion};
    use crate::numeric::SplitMix64;

    /// Every copy's logits equal a forward pass of the sentence with the span's rows zeroed: spans
    /// sharing starts and ends, duplicates, the whole sentence, sentences of other lengths alongside.
    #[test]
    fn occluded_copies_equal_forward_passes_of_zeroed_sentences() {
        let model = LstmClassifier::<f64>::seeded_random(9, 4, 5, 3, 23);
        let mut rng = SplitMix64(4);
        let inputs: Vec<Array2<f64>> = [6, 1, 3]
            .iter()
            .map(|&len| Array2::from_shape_fn((len, 4), |_| rng.normal()))
            .collect();
        let spans = [
            vec![0..1, 1..3, 1..4, 1..6, 2..3, 1..3, 0..6, 5..6, 3..5],
            std::iter::once(0..1).collect(),
            vec![2..3, 0..2, 1..3],
        ];
        let requests: Vec<Occlusion<'_, f64>> = inputs
            .iter()
            .zip(&spans)
            .map(|(x, s)| Occlusion {
                input: x.view(),
                spans: s,
            })
            .collect();
        let results = model.occluded_logits(&requests);
        for ((x, spans), result) in inputs.iter().zip(&spans).zip(&results) {
            assert_eq!(result.logits, model.logits(&[x.view()])[0]);
            for (span, got) in spans.iter().zip(&result.occluded) {
                let mut zeroed = x.clone();
                for t in span.clone() {
                    zeroed.row_mut(t).fill(0.0);
                }
                let want = &model.logits(&[zeroed.view()])[0];
                let error = got
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(error < 1e-12, "{span:?}: {got:?} vs {want:?}");
            }
        }
    }
}
