//! High-level compositionality (paper §4.4, Fig. 3; spec §4(c), §5.9): SST constituents whose
//! polarity is opposite to their sentence's and whose length is between one and two thirds of it.

use crate::attribution::Span;
use crate::data::{Polarity, SstTree};

/// A constituent that dissents from its sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opposing {
    /// Node index in the tree (pre-order).
    pub node: usize,
    pub span: Span,
    /// The constituent's polarity (fine label 0-1 negative, 3-4 positive).
    pub polarity: Polarity,
}

/// The constituents of a sentence with a non-neutral root whose polarity is opposite to the
/// root's and whose length L satisfies T ≤ 3L ≤ 2T (T the sentence's length; both bounds
/// inclusive, in words).
pub fn opposing_constituents(tree: &SstTree) -> Vec<Opposing> {
    let sentence = Polarity::of(tree.root().label);
    if sentence == Polarity::Neutral {
        return Vec::new();
    }
    let t = tree.tokens.len();
    tree.nodes
        .iter()
        .enumerate()
        .filter_map(|(node, n)| {
            let polarity = Polarity::of(n.label);
            let len = n.end - n.start;
            let opposite = polarity != Polarity::Neutral && polarity != sentence;
            (opposite && t <= 3 * len && 3 * len <= 2 * t).then_some(Opposing {
                node,
                span: Span::new(n.start, n.end),
                polarity,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::read_sst_trees;

    fn tree(ptb: &str) -> SstTree {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, ptb).unwrap();
        read_sst_trees(&path).unwrap().remove(0)
    }

    #[test]
    fn only_opposite_constituents_of_a_third_to_two_thirds() {
        // A positive sentence of 6 words: "((it (was (bad fun))) (and great))"; negative nodes of
        // 2 to 4 words qualify.
        let t = tree("(3 (1 (2 it) (1 (2 was) (1 (0 bad) (2 fun)))) (4 (2 and) (4 great)))\n");
        let found: Vec<(usize, usize)> = opposing_constituents(&t)
            .iter()
            .map(|o| (o.span.start, o.span.end))
            .collect();
        // [0, 4) "it was bad fun" (4 words: 3·4 = 12 = 2·6, in), [1, 4) (3 words, in),
        // [2, 4) (2 words, 3·2 = 6 = T, in); "bad" alone (1 word) is too short.
        assert_eq!(found, [(0, 4), (1, 4), (2, 4)]);
        assert!(
            opposing_constituents(&t)
                .iter()
                .all(|o| o.polarity == Polarity::Negative)
        );
        // A neutral sentence has none.
        assert!(opposing_constituents(&tree("(2 (1 bad) (4 great))\n")).is_empty());
    }
}
