//! Cell decomposition (Murdoch & Szlam 2017, the β variant the paper compares with): word t's
//! contribution to class j is W_j (o_T ⊙ (tanh c_t − tanh c_(t−1))), with c_(−1) = 0; the words'
//! contributions telescope to W h_T, the logits without the output bias. A span's `rel` is the sum
//! over its words, `irrel` the sum over the others.

use super::{
    Attribution, AttributionError, LinearTarget, SentenceSpans, SpanScore, Target, check_sentences,
};
use crate::model::LstmClassifier;
use crate::numeric::Real;

/// Cell decomposition, defined for a one-layer unidirectional LSTM.
pub struct CellDecomposition<'m, R: Real> {
    model: &'m LstmClassifier<R>,
}

impl<'m, R: Real> CellDecomposition<'m, R> {
    pub fn new(model: &'m LstmClassifier<R>) -> Self {
        Self { model }
    }

    /// Per word, per class: W_j (o_T ⊙ (tanh c_t − tanh c_(t−1))), accumulated in f64.
    pub fn word_contributions(
        &self,
        token_ids: &[usize],
    ) -> Result<Vec<Vec<f64>>, AttributionError> {
        let trace = self.model.forward(token_ids)?;
        Ok(self.contributions(&trace))
    }

    fn contributions(&self, trace: &crate::model::ForwardTrace<R>) -> Vec<Vec<f64>> {
        let h = self.model.hidden_size();
        let steps = trace.hidden.nrows();
        let output_gate = trace.gates.row(steps - 1);
        let output_gate = &output_gate.as_slice().expect("standard layout")[3 * h..];
        let w_out = self.model.w_out();
        (0..steps)
            .map(|t| {
                let change: Vec<f64> = (0..h)
                    .map(|j| {
                        let previous = if t > 0 {
                            trace.tanh_cells[(t - 1, j)].as_f64()
                        } else {
                            0.0
                        };
                        output_gate[j].as_f64() * (trace.tanh_cells[(t, j)].as_f64() - previous)
                    })
                    .collect();
                w_out
                    .rows()
                    .into_iter()
                    .map(|w| w.iter().zip(&change).map(|(w, c)| w.as_f64() * c).sum())
                    .collect()
            })
            .collect()
    }
}

impl<R: Real> Attribution for CellDecomposition<'_, R> {
    fn method(&self) -> &'static str {
        "cell_decomposition"
    }

    fn rows(&self, _len: usize, _spans: usize) -> usize {
        1
    }

    fn attribute(
        &self,
        sentences: &[SentenceSpans<'_>],
        target: Target,
    ) -> Result<Vec<Vec<SpanScore>>, AttributionError> {
        check_sentences(sentences, self.model.vocab_size())?;
        let ids: Vec<&[usize]> = sentences.iter().map(|s| s.token_ids).collect();
        let traces = self.model.forward_batch(&ids)?;
        let classes = self.model.num_classes();
        let bias = self.model.b_out();
        let mut results = Vec::with_capacity(sentences.len());
        for (sentence, trace) in sentences.iter().zip(&traces) {
            let linear = LinearTarget::new("cell_decomposition", target, &trace.logits, bias)?;
            let words = self.contributions(trace);
            let sum = |keep: &dyn Fn(usize) -> bool| -> Vec<f64> {
                (0..classes)
                    .map(|j| {
                        (0..words.len())
                            .filter(|&t| keep(t))
                            .map(|t| words[t][j])
                            .sum()
                    })
                    .collect()
            };
            results.push(
                sentence
                    .spans
                    .iter()
                    .map(|&span| {
                        let rel = sum(&|t| span.contains(t));
                        let irrel = sum(&|t| !span.contains(t));
                        linear.score(span, rel, irrel)
                    })
                    .collect(),
            );
        }
        Ok(results)
    }
}
