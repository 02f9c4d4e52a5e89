//! Attributing many sentences in parallel.

use rayon::prelude::*;

use super::{Attribution, AttributionError, SentenceSpans, Span, SpanScore, Target};
use crate::progress::Progress;

/// Rows a method's matrix products hold at once (its engine batch): consecutive sentences join a
/// batch until it holds this many (see [`Attribution::rows`]). Batches depend only on the input,
/// never on threads, so a sentence's batch (and its result, to the bit) is the same for any
/// thread count. Measured on the CD benchmark: larger batches speed up short span lists (unigrams:
/// 1.5-2x over one sentence per batch) but slow down long ones, whose states then outgrow the L2
/// cache.
pub const ROWS_PER_BATCH: usize = 256;

/// Rows given to a method in one call: several engine batches, so that the work a method does on
/// whole sentences, such as the forward pass (one row per sentence in each of its products), runs
/// on more rows at once. Measured on the CD benchmark (length 20, all spans, 2 sentences per
/// batch): the forward pass took 3.5 % of the time with one batch per call.
pub const ROWS_PER_CALL: usize = 4 * ROWS_PER_BATCH;

/// Calls a method's work is cut into, at least, when the input has enough rows: a call runs on
/// one core, so a small corpus (or a method with one row per sentence, such as gradient × input)
/// still fans out over several. Like the calls themselves, it depends on the input only.
const MIN_CALLS: usize = 16;

/// Rows a call holds at least (but the last), so that its matrix products keep some width.
const MIN_CALL_ROWS: usize = 32;

/// The attributions of one sentence by one method.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceAttribution {
    /// Position of the sentence in the input.
    pub sentence: usize,
    /// Position of the method in the list of methods.
    pub method: usize,
    pub spans: Vec<SpanScore>,
}

/// A sentence that could not be attributed, with its position in the input.
#[derive(Debug, thiserror::Error)]
#[error("sentence {sentence}: {source}")]
pub struct CorpusError {
    pub sentence: usize,
    pub source: AttributionError,
}

/// Runs every method, each for its target, over every sentence: each method's calls (cut by its
/// own rows per sentence, at most [`ROWS_PER_CALL`] rows each and at least 16 calls when the
/// rows allow) fan out over the current rayon pool. Results come back ordered by
/// sentence, then method.
pub fn attribute_corpus(
    methods: &[(&dyn Attribution, Target)],
    sentences: &[Vec<usize>],
    spans_of: impl Fn(usize, &[usize]) -> Vec<Span> + Sync,
) -> Result<Vec<SentenceAttribution>, CorpusError> {
    let spans: Vec<Vec<Span>> = sentences
        .iter()
        .enumerate()
        .map(|(k, ids)| spans_of(k, ids))
        .collect();
    let requests: Vec<SentenceSpans<'_>> = sentences
        .iter()
        .zip(&spans)
        .map(|(ids, spans)| SentenceSpans {
            token_ids: ids,
            spans,
        })
        .collect();
    let mut by_method = Vec::with_capacity(methods.len());
    for &(method, target) in methods {
        let rows: Vec<usize> = requests
            .iter()
            .map(|r| method.rows(r.token_ids.len(), r.spans.len()))
            .collect();
        let limit = rows
            .iter()
            .sum::<usize>()
            .div_ceil(MIN_CALLS)
            .clamp(MIN_CALL_ROWS, ROWS_PER_CALL);
        let calls = cut_batches(rows, limit);
        let per_call: Vec<Vec<Vec<SpanScore>>> = calls
            .par_iter()
            .map(|range| {
                let call = &requests[range.clone()];
                method
                    .attribute(call, target)
                    .map_err(|source| CorpusError {
                        sentence: range.start + failing_sentence(method, target, call),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        by_method.push(per_call.into_iter().flatten());
    }
    let mut out = Vec::with_capacity(sentences.len() * methods.len());
    for sentence in 0..sentences.len() {
        for (method, results) in by_method.iter_mut().enumerate() {
            out.push(SentenceAttribution {
                sentence,
                method,
                spans: results.next().expect("one result per sentence"),
            });
        }
    }
    Ok(out)
}

/// Sentences attributed per call of [`attribute_in_chunks`]'s callback: enough to keep every core
/// busy, few enough to bound memory whatever the size of the input.
pub const SENTENCES_PER_CHUNK: usize = 1024;

/// [`attribute_corpus`] over chunks of sentences (bounding memory whatever the input size),
/// handing each chunk's results, in input order and with input positions, to `on_chunk`.
pub fn attribute_in_chunks<E: From<CorpusError>>(
    methods: &[(&dyn Attribution, Target)],
    ids: &[Vec<usize>],
    spans_of: impl Fn(usize, &[usize]) -> Vec<Span> + Sync,
    mut on_chunk: impl FnMut(&[SentenceAttribution]) -> Result<(), E>,
) -> Result<(), E> {
    let progress = Progress::start(
        tracing::info_span!("scoring", indicatif.pb_show = true),
        "sentences",
        ids.len(),
        methods
            .iter()
            .map(|(m, _)| {
                m.variant()
                    .map_or_else(|| m.method().to_string(), |v| format!("{} {v}", m.method()))
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    for (chunk_index, chunk_ids) in ids.chunks(SENTENCES_PER_CHUNK).enumerate() {
        let offset = chunk_index * SENTENCES_PER_CHUNK;
        let mut results = attribute_corpus(methods, chunk_ids, |k, ids| spans_of(offset + k, ids))
            .map_err(|mut e| {
                e.sentence += offset;
                e
            })?;
        for result in &mut results {
            result.sentence += offset;
        }
        tracing::debug!(
            "attributed sentences {}-{} of {}",
            offset + 1,
            offset + chunk_ids.len(),
            ids.len()
        );
        on_chunk(&results)?;
        progress.advance(chunk_ids.len());
    }
    Ok(())
}

/// Consecutive ranges of sentences, given their numbers of rows (or spans), each closed once it
/// holds at least `limit`.
pub(crate) fn cut_batches(
    counts: impl IntoIterator<Item = usize>,
    limit: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut held, mut end) = (0, 0, 0);
    for (k, count) in counts.into_iter().enumerate() {
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

/// The first sentence of a failed call that fails on its own, to name it in the error.
fn failing_sentence(method: &dyn Attribution, target: Target, call: &[SentenceSpans<'_>]) -> usize {
    call.iter()
        .position(|r| method.attribute(std::slice::from_ref(r), target).is_err())
        .unwrap_or(0)
}
