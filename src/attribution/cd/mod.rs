//! Contextual Decomposition (Murdoch, Liu & Yu, ICLR 2018) for one-layer LSTM classifiers.
//!
//! The recurrence is the authors' (`sent_util.CD`, spec §1.4 and `fixtures/cd_reference/README.md`):
//! each gate is linearised by the three-player Shapley split with the bias first, the output gate is
//! not decomposed, and `tanh(c)` is split between β and γ by the two-player Shapley value. The three
//! [`Convention`]s differ only in where the bias×bias product `σ(b_i)⊙tanh(b_g)` goes.

mod engine;
mod gru_kernel;
mod kernel;
mod lanes;
mod reference;
mod stacked;
mod stacked_reference;

pub use engine::recurrent_product_columns;
pub use lanes::recurrent_rows;
pub use reference::decompose_one_span;
pub use stacked::StackedDecomposition;
pub use stacked_reference::decompose_one_span_rnn;

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use super::corpus::cut_batches;
use super::{
    Attribution, AttributionError, LinearTarget, ROWS_PER_BATCH, SentenceSpans, Span, SpanScore,
    Target, check_sentences,
};
use crate::model::{ForwardTrace, LstmClassifier};
use crate::numeric::Real;
use engine::{RecurrentWeights, Workspace};

/// Where the bias×bias product of the input gate and candidate goes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// Always to γ, as the paper states (eq. 32; spec §5.1).
    #[default]
    Paper,
    /// To β at steps `start <= t < stop` (inclusive stop), as the authors' `sent_util.CD` does.
    Murdoch2018,
    /// To β at steps inside the span, as ACD's `cd_text` does (so the whole sentence gets γ = 0).
    Acd,
}

impl Convention {
    pub const ALL: [Convention; 3] = [Convention::Paper, Convention::Murdoch2018, Convention::Acd];

    pub fn name(self) -> &'static str {
        match self {
            Convention::Paper => "paper",
            Convention::Murdoch2018 => "murdoch2018",
            Convention::Acd => "acd",
        }
    }

    /// Whether the bias×bias product belongs to β at step `t` for `span`.
    pub fn bias_product_relevant(self, span: Span, t: usize) -> bool {
        match self {
            Convention::Paper => false,
            Convention::Murdoch2018 => span.start <= t && t + 1 < span.end,
            Convention::Acd => span.contains(t),
        }
    }
}

impl fmt::Display for Convention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Convention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Convention::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!("unknown CD convention `{s}`; expected one of paper, murdoch2018, acd")
            })
    }
}

/// CD of one span: β and γ read out by the output layer, per class, without the output bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    pub span: Span,
    /// W_out β_T, one value per class.
    pub rel: Vec<f64>,
    /// W_out γ_T, one value per class.
    pub irrel: Vec<f64>,
    /// max over classes of |rel + irrel − (logits − output bias)|.
    pub residual: f64,
    /// β_T itself (hidden-size), when asked for: a phrase embedding (paper §4.6).
    pub beta: Option<Vec<f32>>,
}

/// CD under one convention, as an [`Attribution`] method, computed by the batched engine.
#[derive(Debug)]
pub struct ContextualDecomposition<'m, R: Real> {
    model: &'m LstmClassifier<R>,
    convention: Convention,
    /// Whether the scores carry β_T as their embedding.
    keep_beta: bool,
    weights: RecurrentWeights<R>,
    /// State buffers of finished calls, one taken by each running call (one per worker).
    workspaces: Mutex<Vec<Workspace<R>>>,
}

impl<'m, R: Real> ContextualDecomposition<'m, R> {
    pub fn new(model: &'m LstmClassifier<R>, convention: Convention) -> Self {
        Self {
            model,
            convention,
            keep_beta: false,
            weights: RecurrentWeights::new(model),
            workspaces: Mutex::new(Vec::new()),
        }
    }

    /// The same method, its scores carrying β_T (hidden-size) as their embedding.
    pub fn with_beta(mut self) -> Self {
        self.keep_beta = true;
        self
    }

    /// CD of `spans` given the sentence's forward pass (from [`LstmClassifier::forward`]); spans
    /// must fit the sentence (see [`check_spans`](crate::attribution::check_spans)).
    pub fn decompose(&self, trace: &ForwardTrace<R>, spans: &[Span]) -> Vec<Decomposition> {
        self.decompose_batch(&[(trace, spans)])
            .pop()
            .expect("one result per sentence")
    }

    /// CD of several sentences at once: at each step the recurrent products of every live state
    /// of every sentence still running are one matrix product.
    pub fn decompose_batch(
        &self,
        sentences: &[(&ForwardTrace<R>, &[Span])],
    ) -> Vec<Vec<Decomposition>> {
        // A poisoned lock only means another call panicked; the buffers hold nothing it could
        // have left half-written that a call reads before writing.
        let take = || {
            self.workspaces
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let mut workspace = take().pop().unwrap_or_default();
        let results = engine::decompose_batch(
            self.model,
            &self.weights,
            &mut workspace,
            sentences,
            self.convention,
            self.keep_beta,
        );
        take().push(workspace);
        results
    }
}

/// CD splits the logits, so it attributes targets linear in them; its delta only measures the
/// f32 forward pass: the engine computes γ_h as h − β_h, so rel + irrel = W_out h_T up to rounding.
/// (The one-span reference, [`decompose_one_span`], propagates γ on its own: the property tests
/// check its completeness.)
impl<R: Real> Attribution for ContextualDecomposition<'_, R> {
    fn method(&self) -> &'static str {
        "cd"
    }

    fn variant(&self) -> Option<String> {
        Some(self.convention.name().to_string())
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
        let ids: Vec<&[usize]> = sentences.iter().map(|s| s.token_ids).collect();
        let traces = self.model.forward_batch(&ids)?;
        let bias = self.model.b_out();
        let mut results = Vec::with_capacity(sentences.len());
        for range in cut_batches(sentences.iter().map(|s| s.spans.len()), ROWS_PER_BATCH) {
            let batch: Vec<(&_, &[Span])> = traces[range.clone()]
                .iter()
                .zip(&sentences[range.clone()])
                .map(|(t, s)| (t, s.spans))
                .collect();
            for (trace, decompositions) in traces[range].iter().zip(self.decompose_batch(&batch)) {
                let linear = LinearTarget::new("cd", target, &trace.logits, bias)?;
                results.push(
                    decompositions
                        .into_iter()
                        .map(|d| SpanScore {
                            embedding: d.beta,
                            ..linear.score(d.span, d.rel, d.irrel)
                        })
                        .collect(),
                );
            }
        }
        Ok(results)
    }
}
