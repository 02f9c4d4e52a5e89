//! Readers of the datasets the pipeline explains.

mod corpus;
mod sst;
mod token_jsonl;
mod yelp;

pub use corpus::{Corpus, Format, Sentence, Sentences, binary_label, sampled, sentences};
pub use sst::{Node, Polarity, SstTree, read_sst_trees, sst_trees};
pub use token_jsonl::{TokenJsonl, TokenSentence, read_token_jsonl};
pub use yelp::{Review, Tokenizer, YelpOptions, YelpReviews, read_yelp_polarity, tokenize};

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

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

/// Opens `path` for reading line by line, for the streaming readers.
pub fn open(path: &Path) -> Result<BufReader<File>, InputError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// The non-blank lines of UTF-8 text with their 1-based numbers, one at a time. A UTF-8 BOM at
/// the start and a CR before each LF are dropped (files saved on Windows read as written on
/// Unix); invalid UTF-8 is an error naming the line and `field`.
pub(crate) struct TextLines<R> {
    path: PathBuf,
    reader: R,
    field: &'static str,
    line: usize,
    buffer: Vec<u8>,
}

impl<R: BufRead> TextLines<R> {
    pub(crate) fn new(path: &Path, reader: R, field: &'static str) -> Self {
        Self {
            path: path.to_path_buf(),
            reader,
            field,
            line: 0,
            buffer: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for TextLines<R> {
    type Item = Result<(usize, String), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(InputError::Read {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
            self.line += 1;
            let mut bytes = self.buffer.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            }
            let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    return Some(Err(InputError::invalid(
                        &self.path,
                        self.line,
                        self.field,
                        format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    )));
                }
            };
            if !text.trim().is_empty() {
                return Some(Ok((self.line, text.to_string())));
            }
        }
    }
}

/// The byte order mark some editors put at the start of UTF-8 files.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

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
