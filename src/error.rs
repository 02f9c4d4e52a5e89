//! The library's top-level error and the exit codes it maps to.

use crate::attribution::CorpusError;
use crate::config::ConfigError;
use crate::data::InputError;
use crate::io::OutputError;
use crate::model::ModelError;
use crate::pipeline::{LockError, ShardsError, SnapshotError};
use crate::report::ReportError;

/// Exit code for invalid configuration or input (nothing was computed or written).
pub const EXIT_INVALID_INPUT: i32 = 2;
/// Exit code for a failure while running.
pub const EXIT_RUN_FAILURE: i32 = 1;
/// Exit code for a run refused because another holds its output folder (sysexits' EX_TEMPFAIL:
/// try again later).
pub const EXIT_LOCKED: i32 = 75;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Attribution(#[from] CorpusError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Shards(#[from] ShardsError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl Error {
    /// The error of a batch of sentences that starts `offset` sentences into its input, with the
    /// sentence it names counted from the start of the input.
    pub(crate) fn in_batch_at(self, offset: usize) -> Self {
        match self {
            Error::Attribution(mut e) => {
                e.sentence += offset;
                Error::Attribution(e)
            }
            other => other,
        }
    }

    /// [`EXIT_INVALID_INPUT`] for bad configurations, models, vocabularies, data and missing shards;
    /// [`EXIT_LOCKED`] when another run holds the output folder; [`EXIT_RUN_FAILURE`] otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Model(_) | Error::Input(_) | Error::Shards(_) => {
                EXIT_INVALID_INPUT
            }
            Error::Locked(_) => EXIT_LOCKED,
            Error::Output(_) | Error::Attribution(_) | Error::Report(_) | Error::Snapshot(_) => {
                EXIT_RUN_FAILURE
            }
        }
    }
}
