//! Pretrained word vectors in GloVe's text format (`word v1 … vD`, one word per line), plain or
//! gzip-compressed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::data::InputError;

/// Word → vector, all of one dimension.
#[derive(Debug, Clone)]
pub struct WordVectors {
    pub dimension: usize,
    pub vectors: HashMap<String, Vec<f32>>,
}

impl WordVectors {
    /// Reads a `.txt` or `.txt.gz` file; a malformed line is an error naming its number.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let file = std::fs::File::open(path).map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut vectors = HashMap::new();
        let mut dimension = 0;
        for (index, line) in BufReader::new(reader).lines().enumerate() {
            let number = index + 1;
            let line = line.map_err(|e| {
                InputError::invalid(path, number, "line", format!("cannot read: {e}"))
            })?;
            let mut fields = line.split(' ');
            let word = fields.next().unwrap_or_default().to_string();
            let values = fields
                .map(|v| v.parse::<f32>())
                .collect::<Result<Vec<f32>, _>>()
                .map_err(|e| InputError::invalid(path, number, "vector", e.to_string()))?;
            if dimension == 0 {
                dimension = values.len();
            }
            if word.is_empty() || values.is_empty() || values.len() != dimension {
                return Err(InputError::invalid(
                    path,
                    number,
                    "vector",
                    format!(
                        "expected a word and {dimension} values, found {} values",
                        values.len()
                    ),
                ));
            }
            vectors.insert(word, values);
        }
        Ok(Self { dimension, vectors })
    }
}
