//! Output tables: their Arrow schemas and crash-safe Parquet files.

mod parquet_file;
mod scores;

pub use parquet_file::ParquetTableWriter;
pub use scores::{ScoreRecord, ScoresBuilder, scores_schema};

use std::path::PathBuf;

/// Version of the output table layouts, written to every file's key-value metadata; bumped
/// whenever a column is added, removed or changes meaning.
pub const SCHEMA_VERSION: &str = "1";

/// A table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: writing Parquet: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("building table {table}: {source}")]
    Arrow {
        table: String,
        source: arrow_schema::ArrowError,
    },
}
