//! Attribution methods behind one interface, so that every method is interchangeable.
//!
//! A method scores spans of a tokenised sentence. Every method returns, per span and class, a
//! relevant part `rel` (what the span contributes) and the remainder `irrel`, together with how far
//! `rel + irrel` is from the model's output without its bias (the completeness residual).

pub mod cd;
mod corpus;

pub use cd::{ContextualDecomposition, Convention};
pub use corpus::{
    CorpusError, SPANS_PER_BATCH, SPANS_PER_CALL, SentenceAttribution, attribute_corpus,
};

use crate::model::ModelError;

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
}

/// Which spans of each sentence to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanSet {
    /// Every contiguous span, `len (len + 1) / 2` of them.
    All,
    /// Every single token.
    Unigrams,
}

impl SpanSet {
    /// The spans of a sentence of `len` tokens, ordered by start, then end.
    pub fn spans(self, len: usize) -> Vec<Span> {
        match self {
            SpanSet::All => (0..len)
                .flat_map(|start| (start + 1..=len).map(move |end| Span::new(start, end)))
                .collect(),
            SpanSet::Unigrams => (0..len).map(|t| Span::new(t, t + 1)).collect(),
        }
    }
}

/// The attribution of one span: per class, its relevant and irrelevant parts of the output.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanAttribution {
    pub span: Span,
    /// Contribution of the span alone, one value per class, without the output bias.
    pub rel: Vec<f64>,
    /// Everything else, one value per class, without the output bias.
    pub irrel: Vec<f64>,
    /// max over classes of |rel + irrel - (logits - output bias)|.
    pub residual: f64,
}

impl SpanAttribution {
    /// The binary sentiment score `rel[1] - rel[0]` (positive minus negative); `None` unless 2 classes.
    pub fn binary_score(&self) -> Option<f64> {
        match self.rel.as_slice() {
            [negative, positive] => Some(positive - negative),
            _ => None,
        }
    }
}

/// Why an attribution could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("span [{}, {}) does not fit a sentence of {len} tokens", span.start, span.end)]
    Span { span: Span, len: usize },
}

/// An attribution method: scores any set of spans of one sentence.
pub trait Attribution: Send + Sync {
    /// Method family, as written to the `method` column (for example `cd`).
    fn method(&self) -> &'static str;

    /// The variant of the method, as written to the `convention` column (for example `paper`).
    fn variant(&self) -> &'static str;

    /// Attributes the model's output for `token_ids` to each span, in the order given.
    fn attribute(
        &self,
        token_ids: &[usize],
        spans: &[Span],
    ) -> Result<Vec<SpanAttribution>, AttributionError>;

    /// [`attribute`](Self::attribute) for several sentences; methods that can share work across
    /// sentences (larger matrix products) override it.
    fn attribute_batch(
        &self,
        sentences: &[SentenceSpans<'_>],
    ) -> Result<Vec<Vec<SpanAttribution>>, AttributionError> {
        sentences
            .iter()
            .map(|s| self.attribute(s.token_ids, s.spans))
            .collect()
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
}
