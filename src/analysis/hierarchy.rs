//! Hierarchical explanations (ACD, Singh, Murdoch & Yu, ICLR 2019), the agglomeration for text of
//! `agg_1d.py` (csinva/hierarchical-dnn-interpretations):
//!
//! - the candidates are the words, scored by their own CD score;
//! - repeatedly, the candidates whose |score| reaches a percentile of the remaining ones are
//!   selected; the selected words form contiguous components; each component is scored by
//!   CD(component), and the unselected word just left and just right of it become candidates
//!   scored by CD(component ∪ word) − CD(component) (a word between two components takes the
//!   right one's, as `agg_1d` assigns them left to right); the other candidates keep their scores;
//! - until every word is selected, so the last level is the whole sentence.
//!
//! Where this departs from `agg_1d`: it runs until the sentence is one component instead of a
//! fixed number of iterations, and every level records the partition it makes (components and
//! the words outside them), each span with its CD score; `agg_1d` records components only, and
//! `collapse_tree` then drops levels that add nothing. The threshold is `agg_1d`'s:
//! numpy's `nanpercentile` (linear interpolation) of the remaining candidates, with its fixed
//! percentiles once five or fewer remain.

use crate::attribution::Span;

/// One level of a hierarchy: a partition of the sentence into contiguous spans.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Ordered spans covering the sentence; `true` for the components selected so far.
    pub spans: Vec<(Span, bool)>,
}

/// The levels of a sentence of `len` words, from the words (level 0) to the whole sentence, given
/// the CD score of any span; `percentile` as `agg_1d`'s `percentile_include` (90 in ACD's uses),
/// `absolute` to select by |score| (its default).
pub fn agglomerate(
    len: usize,
    score: impl Fn(Span) -> f64,
    percentile: f64,
    absolute: bool,
) -> Vec<Level> {
    let words: Vec<Span> = (0..len).map(|t| Span::new(t, t + 1)).collect();
    let mut levels = vec![Level {
        spans: words.iter().map(|&w| (w, false)).collect(),
    }];
    if len == 0 {
        return levels;
    }
    let mut candidates: Vec<f64> = words.iter().map(|&w| score(w)).collect();
    let mut selected = vec![false; len];
    loop {
        let chosen = threshold(&candidates, &selected, percentile, absolute);
        for t in chosen {
            selected[t] = true;
        }
        let components = components(&selected);
        for component in &components {
            let whole = score(*component);
            for neighbour in [component.start.checked_sub(1), Some(component.end)] {
                if let Some(x) = neighbour.filter(|&x| x < len && !selected[x]) {
                    let merged = Span::new(component.start.min(x), component.end.max(x + 1));
                    candidates[x] = score(merged) - whole;
                }
            }
        }
        levels.push(Level {
            spans: partition(len, &components),
        });
        if selected.iter().all(|&s| s) {
            return levels;
        }
    }
}

/// The unselected candidates whose (absolute) score reaches `agg_1d`'s threshold.
fn threshold(candidates: &[f64], selected: &[bool], percentile: f64, absolute: bool) -> Vec<usize> {
    let value = |t: usize| {
        if absolute {
            candidates[t].abs()
        } else {
            candidates[t]
        }
    };
    let remaining: Vec<usize> = (0..candidates.len()).filter(|&t| !selected[t]).collect();
    let percentile = match remaining.len() {
        5 | 3 => 59.0,
        4 | 2 => 49.0,
        1 => 0.0,
        _ => percentile,
    };
    let mut values: Vec<f64> = remaining.iter().map(|&t| value(t)).collect();
    values.sort_unstable_by(f64::total_cmp);
    let cut = crate::analysis::stats::quantile_sorted(&values, percentile / 100.0);
    remaining.into_iter().filter(|&t| value(t) >= cut).collect()
}

/// The maximal runs of selected words.
fn components(selected: &[bool]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut start = None;
    for (t, &s) in selected.iter().chain([&false]).enumerate() {
        match (s, start) {
            (true, None) => start = Some(t),
            (false, Some(a)) => {
                spans.push(Span::new(a, t));
                start = None;
            }
            _ => {}
        }
    }
    spans
}

/// The components and every word outside them, in order.
fn partition(len: usize, components: &[Span]) -> Vec<(Span, bool)> {
    let mut spans = Vec::new();
    let mut t = 0;
    for component in components {
        while t < component.start {
            spans.push((Span::new(t, t + 1), false));
            t += 1;
        }
        spans.push((*component, true));
        t = component.end;
    }
    while t < len {
        spans.push((Span::new(t, t + 1), false));
        t += 1;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_partition(level: &Level, len: usize) -> bool {
        let mut t = 0;
        for (span, _) in &level.spans {
            if span.start != t || span.end <= span.start {
                return false;
            }
            t = span.end;
        }
        t == len
    }

    /// An additive score with one strong word: it is chosen first, and its component grows by the
    /// neighbour whose addition adds the most, until the sentence is one span.
    #[test]
    fn grows_from_the_strongest_word_to_the_sentence() {
        let words = [0.1, -0.2, 3.0, 0.5, -0.05];
        let score = |s: Span| words[s.range()].iter().sum::<f64>();
        let levels = agglomerate(5, score, 90.0, true);
        for level in &levels {
            assert!(is_partition(level, 5), "{level:?}");
        }
        assert_eq!(levels[0].spans.len(), 5);
        // Level 1: with 5 candidates the threshold is the 59th percentile of |score|:
        // sorted 0.05 0.1 0.2 0.5 3.0, position 2.36 → 0.2 + 0.36 · 0.3 = 0.308: words 2 and 3.
        assert_eq!(
            levels[1].spans,
            [
                (Span::new(0, 1), false),
                (Span::new(1, 2), false),
                (Span::new(2, 4), true),
                (Span::new(4, 5), false)
            ]
        );
        assert_eq!(levels.last().unwrap().spans, [(Span::new(0, 5), true)]);
    }

    #[test]
    fn agg_1d_thresholds_and_runs() {
        assert_eq!(
            components(&[true, true, false, true]),
            [Span::new(0, 2), Span::new(3, 4)]
        );
        assert_eq!(
            partition(4, &[Span::new(1, 3)]),
            [
                (Span::new(0, 1), false),
                (Span::new(1, 3), true),
                (Span::new(3, 4), false)
            ]
        );
        // 10 candidates at the 90th percentile: the top one (and ties).
        let candidates: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(threshold(&candidates, &[false; 10], 90.0, true), [9]);
        // One left: always chosen.
        let mut selected = [true; 10];
        selected[3] = false;
        assert_eq!(threshold(&candidates, &selected, 90.0, true), [3]);
        // By signed score, the most positive wins over a larger negative.
        assert_eq!(threshold(&[-5.0, 1.0, 0.5], &[false; 3], 90.0, false), [1]);
    }
}
