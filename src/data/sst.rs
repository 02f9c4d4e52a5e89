//! Stanford Sentiment Treebank trees in PTB format: `(3 (2 It) (4 (2 's) (4 good)))`, one per line.

use std::io::BufRead;
use std::path::Path;

use super::InputError;

/// Sentiment polarity of an SST fine label: 0-1 negative, 2 neutral, 3-4 positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Polarity {
    Negative,
    Neutral,
    Positive,
}

impl Polarity {
    pub fn of(fine_label: u8) -> Self {
        match fine_label {
            0 | 1 => Polarity::Negative,
            2 => Polarity::Neutral,
            _ => Polarity::Positive,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Polarity::Negative => "negative",
            Polarity::Neutral => "neutral",
            Polarity::Positive => "positive",
        }
    }
}

/// One node of a tree; nodes are numbered in pre-order, so the root is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Half-open token span `[start, end)`.
    pub start: usize,
    pub end: usize,
    /// Fine sentiment label 0 (very negative) to 4 (very positive).
    pub label: u8,
    /// 0 at the root.
    pub depth: usize,
    pub parent: Option<usize>,
    /// Empty for leaves, two entries for internal nodes.
    pub children: Vec<usize>,
}

/// A parsed sentence tree: its tokens as written (PTB escapes kept) and its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstTree {
    /// 1-based line in the file.
    pub line: usize,
    pub tokens: Vec<String>,
    pub nodes: Vec<Node>,
}

impl SstTree {
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }
}

/// Reads every tree of an SST file (`train.txt`, `dev.txt`, `test.txt`).
///
/// Trees must be balanced and strictly binary with labels 0-4; leaves are split on ASCII space only,
/// since three training leaves contain U+00A0. Any defect is an error naming the file, the line and
/// the column.
pub fn read_sst_trees(path: &Path) -> Result<Vec<SstTree>, InputError> {
    sst_trees(path, super::open(path)?).collect()
}

/// The trees of SST text read from `reader` one line at a time; `path` names it in errors.
pub fn sst_trees<R: BufRead>(
    path: &Path,
    reader: R,
) -> impl Iterator<Item = Result<SstTree, InputError>> + use<R> {
    let owned = path.to_path_buf();
    super::TextLines::new(path, reader, "tree").map(move |line| {
        let (line, text) = line?;
        let tree = parse_tree(&text, line).map_err(|(column, message)| {
            InputError::invalid(&owned, line, "tree", format!("column {column}: {message}"))
        })?;
        let covered: usize = tree.nodes.iter().map(|n| n.end - n.start).sum();
        if covered > MAX_CONSTITUENT_TOKENS {
            return Err(InputError::invalid(
                &owned,
                line,
                "tree",
                format!(
                    "its {} constituents cover {covered} tokens in all, over the limit of {MAX_CONSTITUENT_TOKENS} (each constituent's phrase is written out): a tree of {} tokens nested {} deep",
                    tree.nodes.len(),
                    tree.tokens.len(),
                    tree.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
                ),
            ));
        }
        Ok(tree)
    })
}

/// The most tokens the constituents of one tree may cover together: over 10,000 times the most
/// an SST tree covers (835). A balanced tree of 100,000 tokens covers 1.8 million; one of as many
/// tokens branching one way, 5 billion, more than the constituents table could hold in memory.
pub const MAX_CONSTITUENT_TOKENS: usize = 10_000_000;

/// Parses one line; errors carry the 1-based column.
fn parse_tree(text: &str, line: usize) -> Result<SstTree, (usize, String)> {
    let mut parser = Parser {
        text,
        pos: 0,
        tokens: Vec::new(),
        nodes: Vec::new(),
    };
    parser.tree()?;
    parser.skip_spaces();
    if parser.pos < parser.text.len() {
        return Err((parser.pos + 1, "text after the end of the tree".into()));
    }
    Ok(SstTree {
        line,
        tokens: parser.tokens,
        nodes: parser.nodes,
    })
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    tokens: Vec<String>,
    nodes: Vec<Node>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), (usize, String)> {
        self.skip_spaces();
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err((
                self.pos + 1,
                format!("expected `{}`, found `{}`", byte as char, b as char),
            )),
            None => Err((
                self.pos + 1,
                format!("expected `{}`, found the end of the line", byte as char),
            )),
        }
    }

    /// `(label word)` or `(label node node)`, nested to any depth: the open nodes are kept on a
    /// stack of their own, so a tree of 100,000 tokens branching one way does not overflow the
    /// call stack.
    fn tree(&mut self) -> Result<(), (usize, String)> {
        let mut open: Vec<usize> = Vec::new();
        loop {
            self.expect(b'(')?;
            let label_at = self.pos + 1;
            let label = match self.text.as_bytes().get(self.pos..self.pos + 2) {
                Some([digit @ b'0'..=b'4', b' ']) => digit - b'0',
                _ => return Err((label_at, "expected a label 0-4 followed by a space".into())),
            };
            self.pos += 2;
            let id = self.nodes.len();
            let parent = open.last().copied();
            self.nodes.push(Node {
                start: self.tokens.len(),
                end: self.tokens.len(),
                label,
                depth: open.len(),
                parent,
                children: Vec::new(),
            });
            if let Some(parent) = parent {
                self.nodes[parent].children.push(id);
            }
            self.skip_spaces();
            if self.peek() == Some(b'(') {
                open.push(id);
                continue;
            }
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b')' || b == b'(' || b == b' ' {
                    break;
                }
                self.pos += 1;
            }
            if self.pos == start {
                return Err((start + 1, "expected a word".into()));
            }
            self.tokens.push(self.text[start..self.pos].to_string());
            self.expect(b')')?;
            self.nodes[id].end = self.tokens.len();
            // Close every open node that now has both children.
            while let Some(&top) = open.last() {
                if self.nodes[top].children.len() < 2 {
                    break;
                }
                self.skip_spaces();
                if self.peek() == Some(b'(') {
                    return Err((self.pos + 1, "a node with more than two children".into()));
                }
                self.expect(b')')?;
                self.nodes[top].end = self.tokens.len();
                open.pop();
            }
            if open.is_empty() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spans_labels_and_structure() {
        let tree = parse_tree("(3 (2 It) (4 (2 's) (4 good)))", 1).unwrap();
        assert_eq!(tree.tokens, vec!["It", "'s", "good"]);
        assert_eq!(tree.nodes.len(), 5);
        let spans: Vec<(usize, usize, u8, usize)> = tree
            .nodes
            .iter()
            .map(|n| (n.start, n.end, n.label, n.depth))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 3, 3, 0),
                (0, 1, 2, 1),
                (1, 3, 4, 1),
                (1, 2, 2, 2),
                (2, 3, 4, 2)
            ]
        );
        assert_eq!(tree.nodes[2].children, vec![3, 4]);
        assert_eq!(tree.nodes[4].parent, Some(2));
        assert_eq!(Polarity::of(tree.root().label), Polarity::Positive);
    }

    #[test]
    fn keeps_no_break_spaces_inside_words() {
        let tree = parse_tree("(2 (2 8\u{a0}1\\/2) (2 weeks))", 1).unwrap();
        assert_eq!(tree.tokens, vec!["8\u{a0}1\\/2", "weeks"]);
    }

    #[test]
    fn defects_name_the_column() {
        let cases = [
            ("(3 (2 It) (4 good)", "column 19: expected `)`"),
            ("(5 (2 It) (4 good))", "column 2: expected a label 0-4"),
            (
                "(3 (2 It) (4 good) (2 .))",
                "column 20: a node with more than two children",
            ),
            ("(3 (2 It) (4 good)))", "column 20: text after the end"),
            ("(3 (2 ) (4 good))", "column 7: expected a word"),
        ];
        for (text, expected) in cases {
            let (column, message) = parse_tree(text, 1).unwrap_err();
            let got = format!("column {column}: {message}");
            assert!(got.starts_with(expected), "{text}: {got}");
        }
    }
}
