//! Readers of the datasets the pipeline explains.

mod sst;
mod token_jsonl;

pub use sst::{Node, Polarity, SstTree, read_sst_trees};
pub use token_jsonl::{TokenSentence, read_token_jsonl};

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
