//! Attributing many sentences in parallel.

use rayon::prelude::*;

use super::{Attribution, AttributionError, SentenceSpans, Span, SpanAttribution};

/// Spans attributed together by one worker: consecutive sentences join a batch until it holds this
/// many spans. Batches depend only on the input, never on threads, so a sentence's batch (and its
/// result, to the bit) is the same for any thread count. Measured on the benchmark: larger batches
/// speed up short span lists (unigrams: 1.5-2x over one sentence per batch) but slow down long
/// ones, whose states then outgrow the L2 cache.
pub const SPANS_PER_BATCH: usize = 256;

/// Spans given to a method in one call: several batches of [`SPANS_PER_BATCH`], so that the work a
/// method does on whole sentences, such as the forward pass (one row per sentence in each of its
/// products), runs on more rows at once. Measured on the CD benchmark (length 20, all spans, 2
/// sentences per batch): the forward pass took 3.5 % of the time with one batch per call.
pub const SPANS_PER_CALL: usize = 4 * SPANS_PER_BATCH;

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
    let spans: Vec<Vec<Span>> = sentences
        .iter()
        .enumerate()
        .map(|(k, ids)| spans_of(k, ids))
        .collect();
    let batches = cut_batches(spans.iter().map(Vec::len), SPANS_PER_CALL);
    let per_batch: Vec<Vec<SentenceAttribution>> = batches
        .par_iter()
        .map(|range| {
            let first = range.start;
            let chunk = &sentences[range.clone()];
            let spans = &spans[range.clone()];
            let requests: Vec<SentenceSpans<'_>> = chunk
                .iter()
                .zip(spans)
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

/// Consecutive ranges of sentences, given their numbers of spans, each closed once it holds at
/// least `limit` spans.
pub(crate) fn cut_batches(
    span_counts: impl IntoIterator<Item = usize>,
    limit: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut held, mut end) = (0, 0, 0);
    for (k, count) in span_counts.into_iter().enumerate() {
        held += count;
        end = k + 1;
        if held >= limit {
            batches.push(start..end);
            (start, held) = (end, 0);
        }
    }
    if start < end {
        batches.push(start..end);
    }
    batches
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
