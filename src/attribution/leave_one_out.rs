//! Leave-one-out (Li et al. 2016), as the paper uses it: a span's score is F(x) − F(x with the
//! span's embedding rows set to zero). A phrase zeroes all its words at once, so leave-one-out has
//! interactions: a phrase's score is not the sum of its words'.

use super::corpus::cut_batches;
use super::{
    Attribution, AttributionError, ROWS_PER_BATCH, SentenceSpans, SpanScore, Target,
    check_sentences, embed_all,
};
use crate::model::{Classifier, Occlusion};
use crate::numeric::Real;

/// Leave-one-out on any [`Classifier`].
pub struct LeaveOneOut<'m, R: Real> {
    model: &'m dyn Classifier<R>,
}

impl<'m, R: Real> LeaveOneOut<'m, R> {
    pub fn new(model: &'m dyn Classifier<R>) -> Self {
        Self { model }
    }
}

impl<R: Real> Attribution for LeaveOneOut<'_, R> {
    fn method(&self) -> &'static str {
        "leave_one_out"
    }

    fn rows(&self, _len: usize, spans: usize) -> usize {
        spans
    }

    fn attribute(
        &self,
        sentences: &[SentenceSpans<'_>],
        target: Target,
    ) -> Result<Vec<Vec<SpanScore>>, AttributionError> {
        check_sentences(sentences, self.model.vocab_size())?;
        let mut results = Vec::with_capacity(sentences.len());
        for range in cut_batches(sentences.iter().map(|s| s.spans.len()), ROWS_PER_BATCH) {
            let batch = &sentences[range];
            let inputs = embed_all(self.model, batch)?;
            let ranges: Vec<Vec<std::ops::Range<usize>>> = batch
                .iter()
                .map(|s| s.spans.iter().map(|span| span.range()).collect())
                .collect();
            let requests: Vec<Occlusion<'_, R>> = inputs
                .iter()
                .zip(&ranges)
                .map(|(input, spans)| Occlusion {
                    input: input.view(),
                    spans,
                })
                .collect();
            for (sentence, occluded) in batch.iter().zip(self.model.occluded_logits(&requests)) {
                let resolved = target.resolve(&occluded.logits);
                let whole = resolved.value(&occluded.logits);
                results.push(
                    sentence
                        .spans
                        .iter()
                        .zip(&occluded.occluded)
                        .map(|(&span, logits)| SpanScore {
                            span,
                            score: whole - resolved.value(logits),
                            rel: None,
                            irrel: None,
                            delta: None,
                            embedding: None,
                        })
                        .collect(),
                );
            }
        }
        Ok(results)
    }
}
