//! A pipeline run: opening and planning a file, then reading inputs, running stages and
//! publishing their files as one unit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::{
    Artefact, ArtefactKind, Artefacts, LoadedModel, PipelineFile, PlanContext, StagePlan, StageRef,
};
use crate::Error;
use crate::config::ConfigError;
use crate::data::{Corpus, InputError};
use crate::io::{
    CoverageRecord, OutputError, ParquetTableWriter, PendingFile, check_writable,
    constituents_batch, constituents_schema, publish_all, sentences_batch, sentences_schema,
    vocabulary_coverage_batch, vocabulary_coverage_schema, write_table,
};
use crate::model::Coverage;
use crate::progress::Progress;

/// The run's table of what each vocabulary made of each input (`schemas/vocabulary_coverage.yaml`).
const COVERAGE_TABLE: &str = "vocabulary_coverage.parquet";

/// What the run was and how long each stage took, for the report (`RunRecord`).
pub const RUN_RECORD: &str = "run.json";

/// The contents of `run.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    pub description: Option<String>,
    pub pipeline_file: String,
    pub cd_pipeline_version: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub seconds: f64,
    pub threads: usize,
    pub inputs: Vec<InputRecord>,
    pub stages: Vec<StageRecord>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InputRecord {
    pub name: String,
    pub path: String,
    pub sentences: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub kind: String,
    pub seconds: f64,
}

/// Everything a stage can use while running.
pub struct RunContext {
    pub config: PipelineFile,
    pub output_dir: PathBuf,
    pub corpora: BTreeMap<String, Corpus>,
    /// Where training stages keep their models, by content hash.
    pub model_cache: PathBuf,
    /// What stages provide to later ones, and the models under `models`.
    pub artefacts: Artefacts,
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
        let encoded = self.artefacts.model(model).vocab.encode(
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
            self.artefacts.insert(stage.name, Artefact::Table(kept));
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
    pub config: PipelineFile,
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
        let config = PipelineFile::load(path, overrides)?;
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
        // Every declared reference is to something provided before (stages check what they read
        // as they plan; this holds them to what they declare).
        for (k, (name, stage_plan)) in plan.iter().enumerate() {
            for (source, kind) in &stage_plan.reads {
                let provided = models.contains_key(source) && *kind == ArtefactKind::Model
                    || plan[..k]
                        .iter()
                        .any(|(n, p)| n == source && p.provided(*kind).is_some());
                if !provided {
                    return Err(ConfigError::Invalid {
                        key: format!("stages.{name}"),
                        message: format!(
                            "reads {kind} of `{source}`, which nothing before it provides"
                        ),
                    }
                    .into());
                }
            }
        }
        for name in plan.iter().flat_map(|(_, p)| &p.inputs) {
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
            .flat_map(|(_, p)| p.inputs.iter().cloned())
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
        for (_, plan) in &self.plan {
            for (stem, _) in &plan.tables {
                paths.push(output_dir.join(format!("{stem}.parquet")));
            }
            paths.extend(plan.files.iter().map(|file| output_dir.join(file)));
        }
        if self.encodes() {
            paths.push(output_dir.join(COVERAGE_TABLE));
        }
        paths.push(output_dir.join(RUN_RECORD));
        paths
    }

    /// Whether a stage encodes an input with a model's vocabulary (so the run writes
    /// `vocabulary_coverage`).
    fn encodes(&self) -> bool {
        self.plan
            .iter()
            .any(|(_, p)| p.reads.iter().any(|(_, kind)| *kind == ArtefactKind::Model))
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
        if self
            .plan
            .iter()
            .any(|(_, p)| p.provided(ArtefactKind::Model).is_some())
        {
            destinations.push(self.model_cache(output_dir).join("write-check"));
        }
        check_writable(&destinations)
    }

    /// Reads the inputs, runs every stage on the current rayon pool and publishes the tables;
    /// on any error nothing is published.
    pub fn run(self, output_dir: Option<&Path>) -> Result<RunSummary, Error> {
        let started = Instant::now();
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
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
            .flat_map(|(_, p)| &p.reads)
            .filter(|(_, kind)| *kind == ArtefactKind::Table)
            .map(|(name, _)| name.clone())
            .collect();
        let model_cache = self.model_cache(&output_dir);
        let mut artefacts = Artefacts::default();
        for (name, loaded) in self.models {
            artefacts.insert(&name, Artefact::Model(Box::new(loaded)));
        }
        let mut context = RunContext {
            config: self.config.clone(),
            output_dir: output_dir.clone(),
            corpora,
            model_cache,
            artefacts,
            coverage: BTreeMap::new(),
            keep_tables,
            pending: Vec::new(),
            metadata: vec![
                ("pipeline".into(), self.config.name.clone()),
                ("pipeline_file".into(), self.path.display().to_string()),
            ],
        };
        write_corpus_tables(&mut context)?;
        let mut record = RunRecord {
            pipeline: self.config.name.clone(),
            description: self.config.description.clone(),
            pipeline_file: self.path.display().to_string(),
            cd_pipeline_version: env!("CARGO_PKG_VERSION").into(),
            started_at,
            seconds: 0.0,
            threads: rayon::current_num_threads(),
            inputs: context
                .corpora
                .iter()
                .map(|(name, corpus)| InputRecord {
                    name: name.clone(),
                    path: corpus.path.display().to_string(),
                    sentences: corpus.sentences.len(),
                })
                .collect(),
            stages: Vec::new(),
        };
        let progress = Progress::unestimated(
            tracing::info_span!("stages", indicatif.pb_show = true),
            "stages",
            self.config.stages.len(),
            self.config.name.clone(),
        );
        for stage in &self.config.stages {
            let stage_ref = StageRef {
                name: &stage.name,
                kind: stage.kind.name(),
            };
            progress.message(&format!(
                "{}: {} ({})",
                self.config.name, stage.name, stage_ref.kind
            ));
            let stage_started = Instant::now();
            stage.kind.stage().run(&stage_ref, &mut context)?;
            let seconds = stage_started.elapsed().as_secs_f64();
            record.stages.push(StageRecord {
                name: stage.name.clone(),
                kind: stage_ref.kind.into(),
                seconds,
            });
            tracing::info!(
                seconds = format!("{seconds:.2}"),
                "stage {} ({}) done",
                stage.name,
                stage_ref.kind
            );
            progress.advance(1);
        }
        drop(progress);
        write_coverage_table(&mut context)?;
        record.seconds = started.elapsed().as_secs_f64();
        let json = serde_json::to_vec_pretty(&record).expect("a run record serialises");
        context.write_file(RUN_RECORD, &json)?;
        let tables = publish_all(context.pending)?;
        for stage in &self.config.stages {
            let stage_ref = StageRef {
                name: &stage.name,
                kind: stage.kind.name(),
            };
            stage
                .kind
                .stage()
                .after_publish(&stage_ref, &self.config, &output_dir)?;
        }
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
            vocabulary: context.artefacts.model(model).vocab.path(),
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
