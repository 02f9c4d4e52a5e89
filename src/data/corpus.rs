//! A dataset read into memory in one shape whatever its file format: sentences with ids and
//! labels, plus the parse trees when the format has them.

use std::path::{Path, PathBuf};

use std::fs::File;
use std::io::BufReader;

use super::yelp::{YelpOptions, YelpReviews};
use super::{InputError, Polarity, SstTree, TokenJsonl};

/// One sentence (or review) of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// Unique within the corpus: `<split>-<line>` for SST and Yelp, the given id for JSONL.
    pub id: String,
    /// 1-based line in the source file, for error messages.
    pub line: usize,
    pub tokens: Vec<String>,
    /// Binary class: 0 negative, 1 positive; `None` for neutral SST roots and unlabelled JSONL.
    pub label: Option<i64>,
    /// SST fine label 0-4 of the root.
    pub fine_label: Option<u8>,
}

/// Which reader produced a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    SstTrees,
    YelpPolarity(YelpOptions),
    TokenJsonl,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::SstTrees => "sst_trees",
            Format::YelpPolarity(_) => "yelp_polarity",
            Format::TokenJsonl => "token_jsonl",
        }
    }
}

/// A dataset in memory.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The input's name in the pipeline; the `dataset` column of output tables.
    pub name: String,
    pub path: PathBuf,
    pub split: Option<String>,
    pub sentences: Vec<Sentence>,
    /// For SST, the tree of each sentence (same order).
    pub trees: Option<Vec<SstTree>>,
}

impl Corpus {
    /// Reads a whole file; ids are prefixed by `split` when one is given.
    pub fn read(
        name: &str,
        path: &Path,
        format: Format,
        split: Option<&str>,
    ) -> Result<Self, InputError> {
        let mut corpus = Self::empty(name, path, split);
        let mut trees = Vec::new();
        for read in sentences(path, format, split)? {
            let (sentence, tree) = read?;
            corpus.sentences.push(sentence);
            trees.extend(tree);
        }
        if format == Format::SstTrees {
            corpus.trees = Some(trees);
        }
        Ok(corpus)
    }

    /// A corpus of no sentences yet, to be filled from [`sentences`].
    pub fn empty(name: &str, path: &Path, split: Option<&str>) -> Self {
        Self {
            name: name.to_string(),
            path: path.to_path_buf(),
            split: split.map(str::to_string),
            sentences: Vec::new(),
            trees: None,
        }
    }

    /// Adds a sentence read by [`sentences`], with its tree when it has one.
    pub fn push(&mut self, sentence: Sentence, tree: Option<SstTree>) {
        self.sentences.push(sentence);
        if let Some(tree) = tree {
            self.trees.get_or_insert_with(Vec::new).push(tree);
        }
    }
}

/// The sentences of a file one at a time, as [`Corpus::read`] keeps them, with the parse tree
/// when the format has one: for streaming a corpus larger than memory.
pub fn sentences(
    path: &Path,
    format: Format,
    split: Option<&str>,
) -> Result<Sentences, InputError> {
    let file = super::open(path)?;
    let reader = match format {
        Format::SstTrees => Reader::Sst(Box::new(super::sst_trees(path, file))),
        Format::YelpPolarity(options) => Reader::Yelp(YelpReviews::new(path, file, options)),
        Format::TokenJsonl => Reader::Jsonl(TokenJsonl::new(path, file)),
    };
    Ok(Sentences {
        reader,
        split: split.map(str::to_string),
    })
}

/// The iterator of [`sentences`].
pub struct Sentences {
    reader: Reader,
    split: Option<String>,
}

enum Reader {
    Sst(Box<dyn Iterator<Item = Result<SstTree, InputError>>>),
    Yelp(YelpReviews<BufReader<File>>),
    Jsonl(TokenJsonl<BufReader<File>>),
}

impl Sentences {
    fn id(&self, line: usize) -> String {
        match &self.split {
            Some(split) => format!("{split}-{line}"),
            None => line.to_string(),
        }
    }
}

impl Iterator for Sentences {
    type Item = Result<(Sentence, Option<SstTree>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let read = match &mut self.reader {
            Reader::Sst(trees) => trees.next()?.map(|tree| {
                let fine = tree.root().label;
                let sentence = Sentence {
                    id: self.id(tree.line),
                    line: tree.line,
                    tokens: tree.tokens.clone(),
                    label: binary_label(fine),
                    fine_label: Some(fine),
                };
                (sentence, Some(tree))
            }),
            Reader::Yelp(reviews) => reviews.next()?.map(|review| {
                let sentence = Sentence {
                    id: self.id(review.line),
                    line: review.line,
                    tokens: review.tokens,
                    label: Some(review.label),
                    fine_label: None,
                };
                (sentence, None)
            }),
            Reader::Jsonl(lines) => lines.next()?.map(|s| {
                let sentence = Sentence {
                    id: s.id,
                    line: s.line,
                    tokens: s.tokens,
                    label: s.label,
                    fine_label: None,
                };
                (sentence, None)
            }),
        };
        Some(read)
    }
}

impl Corpus {
    /// Drops the sentences whose tokens also occur in `other`; returns how many were dropped.
    pub fn exclude(&mut self, other: &Corpus) -> usize {
        let seen: std::collections::HashSet<&[String]> = other
            .sentences
            .iter()
            .map(|s| s.tokens.as_slice())
            .collect();
        let keep: Vec<bool> = self
            .sentences
            .iter()
            .map(|s| !seen.contains(s.tokens.as_slice()))
            .collect();
        self.retain(&keep)
    }

    /// Keeps every `every`-th sentence starting at `offset`.
    pub fn sample(&mut self, every: usize, offset: usize) {
        let keep: Vec<bool> = (0..self.sentences.len())
            .map(|k| sampled(k, every, offset))
            .collect();
        self.retain(&keep);
    }

    /// A copy holding only the sentences `keep` accepts (a shard's), in their order.
    pub fn subset(&self, keep: impl Fn(&Sentence) -> bool) -> Corpus {
        let flags: Vec<bool> = self.sentences.iter().map(keep).collect();
        let mut subset = self.clone();
        subset.retain(&flags);
        subset
    }

    fn retain(&mut self, keep: &[bool]) -> usize {
        let before = self.sentences.len();
        let mut flags = keep.iter();
        self.sentences
            .retain(|_| *flags.next().expect("one flag per sentence"));
        if let Some(trees) = &mut self.trees {
            let mut flags = keep.iter();
            trees.retain(|_| *flags.next().expect("one flag per tree"));
        }
        before - self.sentences.len()
    }
}

/// Whether `sample: {every, offset}` keeps the sentence at `position` (counted after
/// `exclude_in`): the one rule of whole and streamed reads.
pub fn sampled(position: usize, every: usize, offset: usize) -> bool {
    position % every == offset
}

/// The SST-2 class of a fine label: 0 for 0-1, 1 for 3-4, none for neutral.
pub fn binary_label(fine_label: u8) -> Option<i64> {
    match Polarity::of(fine_label) {
        Polarity::Negative => Some(0),
        Polarity::Neutral => None,
        Polarity::Positive => Some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(texts: &[&str]) -> Corpus {
        Corpus {
            name: "c".into(),
            path: "c.csv".into(),
            split: None,
            sentences: texts
                .iter()
                .enumerate()
                .map(|(k, t)| Sentence {
                    id: k.to_string(),
                    line: k + 1,
                    tokens: t.split(' ').map(String::from).collect(),
                    label: Some(1),
                    fine_label: None,
                })
                .collect(),
            trees: None,
        }
    }

    #[test]
    fn exclusion_then_sampling_splits_without_overlap() {
        let mut dev = corpus(&["a b", "c", "d e", "f", "g", "c"]);
        let test = corpus(&["c", "x"]);
        assert_eq!(dev.exclude(&test), 2);
        let mut odd = dev.clone();
        odd.sample(2, 1);
        dev.sample(2, 0);
        let ids = |c: &Corpus| c.sentences.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&dev), ["0", "3"]);
        assert_eq!(ids(&odd), ["2", "4"]);
    }
}
