//! Dissenting subphrases (paper §4.3, Fig. 2; spec §4(b), §5.8): phrases that a linear n-gram
//! model scores strongly one way and that contain a subphrase it scores strongly the other way.

use std::collections::HashMap;

use crate::attribution::Span;

/// A strongly scored phrase and a subphrase of opposite sign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dissent {
    pub phrase: Span,
    pub phrase_score: f64,
    pub subphrase: Span,
    pub subphrase_score: f64,
}

/// A linear n-gram model's view of phrases: its coefficients by n-gram (normalised tokens joined
/// by spaces), its longest n-gram, and whether its features count occurrences or only presence.
#[derive(Debug, Clone, Copy)]
pub struct NgramScorer<'a> {
    pub coefficients: &'a HashMap<String, f64>,
    pub max_n: usize,
    pub counts: bool,
}

impl NgramScorer<'_> {
    /// The model's score of a phrase without the intercept: the sum of the coefficients of its
    /// n-grams of 1 to `max_n` words, each once (binary features) or once per occurrence (counts).
    pub fn score(&self, tokens: &[String]) -> f64 {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0.0;
        for n in 1..=self.max_n.min(tokens.len()) {
            for window in tokens.windows(n) {
                let gram = window.join(" ");
                if let Some(c) = self.coefficients.get(&gram)
                    && (self.counts || seen.insert(gram))
                {
                    total += c;
                }
            }
        }
        total
    }
}

/// Every contiguous phrase of at most `max_words` words whose score exceeds `threshold` in absolute
/// value, paired with each shorter contiguous subphrase whose score also exceeds it, with the
/// opposite sign.
pub fn dissenting_pairs(
    tokens: &[String],
    model: &NgramScorer<'_>,
    max_words: usize,
    threshold: f64,
) -> Vec<Dissent> {
    let t = tokens.len();
    let scores: HashMap<Span, f64> = (0..t)
        .flat_map(|start| {
            (start + 1..=(start + max_words).min(t)).map(move |end| Span::new(start, end))
        })
        .map(|span| (span, model.score(&tokens[span.range()])))
        .collect();
    let mut strong: Vec<(Span, f64)> = scores
        .iter()
        .filter(|(_, s)| s.abs() > threshold)
        .map(|(&span, &s)| (span, s))
        .collect();
    strong.sort_by_key(|(span, _)| *span);
    let mut pairs = Vec::new();
    for &(phrase, phrase_score) in &strong {
        for &(subphrase, subphrase_score) in &strong {
            let inside = phrase.start <= subphrase.start
                && subphrase.end <= phrase.end
                && subphrase != phrase;
            if inside && phrase_score.signum() != subphrase_score.signum() {
                pairs.push(Dissent {
                    phrase,
                    phrase_score,
                    subphrase,
                    subphrase_score,
                });
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn phrase_scores_sum_ngrams_as_the_features_count_them() {
        let coefficients: HashMap<String, f64> = [("not", -1.0), ("good", 2.0), ("not good", -3.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let model = |max_n, counts| NgramScorer {
            coefficients: &coefficients,
            max_n,
            counts,
        };
        assert_eq!(model(2, false).score(&words("not good")), -2.0);
        assert_eq!(model(1, false).score(&words("not good")), 1.0);
        // A repeated word counts once as a binary feature, twice as a count.
        assert_eq!(model(1, false).score(&words("good good")), 2.0);
        assert_eq!(model(1, true).score(&words("good good")), 4.0);
        // "not" twice (−2), "good" (2), "not good" (−3); "good not" has no coefficient.
        assert_eq!(model(2, true).score(&words("not good not")), -3.0);
    }

    /// "used to be my favorite": "favorite" strongly positive inside a strongly negative phrase.
    #[test]
    fn finds_the_papers_example() {
        let coefficients: HashMap<String, f64> = [
            ("used", -0.5),
            ("used to", -4.0),
            ("to be", -0.3),
            ("favorite", 2.0),
            ("my", 0.1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let model = NgramScorer {
            coefficients: &coefficients,
            max_n: 2,
            counts: false,
        };
        let pairs = dissenting_pairs(&words("used to be my favorite"), &model, 5, 1.5);
        // The whole phrase: −0.5 − 4.0 − 0.3 + 0.1 + 2.0 = −2.7; its positive subphrases beyond
        // 1.5: "favorite" 2.0, "my favorite" 2.1, "be my favorite" 2.1, "to be my favorite" 1.8.
        // The other strong phrases ("used to" −4.5, "used to be" −4.8, "used to be my" −4.7) hold
        // no positive subphrase beyond 1.5.
        let found: Vec<((usize, usize), (usize, usize))> = pairs
            .iter()
            .map(|p| {
                (
                    (p.phrase.start, p.phrase.end),
                    (p.subphrase.start, p.subphrase.end),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ((0, 5), (1, 5)),
                ((0, 5), (2, 5)),
                ((0, 5), (3, 5)),
                ((0, 5), (4, 5))
            ]
        );
        assert!((pairs[0].phrase_score + 2.7).abs() < 1e-12);
        assert!((pairs[0].subphrase_score - 1.8).abs() < 1e-12);
        // Phrases longer than `max_words` are not looked at.
        assert!(dissenting_pairs(&words("used to be my favorite"), &model, 4, 1.5).is_empty());
    }
}
