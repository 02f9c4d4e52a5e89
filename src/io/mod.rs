//! Output tables: their Arrow schemas and crash-safe Parquet files.

mod analysis_tables;
mod columns;
mod corpus_tables;
mod paper_tables;
mod parquet_file;
mod scores;
mod training_tables;

pub use analysis_tables::{
    InteractionRecord, StatsRecord, aggregate_stats_batch, aggregate_stats_schema,
    negation_interactions_batch, negation_interactions_schema,
};
pub use corpus_tables::{
    CoverageRecord, constituents_batch, constituents_schema, sentences_batch, sentences_schema,
    vocabulary_coverage_batch, vocabulary_coverage_schema,
};
pub use paper_tables::{
    CorrelationRecord, DissentRecord, EmbeddingRecord, HierarchyRecord, InteractionsRecord,
    MethodRef, PhraseScoreRecord, ReproductionRecord, SentenceRef, SimilarRecord, WordPointRecord,
    compositionality_batch, compositionality_schema, dissenting_subphrases_batch,
    dissenting_subphrases_schema, hierarchy_batch, hierarchy_schema, interactions_batch,
    interactions_schema, phrase_embeddings_batch, phrase_embeddings_schema, reproduction_batch,
    reproduction_schema, similar_phrases_batch, similar_phrases_schema, unigram_correlations_batch,
    unigram_correlations_schema, word_points_batch, word_points_schema,
};
pub use parquet_file::{ParquetTableWriter, PendingFile, check_writable, publish_all, write_table};
pub use scores::{ScoreRecord, ScoresBuilder, scores_schema};
pub use training_tables::{
    CoefficientRecord, EvalRecord, coefficients_batch, coefficients_schema, model_eval_batch,
    model_eval_schema, train_log_batch, train_log_schema,
};

use std::path::PathBuf;

/// Version of the output table layouts, written to every file's key-value metadata; bumped
/// whenever a column is added, removed or changes meaning.
pub const SCHEMA_VERSION: &str = "2";

/// A table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: cannot write: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot create the folder for {file}: {source}")]
    Folder {
        path: PathBuf,
        file: PathBuf,
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

/// Maps an Arrow error while assembling `table`.
fn arrow_error(table: &str) -> impl FnOnce(arrow_schema::ArrowError) -> OutputError + '_ {
    move |source| OutputError::Arrow {
        table: table.to_string(),
        source,
    }
}

/// Token positions, lines and node ids are bounded by file sizes far below `i32::MAX`.
fn to_i32(value: usize) -> i32 {
    i32::try_from(value).expect("positions, lines and node ids fit in i32")
}
