//! Which spans share a β trajectory, step by step.
//!
//! Two spans have identical β states up to step t exactly when, at every step so far, they agreed on
//! whether x_t is in the span and whether the bias×bias product goes to β. So all spans start in one
//! *lane* whose state is exactly zero (a zero summand has zero Shapley value), and at each step every
//! lane splits by that pair of flags. A zero lane whose spans have not started stays zero at no
//! cost; a span joins the computation at its start; spans with the same start share one state until
//! they disagree. Each lane with a state costs one row of the step's recurrent matrix product.
//!
//! A lane whose every step so far was relevant, bias×bias products included (a prefix span under
//! `acd`, or under `murdoch2018` before its last token), has γ = 0 exactly and β equal to the forward
//! state. It is copied rather than computed: the authors' code keeps that γ exactly zero, and
//! recomputing it as a small difference of large numbers would let f32 rounding grow through the
//! recurrence (measured: 1e-4 on a trained SST model for a 30-token sentence).

use super::Convention;
use crate::attribution::Span;

/// What a step does to the spans of one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StepRole {
    /// x_t is part of the span, so W x_t is relevant.
    pub in_span: bool,
    /// σ(b_i)⊙tanh(b_g) goes to β.
    pub bias_relevant: bool,
}

impl StepRole {
    fn of(convention: Convention, span: Span, t: usize) -> Self {
        Self {
            in_span: span.contains(t),
            bias_relevant: convention.bias_product_relevant(span, t),
        }
    }
}

/// One new state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StateUpdate {
    /// β equals the forward state and γ = 0 exactly.
    Whole,
    /// The CD recurrence under `role` from a previous state.
    Recur {
        /// Row of the previous step's states (and of its recurrent products); `None` for β = 0.
        source: Option<usize>,
        role: StepRole,
    },
}

impl StepRole {
    /// The number of distinct roles.
    const COUNT: usize = 4;

    fn index(self) -> usize {
        2 * usize::from(self.in_span) + usize::from(self.bias_relevant)
    }

    fn from_index(index: usize) -> Self {
        Self {
            in_span: index >= 2,
            bias_relevant: index % 2 == 1,
        }
    }

    /// Everything at this step goes to β.
    fn keeps_whole(self) -> bool {
        self.in_span && self.bias_relevant
    }
}

#[derive(Debug)]
struct Lane {
    /// Indices into the caller's span list.
    spans: Vec<usize>,
    /// Row of this lane's state in the current step's state matrix; `None` while β is exactly zero.
    state: Option<usize>,
    /// γ is exactly zero: every step so far gave everything to β.
    whole: bool,
}

/// Splits lanes step by step for a fixed set of spans under one convention.
#[derive(Debug)]
pub(super) struct LanePlanner<'a> {
    spans: &'a [Span],
    convention: Convention,
    lanes: Vec<Lane>,
    /// The previous step's lane list, kept for its allocation.
    spare_lanes: Vec<Lane>,
    updates: Vec<StateUpdate>,
}

impl<'a> LanePlanner<'a> {
    pub fn new(spans: &'a [Span], convention: Convention) -> Self {
        Self {
            spans,
            convention,
            // A sentence may have no spans to score (a stage's phrases), and then no lane.
            lanes: if spans.is_empty() {
                Vec::new()
            } else {
                vec![Lane {
                    spans: (0..spans.len()).collect(),
                    state: None,
                    whole: true,
                }]
            },
            spare_lanes: Vec::new(),
            updates: Vec::new(),
        }
    }

    /// Plans step `t` (steps must be planned in order from 0) and returns the states to compute;
    /// the i-th update becomes row i of this step's state matrix.
    pub fn plan_step(&mut self, t: usize) -> &[StateUpdate] {
        self.updates.clear();
        let (convention, spans) = (self.convention, self.spans);
        let role_of = |i: usize| StepRole::of(convention, spans[i], t);
        let mut previous =
            std::mem::replace(&mut self.lanes, std::mem::take(&mut self.spare_lanes));
        for mut lane in previous.drain(..) {
            let from = (lane.state, lane.whole);
            let first = role_of(lane.spans[0]);
            // The spans sharing the first span's role keep the lane's list (in the common case,
            // all of them: the lane does not split); the others move to one list per role.
            let mut moved: [Vec<usize>; StepRole::COUNT] = Default::default();
            lane.spans.retain(|&i| {
                let role = role_of(i);
                if role != first {
                    moved[role.index()].push(i);
                }
                role == first
            });
            self.advance(from, first, lane.spans);
            for (index, members) in moved.into_iter().enumerate() {
                if !members.is_empty() {
                    self.advance(from, StepRole::from_index(index), members);
                }
            }
        }
        self.spare_lanes = previous;
        &self.updates
    }

    /// Moves the spans `members` of a lane with state row `source` (and γ = 0 if `was_whole`)
    /// through a step under `role`.
    fn advance(
        &mut self,
        (source, was_whole): (Option<usize>, bool),
        role: StepRole,
        members: Vec<usize>,
    ) {
        let whole = was_whole && role.keeps_whole();
        let state = if source.is_none() && !role.in_span {
            None
        } else {
            self.updates.push(if whole {
                StateUpdate::Whole
            } else {
                StateUpdate::Recur { source, role }
            });
            Some(self.updates.len() - 1)
        };
        self.lanes.push(Lane {
            spans: members,
            state,
            whole,
        });
    }

    /// The updates of the step planned last.
    pub fn updates(&self) -> &[StateUpdate] {
        &self.updates
    }

    /// After the last step: for every lane, its state row and the spans it holds.
    pub fn final_lanes(&self) -> impl Iterator<Item = (Option<usize>, &[usize])> {
        self.lanes
            .iter()
            .map(|lane| (lane.state, lane.spans.as_slice()))
    }
}

/// The rows of the recurrent product `V β` that the batched engine computes at steps 1 to `len - 1`
/// for these spans of a sentence of `len` tokens (one per state of the previous step): the
/// necessary work, `3H²` multiply-adds per row.
pub fn recurrent_rows(spans: &[Span], len: usize, convention: Convention) -> Vec<usize> {
    let mut planner = LanePlanner::new(spans, convention);
    (0..len.saturating_sub(1))
        .map(|t| planner.plan_step(t).len())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::SpanSet;

    /// Closed forms: with sharing, all spans of a length-T sentence need Σ_s Σ_(t>s) (t - s) rows
    /// (about T³/6, half of the T³/3 without sharing); unigrams need T(T-1)/2. Under `murdoch2018`
    /// the span whose inclusive stop is t leaves its trunk one step early (its bias×bias product at t
    /// goes to γ while the longer spans' goes to β), which costs T(T-1)/2 more rows.
    #[test]
    fn recurrent_rows_match_closed_forms() {
        for len in [1usize, 2, 7, 20, 40] {
            let shared: usize = (0..len)
                .map(|s| (s + 1..len).map(|t| t - s).sum::<usize>())
                .sum();
            for convention in Convention::ALL {
                let early_splits = match convention {
                    Convention::Murdoch2018 => len * (len - 1) / 2,
                    Convention::Paper | Convention::Acd => 0,
                };
                let total = |set: SpanSet| {
                    recurrent_rows(&set.spans(len), len, convention)
                        .iter()
                        .sum::<usize>()
                };
                assert_eq!(total(SpanSet::All), shared + early_splits);
                assert_eq!(total(SpanSet::Unigrams), len * (len - 1) / 2);
            }
        }
    }

    #[test]
    fn every_span_ends_in_exactly_one_nonzero_lane() {
        let spans = SpanSet::All.spans(9);
        for convention in Convention::ALL {
            let mut planner = LanePlanner::new(&spans, convention);
            for t in 0..9 {
                planner.plan_step(t);
            }
            let mut seen: Vec<usize> = Vec::new();
            for (state, members) in planner.final_lanes() {
                assert!(state.is_some());
                seen.extend(members);
            }
            seen.sort();
            assert_eq!(seen, (0..spans.len()).collect::<Vec<_>>());
        }
    }
}
