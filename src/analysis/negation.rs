//! Negation phrases in SST trees (paper §4.5; spec §4(d) and §5.10).
//!
//! A node is a negation when it has fewer than `max_words` words, its first child has a negation
//! word among its first two words, and its second child (the negated phrase) is non-neutral. As the
//! paper does for its noisy labels, a node whose own label is non-neutral also counts when the second
//! child is neutral but contains a non-neutral phrase.

use std::collections::HashSet;

use crate::data::{Polarity, SstTree};
use crate::model::normalize_token;

/// The paper's negation words (appendix of Murdoch et al. 2018).
pub const NEGATION_WORDS: [&str; 11] = [
    "not", "n't", "lacks", "nobody", "nor", "nothing", "neither", "never", "none", "nowhere",
    "remotely",
];

/// The paper's length limit: phrases of fewer than 10 words.
pub const MAX_WORDS: usize = 10;

/// What the negation does to the sentiment of the negated phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NegationKind {
    /// Negating a negative phrase ("is n't a total failure").
    Positive,
    /// Negating a positive phrase ("is n't a great movie").
    Negative,
}

impl NegationKind {
    pub fn name(self) -> &'static str {
        match self {
            NegationKind::Positive => "positive",
            NegationKind::Negative => "negative",
        }
    }
}

/// A negation constituent: node indices into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negation {
    /// The whole phrase.
    pub phrase: usize,
    /// The first child, holding the negation word.
    pub negation: usize,
    /// The second child, the negated phrase.
    pub negated: usize,
    /// The negation word as written in the tree.
    pub word: String,
    pub kind: NegationKind,
}

/// Rule options: the negation words (matched after lower-casing) and the length limit.
#[derive(Debug, Clone)]
pub struct NegationRule {
    words: HashSet<String>,
    max_words: usize,
}

impl Default for NegationRule {
    fn default() -> Self {
        Self::new(NEGATION_WORDS.iter().map(|w| w.to_string()), MAX_WORDS)
    }
}

impl NegationRule {
    pub fn new(words: impl IntoIterator<Item = String>, max_words: usize) -> Self {
        Self {
            words: words.into_iter().map(|w| normalize_token(&w)).collect(),
            max_words,
        }
    }

    /// Every negation node of a tree, in pre-order.
    pub fn find(&self, tree: &SstTree) -> Vec<Negation> {
        tree.nodes
            .iter()
            .enumerate()
            .filter_map(|(id, node)| {
                let [first, second] = node.children.as_slice() else {
                    return None;
                };
                if node.end - node.start >= self.max_words {
                    return None;
                }
                let negation_child = &tree.nodes[*first];
                let word = tree.tokens
                    [negation_child.start..negation_child.end.min(negation_child.start + 2)]
                    .iter()
                    .find(|w| self.words.contains(&normalize_token(w)))?;
                let negated_polarity = Polarity::of(tree.nodes[*second].label);
                let kind = match (negated_polarity, Polarity::of(node.label)) {
                    (Polarity::Negative, _) => NegationKind::Positive,
                    (Polarity::Positive, _) => NegationKind::Negative,
                    // The negated child's label is neutral: the whole phrase says which way it goes.
                    (Polarity::Neutral, Polarity::Positive)
                        if contains_non_neutral(tree, *second) =>
                    {
                        NegationKind::Positive
                    }
                    (Polarity::Neutral, Polarity::Negative)
                        if contains_non_neutral(tree, *second) =>
                    {
                        NegationKind::Negative
                    }
                    _ => return None,
                };
                Some(Negation {
                    phrase: id,
                    negation: *first,
                    negated: *second,
                    word: word.clone(),
                    kind,
                })
            })
            .collect()
    }
}

/// Whether any node below `id` (inclusive) has a non-neutral label.
fn contains_non_neutral(tree: &SstTree, id: usize) -> bool {
    let node = &tree.nodes[id];
    Polarity::of(node.label) != Polarity::Neutral
        || node.children.iter().any(|&c| contains_non_neutral(tree, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SstTree;

    fn tree(text: &str) -> SstTree {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, text).unwrap();
        crate::data::read_sst_trees(&path).unwrap().remove(0)
    }

    #[test]
    fn finds_positive_and_negative_negations() {
        // "is n't a total failure": negating a negative phrase.
        let t = tree("(3 (2 (2 is) (2 n't)) (1 (2 a) (1 (2 total) (0 failure))))");
        let found = NegationRule::default().find(&t);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].phrase, found[0].negation, found[0].negated),
            (0, 1, 4)
        );
        assert_eq!(
            (found[0].word.as_str(), found[0].kind),
            ("n't", NegationKind::Positive)
        );

        let t = tree("(1 (2 Not) (3 (2 a) (4 great)))");
        let found = NegationRule::default().find(&t);
        assert_eq!(found[0].kind, NegationKind::Negative);
    }

    #[test]
    fn applies_the_word_position_length_and_label_conditions() {
        // Negation word third in the first child: not counted.
        let t = tree("(1 (2 (2 it) (2 (2 is) (2 not))) (3 great))");
        assert!(NegationRule::default().find(&t).is_empty());
        // Neutral negated phrase with no non-neutral part: not counted.
        let t = tree("(1 (2 not) (2 (2 a) (2 movie)))");
        assert!(NegationRule::default().find(&t).is_empty());
        // Neutral negated child containing a non-neutral phrase, non-neutral whole: counted by the whole.
        let t = tree("(1 (2 not) (2 (2 a) (3 success)))");
        assert_eq!(
            NegationRule::default().find(&t)[0].kind,
            NegationKind::Negative
        );
        // Ten words or more: not counted.
        let long = "(1 (2 not) (3 (2 a) (3 (2 b) (3 (2 c) (3 (2 d) (3 (2 e) (3 (2 f) (3 (2 g) (3 (2 h) (3 i))))))))))";
        assert!(NegationRule::default().find(&tree(long)).is_empty());
        assert_eq!(
            NegationRule::new(["not".to_string()], 11)
                .find(&tree(long))
                .len(),
            1
        );
    }
}
