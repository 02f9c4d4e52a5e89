//! Running a pipeline file: plan the stages, read every input, run the stages in order, then
//! publish every table at once.
//!
//! Each stage kind is a typed options struct (deserialised from YAML) implementing [`Stage`], and
//! one line of the registry below; stages talk to each other only through the artifacts of
//! [`RunContext`] and the [`StagePlan`] each one declares.

mod aggregate;
mod examples;
mod negation;
mod score;
mod train_logreg;
mod train_lstm;

pub use aggregate::AggregateStage;
pub use negation::NegationStage;
pub use score::{ScoreCoverage, ScoreStage, SpanSpec};
pub use train_logreg::TrainLogregStage;
pub use train_lstm::TrainLstmStage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::Error;
use crate::attribution::Span;
use crate::config::{ConfigError, PipelineConfig};
use crate::data::{Corpus, InputError};
use crate::io::{
    CoverageRecord, OutputError, ParquetTableWriter, PendingFile, check_writable,
    constituents_batch, constituents_schema, publish_all, sentences_batch, sentences_schema,
    vocabulary_coverage_batch, vocabulary_coverage_schema, write_table,
};
use crate::model::{Coverage, LstmClassifier, ModelError, Vocabulary};

/// The run's table of what each vocabulary made of each input (`schemas/vocabulary_coverage.yaml`).
const COVERAGE_TABLE: &str = "vocabulary_coverage.parquet";

/// One stage kind: checks its options against the pipeline, then runs.
pub trait Stage: fmt::Debug {
    /// Checks references to inputs, models and earlier stages, and declares what the stage reads
    /// and provides. Does no work.
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError>;

    /// Computes the stage's artifacts and writes its table (pending until the run succeeds).
    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error>;

    /// For a stage that trains a model: where `model_cache` keeps it, and whether it is there
    /// already (a run then reuses it). Reads the files the model is trained from, to hash them.
    fn cached_model(
        &self,
        _stage: &StageRef<'_>,
        _config: &PipelineConfig,
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

/// Generates [`StageKind`] (the options of every kind) and the YAML kind names from one line per
/// kind: `Variant(OptionsType) = "yaml_name"`, then any older names still accepted (`| "old"`).
macro_rules! stage_kinds {
    ($($variant:ident($options:ty) = $name:literal $(| $alias:literal)*),* $(,)?) => {
        /// The typed options of a stage, by kind.
        #[derive(Debug, Clone)]
        pub enum StageKind {
            $($variant($options)),*
        }

        /// The `kind:` values of pipeline files.
        #[derive(Debug, Clone, Copy, serde::Deserialize)]
        pub enum KindName {
            $(#[serde(rename = $name $(, alias = $alias)*)] $variant),*
        }

        impl StageKind {
            /// Deserialises the options of `kind` from the rest of the stage's mapping.
            pub fn deserialize_options<'de, D: serde::Deserializer<'de>>(
                kind: KindName,
                options: D,
            ) -> Result<Self, D::Error> {
                use serde::Deserialize;
                Ok(match kind {
                    $(KindName::$variant => StageKind::$variant(<$options>::deserialize(options)?)),*
                })
            }

            pub fn name(&self) -> &'static str {
                match self {
                    $(StageKind::$variant(_) => $name),*
                }
            }

            pub fn stage(&self) -> &dyn Stage {
                match self {
                    $(StageKind::$variant(options) => options),*
                }
            }
        }
    };
}

stage_kinds! {
    Score(ScoreStage) = "score" | "cd_score",
    Negation(NegationStage) = "negation",
    Aggregate(AggregateStage) = "aggregate",
    TrainLstm(TrainLstmStage) = "train_lstm",
    TrainLogreg(TrainLogregStage) = "train_logreg",
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
}

/// What a stage reads and provides, known before anything runs.
#[derive(Debug, Clone)]
pub struct StagePlan {
    /// One line for `validate`.
    pub summary: String,
    /// The input whose sentences the stage's artifacts are about.
    pub input: Option<String>,
    /// Other inputs it reads.
    pub reads_inputs: Vec<String>,
    /// The model it uses.
    pub model: Option<String>,
    /// Earlier stages whose tables it reads.
    pub reads_tables: Vec<String>,
    /// The schema of the table it writes as `<name>.parquet`.
    pub table: SchemaRef,
    /// Further tables it writes, as `<name>_<suffix>.parquet`.
    pub extra_tables: Vec<(String, SchemaRef)>,
    /// Other files it writes to the output folder (file names), published with the tables.
    pub files: Vec<String>,
    /// Whether it trains a model, which later stages can use under the stage's name.
    pub trains_model: bool,
    /// For scoring stages: which spans they score.
    pub scores: Option<ScoreCoverage>,
    /// Whether it provides phrases (spans per sentence) that scoring stages can take.
    pub phrases: bool,
}

/// What planning a stage can look at: the configuration, the models' shapes and the plans of the
/// stages before it.
pub struct PlanContext<'a> {
    pub config: &'a PipelineConfig,
    pub models: &'a BTreeMap<String, LoadedModel>,
    pub earlier: &'a [(String, StagePlan)],
}

impl PlanContext<'_> {
    /// The plan of an earlier stage named by option `key`.
    pub fn earlier_stage(&self, key: &str, name: &str) -> Result<&StagePlan, ConfigError> {
        self.earlier
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, plan)| plan)
            .ok_or_else(|| ConfigError::Invalid {
                key: key.to_string(),
                message: format!("no earlier stage named `{name}`"),
            })
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
        match self
            .earlier
            .iter()
            .find(|(n, plan)| n == name && plan.trains_model)
        {
            Some(_) => Ok(ModelShape { classes: 2 }),
            None => Err(ConfigError::Invalid {
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
            .is_some_and(|input| matches!(input.format, crate::config::InputFormat::SstTrees))
    }
}

/// What planning knows of a model before it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub classes: usize,
}

/// A model with its vocabulary, checked against each other.
#[derive(Debug)]
pub struct LoadedModel {
    pub weights: PathBuf,
    pub model: LstmClassifier<f32>,
    pub vocab: Vocabulary,
}

impl LoadedModel {
    pub fn load(weights: &Path, vocab: &Path) -> Result<Self, ModelError> {
        let model = LstmClassifier::<f32>::load(weights)?;
        let vocab = Vocabulary::load(vocab)?;
        vocab.check_matches(weights, model.vocab_size())?;
        Ok(Self {
            weights: weights.to_path_buf(),
            model,
            vocab,
        })
    }
}

/// A method whose scores a scoring stage provides: its name, variant and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredMethod {
    pub method: String,
    pub variant: Option<String>,
    pub target: String,
}

/// Scores of spans, by sentence position and span, one entry per method.
#[derive(Debug, Default)]
pub struct ScoreIndex {
    pub methods: Vec<ScoredMethod>,
    pub scores: HashMap<(usize, Span), Vec<f64>>,
}

/// Everything a stage can use while running.
pub struct RunContext {
    pub config: PipelineConfig,
    pub output_dir: PathBuf,
    pub corpora: BTreeMap<String, Corpus>,
    /// Models under `models` and models trained by earlier stages (under the stage's name).
    pub models: BTreeMap<String, LoadedModel>,
    /// Where training stages keep their models, by content hash.
    pub model_cache: PathBuf,
    pub scores: HashMap<String, ScoreIndex>,
    pub phrases: HashMap<String, Vec<Vec<Span>>>,
    /// Coefficients of linear models by stage: n-gram (space-joined, normalised) → coefficient;
    /// the empty term is the intercept.
    pub coefficients: HashMap<String, HashMap<String, f64>>,
    /// Tables kept in memory because a later stage reads them.
    pub tables: HashMap<String, Vec<RecordBatch>>,
    /// What each model's vocabulary made of each input it encoded.
    coverage: BTreeMap<(String, String), Coverage>,
    keep_tables: BTreeSet<String>,
    pending: Vec<PendingFile>,
    metadata: Vec<(String, String)>,
}

impl RunContext {
    pub fn corpus(&self, name: &str) -> &Corpus {
        &self.corpora[name]
    }

    /// The token ids of an input under a model's vocabulary, its unknown tokens logged and counted
    /// for the run's `vocabulary_coverage` table; a token that has no row (in a vocabulary without
    /// `<unk>`) names the file, line and position.
    pub fn encode(&mut self, input: &str, model: &str) -> Result<Vec<Vec<usize>>, InputError> {
        let corpus = &self.corpora[input];
        let encoded = self.models[model].vocab.encode(
            corpus
                .sentences
                .iter()
                .map(|s| (s.line, s.tokens.as_slice())),
            &corpus.path,
        )?;
        tracing::info!(
            "input {input} with the vocabulary of model {model}: {}",
            encoded.coverage.describe()
        );
        self.coverage
            .insert((input.to_string(), model.to_string()), encoded.coverage);
        Ok(encoded.ids)
    }

    /// Starts a stage's table `<output>/<stage>.parquet`, to be streamed into and handed to
    /// [`finish_table`](Self::finish_table).
    pub fn table_writer(
        &self,
        stage: &StageRef<'_>,
        schema: SchemaRef,
    ) -> Result<ParquetTableWriter, OutputError> {
        self.named_table_writer(stage, stage.name, schema)
    }

    /// As [`table_writer`](Self::table_writer), for a stage's further table `<stage>_<suffix>`.
    pub fn extra_table_writer(
        &self,
        stage: &StageRef<'_>,
        suffix: &str,
        schema: SchemaRef,
    ) -> Result<ParquetTableWriter, OutputError> {
        self.named_table_writer(stage, &format!("{}_{suffix}", stage.name), schema)
    }

    fn named_table_writer(
        &self,
        stage: &StageRef<'_>,
        file_stem: &str,
        schema: SchemaRef,
    ) -> Result<ParquetTableWriter, OutputError> {
        let path = self.output_dir.join(format!("{file_stem}.parquet"));
        let mut metadata = self.metadata.clone();
        metadata.push(("stage".into(), stage.name.into()));
        metadata.push(("stage_kind".into(), stage.kind.into()));
        let metadata: Vec<(&str, String)> = metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        ParquetTableWriter::create(&path, schema, &metadata)
    }

    /// Whether a later stage reads this stage's table, which must then stay in memory.
    pub fn keeps_table(&self, stage: &StageRef<'_>) -> bool {
        self.keep_tables.contains(stage.name)
    }

    /// Completes a stage's table: it is published when the whole run succeeds. `kept` holds its
    /// batches when [`keeps_table`](Self::keeps_table) says a later stage reads them.
    pub fn finish_table(
        &mut self,
        stage: &StageRef<'_>,
        writer: ParquetTableWriter,
        kept: Vec<RecordBatch>,
    ) -> Result<(), OutputError> {
        self.pending.push(writer.finish()?);
        if self.keeps_table(stage) {
            self.tables.insert(stage.name.to_string(), kept);
        }
        Ok(())
    }

    /// Completes a further table of a stage (never read by later stages).
    pub fn finish_extra_table(&mut self, writer: ParquetTableWriter) -> Result<(), OutputError> {
        self.pending.push(writer.finish()?);
        Ok(())
    }

    /// Writes a file other than a table to the output folder, published with the run's tables.
    pub fn write_file(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        let path = self.output_dir.join(name);
        self.pending.push(PendingFile::write(&path, bytes)?);
        Ok(path)
    }

    /// Writes a small table whole (see [`finish_table`](Self::finish_table)).
    pub fn write_table(
        &mut self,
        stage: &StageRef<'_>,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), OutputError> {
        let mut writer = self.table_writer(stage, schema)?;
        for batch in &batches {
            writer.write(batch)?;
        }
        self.finish_table(stage, writer, batches)
    }
}

/// A pipeline whose configuration, references and models have been checked.
pub struct Pipeline {
    pub config: PipelineConfig,
    pub path: PathBuf,
    pub plan: Vec<(String, StagePlan)>,
    models: BTreeMap<String, LoadedModel>,
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub tables: Vec<PathBuf>,
    pub seconds: f64,
}

impl Pipeline {
    /// Parses the file, applies overrides, loads the models and plans every stage.
    pub fn open(path: &Path, overrides: &[String]) -> Result<Self, Error> {
        let config = PipelineConfig::load(path, overrides)?;
        tracing::debug!(
            data_dir = %config.data_dir.display(),
            output_dir = %config.output_dir.display(),
            "read pipeline {} from {}",
            config.name,
            path.display()
        );
        let mut names = BTreeSet::new();
        for stage in &config.stages {
            if !names.insert(stage.name.as_str()) {
                return Err(ConfigError::Invalid {
                    key: format!("stages.{}", stage.name),
                    message: "two stages have this name".into(),
                }
                .into());
            }
        }
        for (name, input) in &config.inputs {
            input.format(&format!("inputs.{name}"))?;
        }
        let mut models = BTreeMap::new();
        for (name, model) in &config.models {
            for (option, path) in [("weights", &model.weights), ("vocab", &model.vocab)] {
                if !path.is_file() {
                    return Err(config
                        .missing_file(&format!("models.{name}.{option}"), path)
                        .into());
                }
            }
            models.insert(
                name.clone(),
                LoadedModel::load(&model.weights, &model.vocab)?,
            );
        }
        let mut plan: Vec<(String, StagePlan)> = Vec::new();
        for stage in &config.stages {
            let stage_ref = StageRef {
                name: &stage.name,
                kind: stage.kind.name(),
            };
            let context = PlanContext {
                config: &config,
                models: &models,
                earlier: &plan,
            };
            let stage_plan = stage.kind.stage().plan(&stage_ref, &context)?;
            tracing::debug!("planned stage {}: {}", stage.name, stage_plan.summary);
            plan.push((stage.name.clone(), stage_plan));
        }
        for name in plan
            .iter()
            .flat_map(|(_, p)| p.input.iter().chain(&p.reads_inputs))
        {
            let input = &config.inputs[name];
            let files = [
                ("path", Some(&input.path)),
                ("exclude_in", input.exclude_in.as_ref()),
            ];
            for (option, path) in files {
                if let Some(path) = path.filter(|p| !p.is_file()) {
                    return Err(config
                        .missing_file(&format!("inputs.{name}.{option}"), path)
                        .into());
                }
            }
        }
        let pipeline = Self {
            config,
            path: path.to_path_buf(),
            plan,
            models,
        };
        let mut tables = BTreeSet::new();
        for table in pipeline.table_paths(Path::new("")) {
            if !tables.insert(table.clone()) {
                return Err(ConfigError::Invalid {
                    key: "stages".into(),
                    message: format!("two tables would be written to {}", table.display()),
                }
                .into());
            }
        }
        Ok(pipeline)
    }

    /// The plan as text: inputs, models, stages and the tables they write.
    pub fn describe(&self, output_dir: &Path) -> Result<String, Error> {
        let mut text = format!("pipeline {} ({})\n", self.config.name, self.path.display());
        text += "inputs:\n";
        for input in self.used_inputs() {
            let config = &self.config.inputs[&input];
            let format = config.format(&input).map_or("?", |format| format.name());
            text += &format!("  {input}: {format} {}", config.path.display());
            if let Some(split) = &config.split {
                text += &format!(", split {split}");
            }
            if let Some(other) = &config.exclude_in {
                text += &format!(", without the sentences of {}", other.display());
            }
            if let Some(sample) = config.sample {
                text += &format!(
                    ", then every {} sentence from position {}",
                    ordinal(sample.every),
                    sample.offset
                );
            }
            text += "\n";
        }
        text += "models:\n";
        for (name, loaded) in &self.models {
            let m = &loaded.model;
            text += &format!(
                "  {name}: {} (vocabulary {}, embedding {}, hidden {}, classes {})\n",
                loaded.weights.display(),
                m.vocab_size(),
                m.embedding_dim(),
                m.hidden_size(),
                m.num_classes()
            );
        }
        let cache = self.model_cache(output_dir);
        for stage in &self.config.stages {
            let stage_ref = StageRef {
                name: &stage.name,
                kind: stage.kind.name(),
            };
            if let Some(cached) =
                stage
                    .kind
                    .stage()
                    .cached_model(&stage_ref, &self.config, &cache)?
            {
                let status = if cached.present {
                    "in the model cache: will be reused"
                } else {
                    "not in the model cache: will be trained"
                };
                text += &format!(
                    "  {}: trained by stage {}, {status} ({})\n",
                    stage.name,
                    stage.name,
                    cached.folder.display()
                );
            }
        }
        text += "stages:\n";
        for (k, (name, plan)) in self.plan.iter().enumerate() {
            text += &format!("  {}. {name}: {}\n", k + 1, plan.summary);
        }
        text += &format!("output: {}\n", output_dir.display());
        for table in self.table_paths(output_dir) {
            text += &format!("  {}\n", table.display());
        }
        Ok(text)
    }

    fn used_inputs(&self) -> BTreeSet<String> {
        self.plan
            .iter()
            .flat_map(|(_, p)| p.input.iter().chain(&p.reads_inputs).cloned())
            .collect()
    }

    /// Every file a run writes (tables, and other files such as trained models), in the order it
    /// writes them.
    pub fn table_paths(&self, output_dir: &Path) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for input in self.used_inputs() {
            paths.push(output_dir.join(format!("{input}_sentences.parquet")));
            if self.config.inputs[&input].format(&input).ok() == Some(crate::data::Format::SstTrees)
            {
                paths.push(output_dir.join(format!("{input}_constituents.parquet")));
            }
        }
        for (name, plan) in &self.plan {
            paths.push(output_dir.join(format!("{name}.parquet")));
            for (suffix, _) in &plan.extra_tables {
                paths.push(output_dir.join(format!("{name}_{suffix}.parquet")));
            }
            paths.extend(plan.files.iter().map(|file| output_dir.join(file)));
        }
        if self
            .plan
            .iter()
            .any(|(_, p)| p.input.is_some() && p.model.is_some())
        {
            paths.push(output_dir.join(COVERAGE_TABLE));
        }
        paths
    }

    /// Where training stages keep their models: the file's `model_cache`, else
    /// `<output_dir>/models`.
    pub fn model_cache(&self, output_dir: &Path) -> PathBuf {
        self.config
            .model_cache
            .clone()
            .unwrap_or_else(|| output_dir.join("models"))
    }

    /// Checks that every file the run writes can be written (and, when a stage trains, that the
    /// model cache can), before anything is read or computed.
    fn check_outputs(&self, output_dir: &Path) -> Result<(), OutputError> {
        let mut destinations = self.table_paths(output_dir);
        if self.plan.iter().any(|(_, p)| p.trains_model) {
            destinations.push(self.model_cache(output_dir).join("write-check"));
        }
        check_writable(&destinations)
    }

    /// Reads the inputs, runs every stage on the current rayon pool and publishes the tables;
    /// on any error nothing is published.
    pub fn run(self, output_dir: Option<&Path>) -> Result<RunSummary, Error> {
        let started = Instant::now();
        let output_dir =
            output_dir.map_or_else(|| self.config.output_dir.clone(), Path::to_path_buf);
        self.check_outputs(&output_dir)?;
        let mut corpora = BTreeMap::new();
        let mut excluded: Vec<(&PathBuf, crate::data::Format, Corpus)> = Vec::new();
        for input in self.used_inputs() {
            let config = &self.config.inputs[&input];
            let format = config.format(&format!("inputs.{input}"))?;
            let mut corpus = Corpus::read(&input, &config.path, format, config.split.as_deref())?;
            if let Some(other) = &config.exclude_in {
                // Two inputs cut from one file usually exclude the same other file: read it once.
                let position = match excluded
                    .iter()
                    .position(|(p, f, _)| *p == other && *f == format)
                {
                    Some(position) => position,
                    None => {
                        excluded.push((other, format, Corpus::read(&input, other, format, None)?));
                        excluded.len() - 1
                    }
                };
                let dropped = corpus.exclude(&excluded[position].2);
                tracing::info!(
                    dropped,
                    "input {input}: sentences also in {}",
                    other.display()
                );
            }
            if let Some(sample) = config.sample {
                corpus.sample(sample.every, sample.offset);
            }
            tracing::info!(
                sentences = corpus.sentences.len(),
                "read input {input} from {}",
                config.path.display()
            );
            if corpus.sentences.is_empty() {
                tracing::warn!(
                    "input {input} has no sentences ({}): its stages produce empty tables",
                    config.path.display()
                );
            }
            corpora.insert(input, corpus);
        }
        let keep_tables = self
            .plan
            .iter()
            .flat_map(|(_, p)| p.reads_tables.iter().cloned())
            .collect();
        let mut context = RunContext {
            output_dir: output_dir.clone(),
            config: self.config.clone(),
            corpora,
            model_cache: self.model_cache(&output_dir),
            models: self.models,
            scores: HashMap::new(),
            phrases: HashMap::new(),
            coefficients: HashMap::new(),
            tables: HashMap::new(),
            coverage: BTreeMap::new(),
            keep_tables,
            pending: Vec::new(),
            metadata: vec![
                ("pipeline".into(), self.config.name.clone()),
                ("pipeline_file".into(), self.path.display().to_string()),
            ],
        };
        write_corpus_tables(&mut context)?;
        for stage in &self.config.stages {
            let stage_ref = StageRef {
                name: &stage.name,
                kind: stage.kind.name(),
            };
            let stage_started = Instant::now();
            stage.kind.stage().run(&stage_ref, &mut context)?;
            tracing::info!(
                seconds = format!("{:.2}", stage_started.elapsed().as_secs_f64()),
                "stage {} ({}) done",
                stage.name,
                stage_ref.kind
            );
        }
        write_coverage_table(&mut context)?;
        let tables = publish_all(context.pending)?;
        Ok(RunSummary {
            tables,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// "2nd", "3rd", "11th", ...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The run's `vocabulary_coverage` table, when a stage encoded an input with a model.
fn write_coverage_table(context: &mut RunContext) -> Result<(), OutputError> {
    if context.coverage.is_empty() {
        return Ok(());
    }
    let rows: Vec<CoverageRecord<'_>> = context
        .coverage
        .iter()
        .map(|((input, model), coverage)| CoverageRecord {
            dataset: input,
            model,
            vocabulary: context.models[model].vocab.path(),
            coverage,
        })
        .collect();
    let metadata: Vec<(&str, String)> = context
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let table = write_table(
        &context.output_dir.join(COVERAGE_TABLE),
        vocabulary_coverage_schema(),
        &[vocabulary_coverage_batch(&rows)?],
        &metadata,
    )?;
    context.pending.push(table);
    Ok(())
}

/// The `<input>_sentences` and `<input>_constituents` tables of every input read.
fn write_corpus_tables(context: &mut RunContext) -> Result<(), OutputError> {
    for (name, corpus) in &context.corpora {
        let metadata: Vec<(&str, String)> = context
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .chain([("input", name.clone())])
            .collect();
        let path = context.output_dir.join(format!("{name}_sentences.parquet"));
        context.pending.push(write_table(
            &path,
            sentences_schema(),
            &[sentences_batch(corpus)?],
            &metadata,
        )?);
        if let Some(batch) = constituents_batch(corpus)? {
            let path = context
                .output_dir
                .join(format!("{name}_constituents.parquet"));
            context.pending.push(write_table(
                &path,
                constituents_schema(),
                &[batch],
                &metadata,
            )?);
        }
    }
    Ok(())
}
