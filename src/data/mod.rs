//! Readers of the datasets the pipeline explains.

mod corpus;
mod sst;
mod token_jsonl;
mod yelp;

pub use corpus::{Corpus, Format, Sentence, binary_label};
pub use sst::{Node, Polarity, SstTree, read_sst_trees};
pub use token_jsonl::{TokenSentence, read_token_jsonl};
pub use yelp::{Review, Tokenizer, YelpOptions, read_yelp_polarity, tokenize};

use std::path::PathBuf;

/// Bad input data: which file, which line, which field, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
}

/// The non-blank lines of a UTF-8 text file with their 1-based numbers; invalid UTF-8 is an error
/// naming the line and `field`.
fn read_lines(path: &std::path::Path, field: &str) -> Result<Vec<(usize, String)>, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let text = std::str::from_utf8(raw).map_err(|e| {
            InputError::invalid(
                path,
                index + 1,
                field,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        if !text.trim().is_empty() {
            lines.push((index + 1, text.to_string()));
        }
    }
    Ok(lines)
}

impl InputError {
    pub fn invalid(
        path: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        InputError::Invalid {
            path: path.into(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}
