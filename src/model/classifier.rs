//! What the model-agnostic attribution methods (leave-one-out, gradient × input, integrated
//! gradients) need of a classifier: embeddings, batched forward passes from embedding rows, and
//! exact input gradients. Every architecture implements [`Classifier`], so those methods work for
//! each without knowing its cells, layers or directions.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};

use super::ModelError;
use crate::numeric::Real;

/// F, the output an input gradient is taken of, as a function of the logits (output bias
/// included): its value and its gradient with respect to the logits.
pub trait OutputFunction: Sync {
    fn value_and_gradient(&self, logits: &[f64]) -> (f64, Vec<f64>);
}

/// A recurrent sentence classifier seen from its inputs and outputs.
pub trait Classifier<R: Real>: Send + Sync {
    fn vocab_size(&self) -> usize;

    fn embedding_dim(&self) -> usize;

    fn num_classes(&self) -> usize;

    /// The embedding rows of a sentence, `(T, E)`.
    fn embed(&self, ids: &[usize]) -> Result<Array2<R>, ModelError>;

    /// Logits (output bias included, accumulated in f64) of sentences given as embedding rows;
    /// all sentences advance together, one matrix product per step.
    fn logits(&self, inputs: &[ArrayView2<'_, R>]) -> Vec<Vec<f64>>;

    /// For each request, the logits of the sentence and of one copy of it per span with that
    /// span's embedding rows set to zero. Copies share whatever the zeroed rows cannot change
    /// (for a forward recurrence, every state before the span).
    fn occluded_logits(&self, requests: &[Occlusion<'_, R>]) -> Vec<Occluded>;

    /// For each request, along the straight path x(α) = b + α (x − b) from a baseline `b` to the
    /// input `x`: at each point, the target's value F(x(α)) and, per token t, the directional
    /// derivative (x_t − b_t) · ∂F/∂x_t (x(α)), by exact backpropagation through time. All points of
    /// all requests advance together, forward and backward.
    fn path_gradients(&self, requests: &[PathRequest<'_, R>]) -> Vec<PathGradients>;
}

/// A sentence and the spans to zero, one copy each.
#[derive(Debug, Clone, Copy)]
pub struct Occlusion<'a, R> {
    /// Embedding rows `(T, E)`.
    pub input: ArrayView2<'a, R>,
    /// Non-empty token ranges inside the sentence.
    pub spans: &'a [Range<usize>],
}

/// The logits of a sentence and of its occluded copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Occluded {
    pub logits: Vec<f64>,
    /// One per span of the request, in its order.
    pub occluded: Vec<Vec<f64>>,
}

/// Points on the path from a baseline to an input, and the output whose gradient is taken.
#[derive(Clone, Copy)]
pub struct PathRequest<'a, R> {
    /// The input x, `(T, E)`.
    pub input: ArrayView2<'a, R>,
    /// The baseline b, `(T, E)`; `None` is the zero baseline.
    pub baseline: Option<ArrayView2<'a, R>>,
    /// The points α of x(α) = b + α (x − b).
    pub alphas: &'a [f64],
    /// F.
    pub output: &'a dyn OutputFunction,
}

/// What [`Classifier::path_gradients`] computes for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct PathGradients {
    /// F(x(α)) at each point.
    pub values: Vec<f64>,
    /// (x_t − b_t) · ∂F/∂x_t (x(α)), point by point, `alphas × T` row-major.
    pub directional: Vec<f64>,
    /// T.
    pub len: usize,
}

impl PathGradients {
    /// The directional derivatives at point `k`, one per token.
    pub fn at(&self, k: usize) -> &[f64] {
        &self.directional[k * self.len..(k + 1) * self.len]
    }
}
