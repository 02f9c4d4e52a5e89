//! Token vocabularies: a JSON list of tokens whose index is the embedding row.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::ModelError;
use crate::data::InputError;

/// The token that unknown words map to, when the vocabulary has it.
pub const UNKNOWN_TOKEN: &str = "<unk>";

/// Normalises a raw token the way SST vocabularies (and GloVe 6B) spell it.
///
/// Lower-cases, turns the PTB bracket escapes `-LRB-` / `-RRB-` into `(` / `)`, and unescapes
/// `\/` and `\*`. Tokens are otherwise kept whole (SST leaves may contain U+00A0).
pub fn normalize_token(raw: &str) -> String {
    let lower = raw.to_lowercase();
    match lower.as_str() {
        "-lrb-" => "(".to_string(),
        "-rrb-" => ")".to_string(),
        _ => lower.replace("\\/", "/").replace("\\*", "*"),
    }
}

/// Maps normalised tokens to embedding rows.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    path: PathBuf,
    tokens: Vec<String>,
    index: HashMap<String, usize>,
    unknown: Option<usize>,
}

/// A token that is neither in the vocabulary nor mappable to `<unk>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "token `{token}` (normalised `{normalized}`) is not in vocabulary {vocabulary} and it has no `<unk>`"
)]
pub struct UnknownToken {
    pub token: String,
    pub normalized: String,
    pub vocabulary: String,
}

impl Vocabulary {
    /// Reads a JSON list of strings; duplicate tokens are an error because lookups would be ambiguous.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(path, &bytes)
    }

    /// [`load`](Self::load) from the file's bytes; `path` names it in errors.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let bytes = bytes.strip_prefix(crate::data::BOM).unwrap_or(bytes);
        let tokens: Vec<String> =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Vocabulary {
                path: path.to_path_buf(),
                message: format!("expected a JSON list of strings: {e}"),
            })?;
        Self::from_tokens(path, tokens)
    }

    /// Builds a vocabulary from tokens already in memory; `origin` names it in error messages.
    pub fn from_tokens(origin: &Path, tokens: Vec<String>) -> Result<Self, ModelError> {
        let mut index = HashMap::with_capacity(tokens.len());
        for (row, token) in tokens.iter().enumerate() {
            if let Some(first) = index.insert(token.clone(), row) {
                return Err(ModelError::Vocabulary {
                    path: origin.to_path_buf(),
                    message: format!(
                        "token `{token}` appears at index {first} and again at index {row}"
                    ),
                });
            }
        }
        let unknown = index.get(UNKNOWN_TOKEN).copied();
        Ok(Self {
            path: origin.to_path_buf(),
            tokens,
            index,
            unknown,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token stored at embedding row `row`.
    pub fn token(&self, row: usize) -> Option<&str> {
        self.tokens.get(row).map(String::as_str)
    }

    /// The embedding row of a raw token after [`normalize_token`], falling back to `<unk>`.
    pub fn lookup(&self, raw: &str) -> Result<usize, UnknownToken> {
        self.resolve(raw).map(|(row, _)| row)
    }

    /// The embedding row of a raw token after [`normalize_token`], with no fallback to `<unk>`.
    pub fn find(&self, raw: &str) -> Option<usize> {
        self.index.get(&normalize_token(raw)).copied()
    }

    /// The row of a raw token, and its normalised form when that was not in the vocabulary and
    /// the token went to `<unk>`.
    fn resolve(&self, raw: &str) -> Result<(usize, Option<String>), UnknownToken> {
        let normalized = normalize_token(raw);
        if let Some(&row) = self.index.get(&normalized) {
            return Ok((row, None));
        }
        match self.unknown {
            Some(row) => Ok((row, Some(normalized))),
            None => Err(UnknownToken {
                token: raw.to_string(),
                normalized,
                vocabulary: self.path.display().to_string(),
            }),
        }
    }

    /// Maps every token of `(line, tokens)` sentences of the file `path` to its embedding row,
    /// counting the tokens that fell back to `<unk>`; a token that cannot be mapped names the file,
    /// line and position.
    pub fn encode<'a>(
        &self,
        sentences: impl IntoIterator<Item = (usize, &'a [String])>,
        path: &Path,
    ) -> Result<Encoded, InputError> {
        let mut coverage = Coverage::default();
        let mut ids = Vec::new();
        for (line, tokens) in sentences {
            coverage.sentences += 1;
            coverage.tokens += tokens.len();
            let mut row_ids = Vec::with_capacity(tokens.len());
            for (k, token) in tokens.iter().enumerate() {
                let (row, unknown) = self.resolve(token).map_err(|e| {
                    InputError::invalid(path, line, format!("tokens[{k}]"), e.to_string())
                })?;
                if let Some(normalized) = unknown {
                    *coverage.unknown.entry(normalized).or_default() += 1;
                }
                row_ids.push(row);
            }
            ids.push(row_ids);
        }
        Ok(Encoded { ids, coverage })
    }

    /// Checks that this vocabulary indexes exactly the rows of a model's embedding.
    pub fn check_matches(
        &self,
        model_path: &Path,
        embedding_rows: usize,
    ) -> Result<(), ModelError> {
        if self.len() == embedding_rows {
            Ok(())
        } else {
            Err(ModelError::VocabularySize {
                vocab_path: self.path.clone(),
                model_path: model_path.to_path_buf(),
                vocab_size: self.len(),
                embedding_rows,
            })
        }
    }
}

/// Sentences as embedding rows, and how many of their tokens the vocabulary did not know.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<Vec<usize>>,
    pub coverage: Coverage,
}

/// What the vocabulary made of an input's tokens.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Coverage {
    pub sentences: usize,
    pub tokens: usize,
    /// Normalised tokens mapped to `<unk>`, with their number of occurrences.
    pub unknown: BTreeMap<String, usize>,
}

impl Coverage {
    /// Adds the counts of another part of the same input (a shard's).
    pub fn add(&mut self, other: &Coverage) {
        self.sentences += other.sentences;
        self.tokens += other.tokens;
        for (token, count) in &other.unknown {
            *self.unknown.entry(token.clone()).or_default() += count;
        }
    }

    /// Occurrences of tokens mapped to `<unk>`.
    pub fn unknown_tokens(&self) -> usize {
        self.unknown.values().sum()
    }

    /// The `n` most frequent unknown tokens, the most frequent first (ties alphabetically).
    pub fn most_frequent_unknown(&self, n: usize) -> Vec<String> {
        let mut counted: Vec<(&String, &usize)> = self.unknown.iter().collect();
        counted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        counted
            .into_iter()
            .take(n)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// One line for the log: how many tokens were unknown, and the most frequent of them.
    pub fn describe(&self) -> String {
        let unknown = self.unknown_tokens();
        if unknown == 0 {
            return format!(
                "all {} tokens of {} sentences known",
                self.tokens, self.sentences
            );
        }
        format!(
            "{unknown} of {} tokens ({:.2} %, {} distinct) mapped to <unk>; most frequent: {}",
            self.tokens,
            100.0 * unknown as f64 / self.tokens as f64,
            self.unknown.len(),
            self.most_frequent_unknown(8).join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_sst_escapes() {
        assert_eq!(normalize_token("-LRB-"), "(");
        assert_eq!(normalize_token("-RRB-"), ")");
        assert_eq!(normalize_token("8\u{a0}1\\/2"), "8\u{a0}1/2");
        assert_eq!(normalize_token("\\*\\*\\*"), "***");
        assert_eq!(normalize_token("The"), "the");
        assert_eq!(normalize_token("n't"), "n't");
    }

    #[test]
    fn unknown_tokens_fall_back_or_fail() {
        let with_unk = Vocabulary::from_tokens(
            Path::new("v.json"),
            vec!["<unk>".into(), "good".into(), "(".into()],
        )
        .unwrap();
        assert_eq!(with_unk.lookup("GOOD"), Ok(1));
        assert_eq!(with_unk.lookup("-LRB-"), Ok(2));
        assert_eq!(with_unk.lookup("zebra"), Ok(0));

        let without = Vocabulary::from_tokens(Path::new("v.json"), vec!["good".into()]).unwrap();
        let err = without.lookup("Zebra").unwrap_err();
        assert_eq!(err.normalized, "zebra");
        assert!(err.to_string().contains("v.json"));
    }

    #[test]
    fn encoding_counts_the_unknown_tokens() {
        let vocab = Vocabulary::from_tokens(
            Path::new("v.json"),
            vec!["<unk>".into(), "good".into(), "film".into()],
        )
        .unwrap();
        let sentences: [Vec<String>; 2] = [
            vec!["Good".into(), "zebra".into(), "film".into()],
            vec!["yak".into(), "zebra".into()],
        ];
        let encoded = vocab
            .encode(
                sentences
                    .iter()
                    .enumerate()
                    .map(|(k, s)| (k + 1, s.as_slice())),
                Path::new("in.jsonl"),
            )
            .unwrap();
        assert_eq!(encoded.ids, [vec![1, 0, 2], vec![0, 0]]);
        assert_eq!(
            (encoded.coverage.sentences, encoded.coverage.tokens),
            (2, 5)
        );
        assert_eq!(encoded.coverage.unknown_tokens(), 3);
        assert_eq!(encoded.coverage.most_frequent_unknown(5), ["zebra", "yak"]);
        let without = Vocabulary::from_tokens(Path::new("v.json"), vec!["good".into()]).unwrap();
        let error = without
            .encode(
                std::iter::once((4, sentences[1].as_slice())),
                Path::new("in.jsonl"),
            )
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("in.jsonl:4: tokens[0]: token `yak`"),
            "{error}"
        );
    }

    #[test]
    fn duplicate_tokens_are_rejected() {
        let err =
            Vocabulary::from_tokens(Path::new("v.json"), vec!["a".into(), "a".into()]).unwrap_err();
        assert!(
            err.to_string().contains("index 0 and again at index 1"),
            "{err}"
        );
    }
}
