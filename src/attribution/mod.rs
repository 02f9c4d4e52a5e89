//! Attribution methods behind one interface, as Captum's `attribute(inputs, target)`: every method
//! scores spans of tokenised sentences for a [`Target`], so methods are interchangeable and their
//! rows share one table.
//!
//! Methods are built from a [`MethodConfig`] (serde, or the `name:key=value,...` syntax of
//! `cd-pipeline score --method`) by [`MethodConfig::build`], the one factory every front end uses.

pub mod cd;
mod cell_decomposition;
mod config;
mod corpus;
mod gradient;
mod leave_one_out;
mod target;

pub use cd::{ContextualDecomposition, Convention, StackedDecomposition};
pub use cell_decomposition::CellDecomposition;
pub use config::{
    Baseline, CdOptions, CellDecompositionOptions, GradientXInputOptions,
    IntegratedGradientsOptions, LeaveOneOutOptions, METHOD_NAMES, Method, MethodConfig, Quadrature,
    build_methods,
};
pub use corpus::{
    CorpusError, ROWS_PER_BATCH, ROWS_PER_CALL, SENTENCES_PER_CHUNK, SentenceAttribution,
    attribute_corpus, attribute_in_chunks,
};
pub use gradient::{GradientXInput, IntegratedGradients};
pub use leave_one_out::LeaveOneOut;
pub use target::{ResolvedTarget, Target};

use ndarray::{Array2, ArrayView1};

use crate::model::{Classifier, ModelError};
use crate::numeric::Real;

/// A half-open range `[start, end)` of token positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether token position `t` is inside the span.
    pub fn contains(&self, t: usize) -> bool {
        self.start <= t && t < self.end
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// Which spans of each sentence to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanSet {
    /// Every contiguous span, `len (len + 1) / 2` of them.
    All,
    /// Every single token.
    Unigrams,
    /// The whole sentence as one span: what the model's output owes to the sentence as a whole.
    Sentence,
}

impl SpanSet {
    /// The spans of a sentence of `len` tokens, ordered by start, then end.
    pub fn spans(self, len: usize) -> Vec<Span> {
        match self {
            SpanSet::All => (0..len)
                .flat_map(|start| (start + 1..=len).map(move |end| Span::new(start, end)))
                .collect(),
            SpanSet::Unigrams => (0..len).map(|t| Span::new(t, t + 1)).collect(),
            SpanSet::Sentence => vec![Span::new(0, len)],
        }
    }
}

/// One span's attribution by one method for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanScore {
    pub span: Span,
    /// The span's score for the target.
    pub score: f64,
    /// Per class, the part of the logits (without the output bias) that comes from the span, for
    /// methods that decompose the logits (CD, cell decomposition).
    pub rel: Option<Vec<f64>>,
    /// Per class, the rest of the logits without the output bias.
    pub irrel: Option<Vec<f64>>,
    /// How far the method is from its completeness axiom, for methods that have one: CD and cell
    /// decomposition, target(rel + irrel) − target(logits − bias); integrated gradients, the sum of
    /// the sentence's word attributions − (F(x) − F(baseline)).
    pub delta: Option<f64>,
    /// The span's embedding, for methods asked for one (CD's β_T with `beta`).
    pub embedding: Option<Vec<f32>>,
}

/// Why an attribution could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("span [{}, {}) does not fit a sentence of {len} tokens", span.start, span.end)]
    Span { span: Span, len: usize },
    #[error("{method} cannot attribute target {target}: {reason}")]
    Target {
        method: &'static str,
        target: Target,
        reason: String,
    },
}

/// An attribution method: scores any set of spans of tokenised sentences for a target.
pub trait Attribution: Send + Sync {
    /// Method name, as written to the `method` column (for example `cd`).
    fn method(&self) -> &'static str;

    /// The method's variant, as written to the `variant` column: CD's convention, integrated
    /// gradients' quadrature and baseline; `None` for methods without one.
    fn variant(&self) -> Option<String> {
        None
    }

    /// Rows of matrix products the method runs for one sentence of `len` tokens and `spans` spans:
    /// the measure by which work is cut into batches (states for CD, copies for leave-one-out,
    /// points of the path for integrated gradients).
    fn rows(&self, len: usize, spans: usize) -> usize;

    /// Attributes `target` to each sentence's spans, in the order given; sentences are attributed
    /// together (larger matrix products), each with the same result as alone.
    fn attribute(
        &self,
        sentences: &[SentenceSpans<'_>],
        target: Target,
    ) -> Result<Vec<Vec<SpanScore>>, AttributionError>;

    /// [`attribute`](Self::attribute) for one sentence.
    fn attribute_sentence(
        &self,
        token_ids: &[usize],
        spans: &[Span],
        target: Target,
    ) -> Result<Vec<SpanScore>, AttributionError> {
        Ok(self
            .attribute(&[SentenceSpans { token_ids, spans }], target)?
            .pop()
            .expect("one result per sentence"))
    }
}

/// One sentence and the spans of it to attribute.
#[derive(Debug, Clone, Copy)]
pub struct SentenceSpans<'a> {
    pub token_ids: &'a [usize],
    pub spans: &'a [Span],
}

/// Checks that every span is non-empty and inside a sentence of `len` tokens.
pub fn check_spans(spans: &[Span], len: usize) -> Result<(), AttributionError> {
    match spans.iter().find(|s| s.is_empty() || s.end > len) {
        Some(&span) => Err(AttributionError::Span { span, len }),
        None => Ok(()),
    }
}

/// Checks every sentence's ids against the model and its spans against its length.
fn check_sentences(
    sentences: &[SentenceSpans<'_>],
    vocab_size: usize,
) -> Result<(), AttributionError> {
    for s in sentences {
        crate::model::check_token_ids(s.token_ids, vocab_size)?;
        check_spans(s.spans, s.token_ids.len())?;
    }
    Ok(())
}

/// A target linear in the logits, for one sentence, as decompositions of the logits (CD, cell
/// decomposition) score spans: the target's weights and the logits without the output bias.
struct LinearTarget {
    weights: Vec<f64>,
    logits_without_bias: Vec<f64>,
}

impl LinearTarget {
    /// The target for a sentence with these logits, or the error of a method that needs it linear.
    fn new<R: Real>(
        method: &'static str,
        target: Target,
        logits: &[f64],
        bias: ArrayView1<'_, R>,
    ) -> Result<Self, AttributionError> {
        match target.resolve(logits) {
            ResolvedTarget::Linear(weights) => Ok(Self {
                weights,
                logits_without_bias: logits
                    .iter()
                    .zip(bias)
                    .map(|(l, b)| l - b.as_f64())
                    .collect(),
            }),
            _ => Err(AttributionError::Target {
                method,
                target,
                reason: "it decomposes the logits, so it takes logit_diff, logit:K or predicted"
                    .into(),
            }),
        }
    }

    /// A span's score w · rel, with rel and irrel and the delta w · (rel + irrel) − w · (logits − bias).
    fn score(&self, span: Span, rel: Vec<f64>, irrel: Vec<f64>) -> SpanScore {
        let dot = |values: &mut dyn Iterator<Item = f64>| -> f64 {
            values.zip(&self.weights).map(|(v, w)| v * w).sum()
        };
        let score = dot(&mut rel.iter().copied());
        let total = dot(&mut rel.iter().zip(&irrel).map(|(r, i)| r + i));
        let delta = total - dot(&mut self.logits_without_bias.iter().copied());
        SpanScore {
            span,
            score,
            rel: Some(rel),
            irrel: Some(irrel),
            delta: Some(delta),
            embedding: None,
        }
    }
}

/// The embedding rows of every sentence of a batch.
fn embed_all<R: Real>(
    model: &dyn Classifier<R>,
    sentences: &[SentenceSpans<'_>],
) -> Result<Vec<Array2<R>>, AttributionError> {
    sentences
        .iter()
        .map(|s| model.embed(s.token_ids).map_err(AttributionError::from))
        .collect()
}

/// Spans scored as the sum of their words' scores, as the paper scores phrases with word-level
/// methods; `delta` is the sentence's.
fn summed_scores(words: &[f64], spans: &[Span], delta: Option<f64>) -> Vec<SpanScore> {
    spans
        .iter()
        .map(|&span| SpanScore {
            span,
            score: words[span.range()].iter().sum(),
            rel: None,
            irrel: None,
            delta,
            embedding: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_sets_enumerate_every_span_once() {
        let all = SpanSet::All.spans(20);
        assert_eq!(all.len(), 210);
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, all);
        assert!(all.iter().all(|s| !s.is_empty() && s.end <= 20));
        assert_eq!(
            SpanSet::Unigrams.spans(3),
            vec![Span::new(0, 1), Span::new(1, 2), Span::new(2, 3)]
        );
    }

    #[test]
    fn spans_outside_the_sentence_are_rejected() {
        assert!(check_spans(&[Span::new(0, 3)], 3).is_ok());
        assert!(check_spans(&[Span::new(1, 4)], 3).is_err());
        assert!(check_spans(&[Span::new(2, 2)], 3).is_err());
    }

    #[test]
    fn word_level_spans_sum_their_words() {
        let scores = summed_scores(&[1.0, -2.0, 0.5], &[Span::new(0, 3), Span::new(1, 2)], None);
        assert_eq!(scores[0].score, -0.5);
        assert_eq!(scores[1].score, -2.0);
    }
}
