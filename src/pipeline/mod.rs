//! Running a pipeline file: plan the stages, read every input, run the stages in order, then
//! publish every table at once.
//!
//! Each stage kind is a typed options struct (deserialised from YAML) implementing [`Stage`], and
//! one line of the registry ([`registry`]). Stages talk to each other only through named
//! artefacts ([`artefacts`]): each declares in its [`StagePlan`] what it reads and what it provides
//! under its name, planning checks every reference before anything runs, and the run keeps the
//! artefacts in one store.

mod aggregate;
pub mod artefacts;
mod compositionality;
mod dissenting;
mod examples;
mod hierarchy;
mod manifest;
mod negation;
pub mod registry;
mod report;
mod reproduction;
mod run;
mod score;
mod shard;
mod similar_phrases;
pub(crate) mod snapshot;
mod store;
mod stream;
mod train_logreg;
mod train_lstm;
mod unigram_correlation;

pub use aggregate::AggregateStage;
pub use artefacts::{
    Artefact, ArtefactKind, Artefacts, BetaIndex, Coefficients, LoadedModel, MethodRef, Provides,
    ScoreIndex,
};
pub use compositionality::CompositionalityStage;
pub use dissenting::DissentingSubphrasesStage;
pub use hierarchy::HierarchyStage;
pub use manifest::{FileRecord, InputRecord, MANIFEST, Manifest, StageRecord, utc};
pub use negation::NegationStage;
pub use registry::{KindName, PipelineFile, StageConfig, StageKind};
pub use report::ReportStage;
pub use reproduction::{PaperDataset, ReproductionStage, Source};
pub use run::{Pipeline, RunContext, RunSummary, ShardsError};
pub use score::{ScoreCoverage, ScoreStage, SpanSpec};
pub use shard::{RunMode, Scope, Shard};
pub use similar_phrases::{Query, SimilarPhrasesStage};
pub use snapshot::SnapshotError;
pub use store::{LockError, STORE_DIR};
pub use stream::{BATCH_SENTENCES, StreamedInput};
pub use train_logreg::TrainLogregStage;
pub use train_lstm::TrainLstmStage;
pub use unigram_correlation::UnigramCorrelationStage;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;

use crate::Error;
use crate::config::{ConfigError, InputFormat};

/// One stage kind: checks its options against the pipeline, then runs.
pub trait Stage: fmt::Debug {
    /// Checks references to inputs, models and earlier stages, and declares what the stage reads
    /// and provides. Does no work.
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError>;

    /// Whether the stage's rows depend on each sentence alone (it then runs per shard) or it
    /// needs every sentence; all of them by default.
    fn scope(&self) -> Scope {
        Scope::AllSentences
    }

    /// Whether the stage can read its input in bounded batches ([`RunContext::stream`]); a run
    /// streams an input when every stage reading it can and no later stage reads their results.
    fn streams(&self) -> bool {
        false
    }

    /// Computes the stage's artefacts and writes its tables (pending until the run succeeds).
    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error>;

    /// Work on the run's tables once they are published in `output_dir` (the report reads them
    /// there); nothing by default.
    fn after_publish(
        &self,
        _stage: &StageRef<'_>,
        _config: &PipelineFile,
        _output_dir: &Path,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// For a stage that trains a model: where `model_cache` keeps it, and whether it is there
    /// already (a run then reuses it). Reads the files the model is trained from, to hash them.
    fn cached_model(
        &self,
        _stage: &StageRef<'_>,
        _config: &PipelineFile,
        _model_cache: &Path,
    ) -> Result<Option<CachedModel>, Error> {
        Ok(None)
    }
}

/// A training stage's entry in the model cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    pub folder: PathBuf,
    /// Whether the entry is complete, so that a run reuses it instead of training.
    pub present: bool,
}

/// A stage's name and the key that addresses it in messages (`stages.<name>`).
#[derive(Debug, Clone, Copy)]
pub struct StageRef<'a> {
    pub name: &'a str,
    pub kind: &'static str,
}

impl StageRef<'_> {
    /// `stages.<name>.<option>`, for error messages.
    pub fn key(&self, option: &str) -> String {
        format!("stages.{}.{option}", self.name)
    }

    /// The error for an option of this stage that holds a value it cannot take.
    pub fn invalid(&self, option: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            key: self.key(option),
            message,
        }
    }
}

/// What a stage reads, provides and writes, known before anything runs.
#[derive(Debug, Clone)]
pub struct StagePlan {
    /// One line for `validate`.
    pub summary: String,
    /// The inputs it reads.
    pub inputs: Vec<String>,
    /// What it reads of earlier stages (or, for models, of `models`): name and kind.
    pub reads: Vec<(String, ArtefactKind)>,
    /// What it provides to later stages, under its name.
    pub provides: Vec<Provides>,
    /// The tables it writes: file stem and schema, its main table `<name>` first.
    pub tables: Vec<(String, SchemaRef)>,
    /// Other files it writes to the output folder, published with the tables.
    pub files: Vec<String>,
    /// Files it reads besides inputs and models (GloVe), hashed into its key and the manifest.
    pub data_files: Vec<PathBuf>,
}

impl StagePlan {
    /// A plan whose stage writes its main table, `<name>.parquet`, which later stages may read.
    pub fn new(stage: &StageRef<'_>, summary: String, table: SchemaRef) -> Self {
        Self {
            summary,
            inputs: Vec::new(),
            reads: Vec::new(),
            provides: vec![Provides::Table(table.clone())],
            tables: vec![(stage.name.to_string(), table)],
            files: Vec::new(),
            data_files: Vec::new(),
        }
    }

    pub fn reading_input(mut self, input: &str) -> Self {
        if !self.inputs.iter().any(|i| i == input) {
            self.inputs.push(input.to_string());
        }
        self
    }

    pub fn reading(mut self, name: &str, kind: ArtefactKind) -> Self {
        self.reads.push((name.to_string(), kind));
        self
    }

    pub fn providing(mut self, provides: Provides) -> Self {
        self.provides.push(provides);
        self
    }

    /// A plan whose stage writes no table of its own, only `files`.
    pub fn without_table(summary: String) -> Self {
        Self {
            summary,
            inputs: Vec::new(),
            reads: Vec::new(),
            provides: Vec::new(),
            tables: Vec::new(),
            files: Vec::new(),
            data_files: Vec::new(),
        }
    }

    /// A further table, `<name>_<suffix>.parquet`.
    pub fn with_table(mut self, stage: &StageRef<'_>, suffix: &str, schema: SchemaRef) -> Self {
        self.tables
            .push((format!("{}_{suffix}", stage.name), schema));
        self
    }

    pub fn reading_files(mut self, files: impl IntoIterator<Item = PathBuf>) -> Self {
        self.data_files.extend(files);
        self
    }

    pub fn with_file(mut self, file: String) -> Self {
        self.files.push(file);
        self
    }

    /// What the stage provides of `kind`.
    pub fn provided(&self, kind: ArtefactKind) -> Option<&Provides> {
        self.provides.iter().find(|p| p.kind() == kind)
    }
}

/// What planning a stage can look at: the configuration, the models under `models` and the plans
/// of the stages before it.
pub struct PlanContext<'a> {
    pub config: &'a PipelineFile,
    pub models: &'a BTreeMap<String, LoadedModel>,
    pub earlier: &'a [(String, StagePlan)],
}

impl PlanContext<'_> {
    /// What the earlier stage named by option `key` provides of `kind`.
    pub fn provided(
        &self,
        key: &str,
        name: &str,
        kind: ArtefactKind,
    ) -> Result<&Provides, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        let (_, plan) = self
            .earlier
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| invalid(format!("no earlier stage named `{name}`")))?;
        plan.provided(kind)
            .ok_or_else(|| invalid(format!("stage `{name}` provides no {kind}")))
    }

    /// [`provided`](Self::provided), checked to be about `input`.
    pub fn provided_for(
        &self,
        key: &str,
        name: &str,
        kind: ArtefactKind,
        input: &str,
    ) -> Result<&Provides, ConfigError> {
        let provided = self.provided(key, name, kind)?;
        if provided.input() == Some(input) {
            Ok(provided)
        } else {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                message: format!("stage `{name}` provides {kind} of another input than `{input}`"),
            })
        }
    }

    /// The coverage and methods of the scores of `input` that the earlier stage named by option
    /// `key` provides.
    pub fn scores_for(
        &self,
        key: &str,
        name: &str,
        input: &str,
    ) -> Result<(&ScoreCoverage, &[MethodRef]), ConfigError> {
        match self.provided_for(key, name, ArtefactKind::Scores, input)? {
            Provides::Scores {
                coverage, methods, ..
            } => Ok((coverage, methods)),
            _ => unreachable!("scores are provided as scores"),
        }
    }

    /// Checks that option `key` names an input.
    pub fn input(&self, key: &str, name: &str) -> Result<(), ConfigError> {
        if self.config.inputs.contains_key(name) {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                message: format!("no input named `{name}` under `inputs`"),
            })
        }
    }

    /// The model named by option `key`: one under `models`, or one an earlier stage trains.
    pub fn model(&self, key: &str, name: &str) -> Result<ModelShape, ConfigError> {
        if let Some(loaded) = self.models.get(name) {
            return Ok(ModelShape {
                classes: loaded.model.num_classes(),
            });
        }
        let trained = self
            .earlier
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, plan)| plan.provided(ArtefactKind::Model));
        match trained {
            Some(Provides::Model { classes }) => Ok(ModelShape { classes: *classes }),
            _ => Err(ConfigError::Invalid {
                key: key.to_string(),
                message: format!(
                    "no model named `{name}` under `models` or trained by an earlier stage"
                ),
            }),
        }
    }

    /// A data file named by option `key`, relative to the data directory; a missing file names
    /// the line (or `--set`) that gave it.
    pub fn data_file(&self, key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
        let resolved = self.config.data_dir.join(path);
        if resolved.is_file() {
            Ok(resolved)
        } else {
            Err(self.config.missing_file(key, &resolved))
        }
    }

    /// Whether input `name` is SST trees.
    pub fn input_has_trees(&self, name: &str) -> bool {
        self.config
            .inputs
            .get(name)
            .is_some_and(|input| matches!(input.format, InputFormat::SstTrees))
    }
}

/// What planning knows of a model before it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub classes: usize,
}
