//! Pre-tokenised sentences, one JSON object per line: `{"id": "...", "tokens": ["..."], "label": 1}`.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::InputError;

/// One pre-tokenised sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSentence {
    /// 1-based line in the file, for error messages.
    pub line: usize,
    pub id: String,
    pub tokens: Vec<String>,
    /// Optional class label (0 negative, 1 positive for binary sentiment).
    pub label: Option<i64>,
}

/// Reads a JSON-lines file of sentences; blank lines are skipped, ids must be unique.
///
/// `id` is a string (a number is accepted and kept as its decimal text), `tokens` a non-empty list
/// of non-empty strings, `label` an optional class number 0-127. Unknown fields are errors, so a misspelt
/// field is not silently ignored.
pub fn read_token_jsonl(path: &Path) -> Result<Vec<TokenSentence>, InputError> {
    TokenJsonl::new(path, super::open(path)?).collect()
}

/// The sentences of token JSONL read from `reader` one line at a time, as
/// [`read_token_jsonl`] checks them. Only the ids seen so far are kept, to refuse a repeated one.
pub struct TokenJsonl<R> {
    path: PathBuf,
    lines: super::TextLines<R>,
    seen: HashMap<String, usize>,
}

impl<R: BufRead> TokenJsonl<R> {
    pub fn new(path: &Path, reader: R) -> Self {
        Self {
            path: path.to_path_buf(),
            lines: super::TextLines::new(path, reader, "line"),
            seen: HashMap::new(),
        }
    }

    fn parse(&mut self, line: usize, text: &str) -> Result<TokenSentence, InputError> {
        let path = &self.path;
        let invalid =
            |field: &str, message: String| InputError::invalid(path, line, field, message);
        let value: Value = serde_json::from_str(text)
            .map_err(|e| invalid("line", format!("invalid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(invalid("line", "expected a JSON object".into()));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "tokens" | "label"))
        {
            return Err(invalid(
                unknown,
                "unknown field (expected id, tokens, label)".into(),
            ));
        }
        let id = match object.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(invalid("id", "expected a non-empty string".into())),
            None => return Err(invalid("id", "missing".into())),
        };
        let tokens = match object.get("tokens") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(k, t)| match t {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(invalid(
                        &format!("tokens[{k}]"),
                        "expected a non-empty string".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(invalid(
                    "tokens",
                    "expected a non-empty list of strings".into(),
                ));
            }
            None => return Err(invalid("tokens", "missing".into())),
        };
        let label = match object.get("label") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|l| (0..=127).contains(&l)) => {
                n.as_i64()
            }
            Some(_) => {
                return Err(invalid(
                    "label",
                    "expected a class number from 0 to 127".into(),
                ));
            }
        };
        if let Some(first) = self.seen.insert(id.clone(), line) {
            return Err(invalid(
                "id",
                format!("`{id}` already used on line {first}"),
            ));
        }
        Ok(TokenSentence {
            line,
            id,
            tokens,
            label,
        })
    }
}

impl<R: BufRead> Iterator for TokenJsonl<R> {
    type Item = Result<TokenSentence, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (line, text) = match self.lines.next()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        Some(self.parse(line, &text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<Vec<TokenSentence>, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, text).unwrap();
        read_token_jsonl(&path)
    }

    #[test]
    fn reads_sentences_and_skips_blank_lines() {
        let got = read(b"{\"id\": \"a\", \"tokens\": [\"Good\", \"film\"]}\n\n{\"id\": 7, \"tokens\": [\"x\"], \"label\": 1}\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].tokens, vec!["Good", "film"]);
        assert_eq!(got[1].id, "7");
        assert_eq!(got[1].label, Some(1));
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases: [(&[u8], &str); 7] = [
            (b"{\"id\": \"a\", \"tokens\": []}\n", ":1: tokens:"),
            (
                b"{\"id\": \"a\", \"tokens\": [\"x\"]}\n{\"tokens\": [\"y\"]}\n",
                ":2: id: missing",
            ),
            (
                b"{\"id\": \"a\", \"tokens\": [\"x\", 3]}\n",
                ":1: tokens[1]:",
            ),
            (
                b"{\"id\": \"a\", \"tokens\": [\"x\"], \"lable\": 1}\n",
                ":1: lable: unknown field",
            ),
            (
                b"{\"id\": \"a\", \"tokens\": [\"x\"]}\n{\"id\": \"a\", \"tokens\": [\"x\"]}\n",
                ":2: id: `a` already used on line 1",
            ),
            (
                b"{\"id\": \"a\", \"tokens\": [\"\xff\"]}\n",
                ":1: line: invalid UTF-8",
            ),
            (
                b"{\"id\": \"a\", \"tokens\": [\"x\"]\n",
                ":1: line: invalid JSON",
            ),
        ];
        for (text, expected) in cases {
            let message = read(text).unwrap_err().to_string();
            assert!(
                message.contains("s.jsonl") && message.contains(expected),
                "{message} lacks {expected}"
            );
        }
    }
}
