//! Token vocabularies: a JSON list of tokens whose index is the embedding row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ModelError;

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
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let tokens: Vec<String> =
            serde_json::from_str(&text).map_err(|e| ModelError::Vocabulary {
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
        let normalized = normalize_token(raw);
        match self.index.get(&normalized).copied().or(self.unknown) {
            Some(row) => Ok(row),
            None => Err(UnknownToken {
                token: raw.to_string(),
                normalized,
                vocabulary: self.path.display().to_string(),
            }),
        }
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
    fn duplicate_tokens_are_rejected() {
        let err =
            Vocabulary::from_tokens(Path::new("v.json"), vec!["a".into(), "a".into()]).unwrap_err();
        assert!(
            err.to_string().contains("index 0 and again at index 1"),
            "{err}"
        );
    }
}
