//! Attributing many sentences in parallel.

use rayon::prelude::*;

use super::{Attribution, AttributionError, Span, SpanAttribution};

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

/// Runs every method over every sentence, sentences fanned out over the current rayon pool.
///
/// Each sentence is computed by one worker from start to end, so results do not depend on the
/// number of threads; they come back ordered by sentence, then method.
pub fn attribute_corpus(
    methods: &[&dyn Attribution],
    sentences: &[Vec<usize>],
    spans_of: impl Fn(usize, &[usize]) -> Vec<Span> + Sync,
) -> Result<Vec<SentenceAttribution>, CorpusError> {
    let per_sentence: Vec<Vec<SentenceAttribution>> = sentences
        .par_iter()
        .enumerate()
        .map(|(sentence, ids)| {
            let spans = spans_of(sentence, ids);
            methods
                .iter()
                .enumerate()
                .map(|(method, m)| {
                    m.attribute(ids, &spans)
                        .map(|spans| SentenceAttribution {
                            sentence,
                            method,
                            spans,
                        })
                        .map_err(|source| CorpusError { sentence, source })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    Ok(per_sentence.into_iter().flatten().collect())
}
