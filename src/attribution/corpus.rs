//! Attributing many sentences in parallel.

use rayon::prelude::*;

use super::{Attribution, AttributionError, SentenceSpans, Span, SpanAttribution};

/// Sentences attributed together by one worker. Batches are cut from the input in order, never
/// by thread, so a sentence's batch (and its result, to the bit) is the same for any thread count.
pub const SENTENCES_PER_BATCH: usize = 8;

/// The attributions of one sentence by one method.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceAttribution {
    /// Position of the sentence in the input.
    pub sentence: usize,
    /// Position of the method in the list of methods.
    pub method: usize,
    pub spans: Vec<SpanAttribution>,
}

/// A sentence that could not be attributed, with its position in the input.
#[derive(Debug, thiserror::Error)]
#[error("sentence {sentence}: {source}")]
pub struct CorpusError {
    pub sentence: usize,
    pub source: AttributionError,
}

/// Runs every method over every sentence, batches of sentences fanned out over the current rayon
/// pool; results come back ordered by sentence, then method.
pub fn attribute_corpus(
    methods: &[&dyn Attribution],
    sentences: &[Vec<usize>],
    spans_of: impl Fn(usize, &[usize]) -> Vec<Span> + Sync,
) -> Result<Vec<SentenceAttribution>, CorpusError> {
    let per_batch: Vec<Vec<SentenceAttribution>> = sentences
        .par_chunks(SENTENCES_PER_BATCH)
        .enumerate()
        .map(|(batch, chunk)| {
            let first = batch * SENTENCES_PER_BATCH;
            let spans: Vec<Vec<Span>> = chunk
                .iter()
                .enumerate()
                .map(|(k, ids)| spans_of(first + k, ids))
                .collect();
            let requests: Vec<SentenceSpans<'_>> = chunk
                .iter()
                .zip(&spans)
                .map(|(ids, spans)| SentenceSpans {
                    token_ids: ids,
                    spans,
                })
                .collect();
            let mut by_method = methods
                .iter()
                .map(|m| m.attribute_batch(&requests).map(|r| r.into_iter()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| CorpusError {
                    sentence: first + failing_sentence(methods, &requests),
                    source,
                })?;
            let mut out = Vec::with_capacity(chunk.len() * methods.len());
            for k in 0..chunk.len() {
                for (method, results) in by_method.iter_mut().enumerate() {
                    out.push(SentenceAttribution {
                        sentence: first + k,
                        method,
                        spans: results.next().expect("one result per sentence"),
                    });
                }
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    Ok(per_batch.into_iter().flatten().collect())
}

/// The first sentence of a failed batch that fails on its own, to name it in the error.
fn failing_sentence(methods: &[&dyn Attribution], requests: &[SentenceSpans<'_>]) -> usize {
    requests
        .iter()
        .position(|r| {
            methods
                .iter()
                .any(|m| m.attribute(r.token_ids, r.spans).is_err())
        })
        .unwrap_or(0)
}
