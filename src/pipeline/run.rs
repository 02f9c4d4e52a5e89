//! A pipeline run: opening and planning a file, then reading inputs, running stages and
//! publishing their files as one unit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::manifest::{FileHashes, GIT_COMMIT, sha256_hex};
use super::store::{CoverageEntry, StageOutcome, Store, StoredFile};
use super::stream::{BATCH_SENTENCES, StreamedInput};
use super::{
    Artefact, ArtefactKind, Artefacts, InputRecord, LoadedModel, MANIFEST, Manifest, PipelineFile,
    PlanContext, RunMode, Scope, Shard, StagePlan, StageRecord, StageRef, snapshot,
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

/// Where a sharded run's manifests go: `shards/shard=<i>/manifest.json`, and
/// `shards/prepare/manifest.json` for the stages run before the fan-out.
const SHARDS_DIR: &str = "shards";

/// Bumped when a stage's results change for the same options and data, so that stored results
/// of older versions are not reused.
const STAGE_KEY_VERSION: &str = "cd-pipeline stage key 1";

/// Everything a stage can use while running.
pub struct RunContext {
    pub config: PipelineFile,
    pub output_dir: PathBuf,
    pub corpora: BTreeMap<String, Corpus>,
    /// The inputs read in batches, never whole (not in `corpora`).
    streams: BTreeMap<String, StreamedInput>,
    /// Where training stages keep their models, by content hash.
    pub model_cache: PathBuf,
    /// What stages provide to later ones, and the models under `models`.
    pub artefacts: Artefacts,
    /// What each model's vocabulary made of each input it encoded.
    coverage: BTreeMap<(String, String), Coverage>,
    keep_tables: BTreeSet<String>,
    pending: Vec<PendingFile>,
    metadata: Vec<(String, String)>,
    /// What the running stage encoded (input, model), for its record in the store.
    stage_encoded: BTreeSet<(String, String)>,
    /// The running stage's folder in the store, where its files are written.
    stage_dir: PathBuf,
    stage_key: String,
}

impl RunContext {
    pub fn corpus(&self, name: &str) -> &Corpus {
        &self.corpora[name]
    }

    /// The input, when the run streams it: a stage then reads it in batches instead of
    /// [`corpus`](Self::corpus).
    pub fn stream(&self, name: &str) -> Option<&StreamedInput> {
        self.streams.get(name)
    }

    /// Records what a model's vocabulary made of a streamed input, which its stage encoded
    /// batch by batch.
    pub fn add_coverage(&mut self, input: &str, model: &str, coverage: Coverage) {
        let key = (input.to_string(), model.to_string());
        self.stage_encoded.insert(key.clone());
        self.coverage.insert(key, coverage);
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
        let key = (input.to_string(), model.to_string());
        self.stage_encoded.insert(key.clone());
        self.coverage.insert(key, encoded.coverage);
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
        let path = self.stage_dir.join(format!("{file_stem}.parquet"));
        let mut metadata = self.metadata.clone();
        metadata.push(("stage".into(), stage.name.into()));
        metadata.push(("stage_kind".into(), stage.kind.into()));
        metadata.push(("stage_key".into(), self.stage_key.clone()));
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

    /// Where the running stage may keep completed parts of long work: a rerun after a kill finds
    /// them there (and they go once the stage completes).
    pub fn checkpoints(&self) -> PathBuf {
        Store::parts(&self.stage_dir)
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
        let path = self.stage_dir.join(name);
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
        let (keys, _) = self.stage_keys(&mut FileHashes::default(), None, None)?;
        let store = Store::new(output_dir);
        let complete: Vec<&str> = self
            .config
            .stages
            .iter()
            .zip(&keys)
            .filter(|(stage, key)| {
                Store::completed(&store.stage_folder(&stage.name, key), key).is_some()
            })
            .map(|(stage, _)| stage.name.as_str())
            .collect();
        text += &match complete.as_slice() {
            [] => "stage store: nothing complete under these keys: a run computes every stage\n"
                .to_string(),
            names => format!(
                "stage store: {} of {} stages complete under their keys: a run reuses {}\n",
                names.len(),
                keys.len(),
                names.join(", ")
            ),
        };
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
        paths.push(output_dir.join(MANIFEST));
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
    fn check_outputs(
        &self,
        output_dir: &Path,
        mode: RunMode,
        actions: &[Action],
    ) -> Result<(), OutputError> {
        let mut destinations = match mode {
            RunMode::Whole | RunMode::Reduce => self.table_paths(output_dir),
            RunMode::Prepare => vec![output_dir.join(SHARDS_DIR).join("prepare").join(MANIFEST)],
            RunMode::Shard(shard) => {
                let mut paths: Vec<PathBuf> = self
                    .plan
                    .iter()
                    .zip(&self.config.stages)
                    .filter(|(_, stage)| stage.kind.stage().scope() == Scope::PerSentence)
                    .flat_map(|((_, plan), _)| &plan.tables)
                    .map(|(stem, _)| {
                        output_dir
                            .join(stem)
                            .join(shard.partition())
                            .join("part-0.parquet")
                    })
                    .collect();
                paths.push(
                    output_dir
                        .join(SHARDS_DIR)
                        .join(shard.partition())
                        .join(MANIFEST),
                );
                paths
            }
        };
        let trains = self.plan.iter().zip(actions).any(|((_, p), action)| {
            *action == Action::Compute && p.provided(ArtefactKind::Model).is_some()
        });
        if trains {
            destinations.push(self.model_cache(output_dir).join("write-check"));
        }
        destinations.push(output_dir.join(super::STORE_DIR).join("write-check"));
        check_writable(&destinations)
    }

    /// Reads the inputs, runs every stage of `mode` on the current rayon pool and publishes the
    /// tables; on any error nothing is published. Stages complete under their key from an
    /// earlier run (killed or not) are reused instead of recomputed.
    pub fn run(self, output_dir: Option<&Path>, mode: RunMode) -> Result<RunSummary, Error> {
        let started_at = unix_now();
        let output_dir =
            output_dir.map_or_else(|| self.config.output_dir.clone(), Path::to_path_buf);
        let store = Store::new(&output_dir);
        let actions = self.actions(mode)?;
        if let Err(e) = self.check_outputs(&output_dir, mode, &actions) {
            store.remove_if_empty();
            return Err(e.into());
        }
        let lock_name = match mode {
            RunMode::Shard(shard) => format!("shard-{}", shard.index),
            _ => "run".to_string(),
        };
        let lock = store.lock_run(
            &lock_name,
            &format!(
                "pid {}, {} run of {} started {}",
                std::process::id(),
                mode.name(),
                self.path.display(),
                super::manifest::utc(started_at)
            ),
        );
        if lock.is_err() {
            store.remove_if_empty();
        }
        let lock = lock?;
        // A killed run of this lock's holder may have left its own files half-made.
        let _ = std::fs::remove_dir_all(store.run_files(&lock_name));
        let result = self.run_locked(&output_dir, &store, mode, &actions, &lock_name, started_at);
        if result.is_err() {
            // A run that failed before any stage leaves the output folder as it found it.
            store.release_unused(&lock_name);
        }
        drop(lock);
        result
    }

    fn run_locked(
        self,
        output_dir: &Path,
        store: &Store,
        mode: RunMode,
        actions: &[Action],
        lock_name: &str,
        started_at: u64,
    ) -> Result<RunSummary, Error> {
        let started = Instant::now();
        let output_dir = output_dir.to_path_buf();
        let shards = match mode {
            RunMode::Reduce => Some(shard_count(&output_dir, &self.config.name)?),
            _ => None,
        };
        let mut hashes = FileHashes::default();
        let (keys, shard_keys) = self.stage_keys(&mut hashes, mode.shard(), shards)?;
        let (corpora, streamed) = self.read_inputs(&mut hashes, mode.shard())?;
        let streamed_counts: BTreeMap<String, (PathBuf, usize)> = streamed
            .iter()
            .map(|(name, (stream, sentences))| (name.clone(), (stream.path.clone(), *sentences)))
            .collect();
        let streams = streamed
            .into_iter()
            .map(|(name, (stream, _))| (name, stream))
            .collect();
        let keep_tables = self
            .plan
            .iter()
            .flat_map(|(_, p)| &p.reads)
            .filter(|(_, kind)| *kind == ArtefactKind::Table)
            .map(|(name, _)| name.clone())
            .collect();
        let model_cache = self.model_cache(&output_dir);
        let mut metadata = vec![
            ("pipeline".into(), self.config.name.clone()),
            ("pipeline_file".into(), self.path.display().to_string()),
            ("git_commit".into(), GIT_COMMIT.to_string()),
            ("run_started_at".into(), started_at.to_string()),
        ];
        if let Some(shard) = mode.shard() {
            metadata.push(("shard".into(), shard.to_string()));
        }
        let Pipeline {
            config,
            path,
            plan,
            models,
        } = self;
        let mut artefacts = Artefacts::default();
        for (name, loaded) in models {
            artefacts.insert(&name, Artefact::Model(Box::new(loaded)));
        }
        let shard_corpora = mode.shard().map(|shard| {
            corpora
                .iter()
                .map(|(name, corpus)| (name.clone(), corpus.subset(|s| shard.holds(&s.id))))
                .collect::<BTreeMap<_, _>>()
        });
        let mut context = RunContext {
            config: config.clone(),
            output_dir: output_dir.clone(),
            corpora,
            streams,
            model_cache,
            artefacts,
            coverage: BTreeMap::new(),
            keep_tables,
            pending: Vec::new(),
            metadata,
            stage_encoded: BTreeSet::new(),
            stage_dir: PathBuf::new(),
            stage_key: String::new(),
        };
        let mut manifest = Manifest {
            pipeline: config.name.clone(),
            description: config.description.clone(),
            pipeline_file: path.display().to_string(),
            overrides: config.overrides.clone(),
            config: config.tree.clone(),
            cd_pipeline_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: GIT_COMMIT.into(),
            mode: mode.name().into(),
            shard: mode.shard(),
            shards,
            threads: rayon::current_num_threads(),
            seeds: seeds(&config),
            started_at,
            finished_at: 0,
            seconds: 0.0,
            files_read: Vec::new(),
            inputs: Vec::new(),
            stages: Vec::new(),
        };
        let runner = Runner {
            config: &config,
            plan: &plan,
            store,
            keys: &keys,
            shard_keys: &shard_keys,
            shards,
        };
        let progress = Progress::unestimated(
            tracing::info_span!("stages", indicatif.pb_show = true),
            "stages",
            config.stages.len(),
            config.name.clone(),
        );
        let mut published: Vec<(usize, PathBuf, StageOutcome)> = Vec::new();
        // A reduce's per-sentence stages: each shard's folder, republished as its partitions.
        let mut shard_files: Vec<ShardResult> = Vec::new();
        for (k, stage) in config.stages.iter().enumerate() {
            let stage_ref = StageRef {
                name: &stage.name,
                kind: stage.kind.name(),
            };
            let scope = stage.kind.stage().scope();
            progress.message(&format!(
                "{}: {} ({})",
                config.name, stage.name, stage_ref.kind
            ));
            let stage_started = Instant::now();
            let (status, outcome) = match actions[k] {
                Action::NotRun => ("not run", None),
                Action::FromShards => {
                    let (merged, shards) = runner.merge_shards(k, &mut context)?;
                    for (shard, folder, outcome) in shards {
                        shard_files.push((shard, folder, outcome));
                    }
                    ("merged", Some(merged))
                }
                Action::Compute => {
                    let (status, folder, outcome) = match &shard_corpora {
                        Some(sharded) if scope == Scope::PerSentence => {
                            // The stage sees only the shard's sentences.
                            let whole = std::mem::replace(&mut context.corpora, sharded.clone());
                            let result = runner.compute_or_reuse(k, &mut context, &mut hashes);
                            context.corpora = whole;
                            result?
                        }
                        _ => runner.compute_or_reuse(k, &mut context, &mut hashes)?,
                    };
                    published.push((k, folder, outcome.clone()));
                    (status, Some(outcome))
                }
            };
            let seconds = stage_started.elapsed().as_secs_f64();
            if status != "not run" {
                tracing::info!(
                    seconds = format!("{seconds:.2}"),
                    key = &keys[k][..16],
                    "stage {} ({}) {status}",
                    stage.name,
                    stage_ref.kind
                );
            }
            manifest.stages.push(StageRecord {
                name: stage.name.clone(),
                kind: stage_ref.kind.into(),
                scope: match scope {
                    Scope::PerSentence => "per_sentence".into(),
                    Scope::AllSentences => "all_sentences".into(),
                },
                key: keys[k].clone(),
                status: status.into(),
                rows: outcome.map_or_else(BTreeMap::new, |o| {
                    o.files
                        .iter()
                        .filter_map(|f| Some((f.name.clone(), f.rows?)))
                        .collect()
                }),
                seconds,
            });
            progress.advance(1);
        }
        drop(progress);
        // The run's own files are made in the store too, then published with the stages'.
        let run_files = store.run_files(lock_name);
        context.stage_dir = run_files.clone();
        context.stage_key = String::new();
        let manifest_path = match mode {
            RunMode::Whole | RunMode::Reduce => {
                write_corpus_tables(&mut context)?;
                write_coverage_table(&mut context)?;
                output_dir.join(MANIFEST)
            }
            RunMode::Prepare => output_dir.join(SHARDS_DIR).join("prepare").join(MANIFEST),
            RunMode::Shard(shard) => output_dir
                .join(SHARDS_DIR)
                .join(shard.partition())
                .join(MANIFEST),
        };
        let mut run_pending = std::mem::take(&mut context.pending);
        for (k, folder, outcome) in &published {
            let per_sentence = config.stages[*k].kind.stage().scope() == Scope::PerSentence;
            for file in &outcome.files {
                let destination = match mode {
                    RunMode::Whole | RunMode::Reduce => output_dir.join(&file.name),
                    RunMode::Shard(shard) if per_sentence => {
                        partition_path(&output_dir, &file.name, shard)
                    }
                    // Whole-data stages of a shard or prepare run stay in the store until the
                    // reduce publishes them.
                    RunMode::Shard(_) | RunMode::Prepare => continue,
                };
                context
                    .pending
                    .push(PendingFile::link(&folder.join(&file.name), &destination)?);
            }
        }
        for (shard, folder, outcome) in &shard_files {
            for file in &outcome.files {
                context.pending.push(PendingFile::link(
                    &folder.join(&file.name),
                    &partition_path(&output_dir, &file.name, *shard),
                )?);
            }
        }
        manifest.inputs = context
            .corpora
            .iter()
            .map(|(name, corpus)| InputRecord {
                name: name.clone(),
                path: corpus.path.display().to_string(),
                sentences: match &shard_corpora {
                    Some(sharded) => sharded[name].sentences.len(),
                    None => corpus.sentences.len(),
                },
            })
            .chain(
                streamed_counts
                    .iter()
                    .map(|(name, (path, sentences))| InputRecord {
                        name: name.clone(),
                        path: path.display().to_string(),
                        sentences: *sentences,
                    }),
            )
            .collect();
        manifest.inputs.sort_by(|a, b| a.name.cmp(&b.name));
        manifest.files_read = hashes.records;
        manifest.finished_at = unix_now();
        manifest.seconds = started.elapsed().as_secs_f64();
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        run_pending.push(PendingFile::write(&run_files.join(MANIFEST), &json)?);
        let mut publish = std::mem::take(&mut context.pending);
        for made in publish_all(run_pending)? {
            let name = made.file_name().expect("a file");
            let destination = if name == MANIFEST {
                manifest_path.clone()
            } else {
                output_dir.join(name)
            };
            publish.push(PendingFile::link(&made, &destination)?);
        }
        let tables = publish_all(publish)?;
        let _ = std::fs::remove_dir_all(&run_files);
        if matches!(mode, RunMode::Whole | RunMode::Reduce) {
            remove_stale_tables(&output_dir, &config, &plan, shards);
        }
        if matches!(mode, RunMode::Whole | RunMode::Reduce) {
            for stage in &config.stages {
                let stage_ref = StageRef {
                    name: &stage.name,
                    kind: stage.kind.name(),
                };
                stage
                    .kind
                    .stage()
                    .after_publish(&stage_ref, &config, &output_dir)?;
            }
        }
        Ok(RunSummary {
            tables,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// What `mode` does with each stage. A sharded pipeline's whole-data stages that a
    /// per-sentence stage reads run before the fan-out (and in every shard, reused); the others
    /// run in the reduce.
    fn actions(&self, mode: RunMode) -> Result<Vec<Action>, ConfigError> {
        let scopes: Vec<Scope> = self
            .config
            .stages
            .iter()
            .map(|s| s.kind.stage().scope())
            .collect();
        // The whole-data stages per-sentence stages read, directly or through each other.
        let mut upstream = vec![false; scopes.len()];
        let mut needed: BTreeSet<&str> = BTreeSet::new();
        for (k, (name, plan)) in self.plan.iter().enumerate().rev() {
            if scopes[k] == Scope::PerSentence || needed.contains(name.as_str()) {
                if scopes[k] == Scope::AllSentences {
                    upstream[k] = true;
                }
                needed.extend(plan.reads.iter().map(|(source, _)| source.as_str()));
            }
        }
        if mode != RunMode::Whole {
            for (k, (name, plan)) in self.plan.iter().enumerate() {
                let reads_per_sentence = plan.reads.iter().find(|(source, _)| {
                    self.plan
                        .iter()
                        .position(|(n, _)| n == source)
                        .is_some_and(|j| scopes[j] == Scope::PerSentence)
                });
                if let (true, Some((source, _))) = (upstream[k], reads_per_sentence) {
                    return Err(ConfigError::Invalid {
                        key: format!("stages.{name}"),
                        message: format!(
                            "needs every sentence of `{source}`, which runs per shard, yet a per-sentence stage reads it: this pipeline cannot be sharded"
                        ),
                    });
                }
            }
        }
        Ok(scopes
            .iter()
            .zip(&upstream)
            .map(|(scope, &upstream)| match (mode, scope) {
                (RunMode::Whole, _) => Action::Compute,
                (RunMode::Prepare | RunMode::Shard(_), _) if upstream => Action::Compute,
                (RunMode::Shard(_), Scope::PerSentence) => Action::Compute,
                (RunMode::Reduce, Scope::PerSentence) => Action::FromShards,
                (RunMode::Reduce, Scope::AllSentences) => Action::Compute,
                (RunMode::Prepare | RunMode::Shard(_), _) => Action::NotRun,
            })
            .collect())
    }

    /// Each stage's key: SHA-256 of its options as given, of the content and reading options of
    /// its inputs, of the models and files it reads and of the keys of the stages it reads; a
    /// per-sentence stage's key also names its shard. A reduce's per-sentence stage hashes the
    /// keys of all its shards.
    fn stage_keys(
        &self,
        hashes: &mut FileHashes,
        shard: Option<Shard>,
        shards: Option<usize>,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), Error> {
        let per_shard: Vec<Vec<String>> = match shards {
            Some(count) => (0..count)
                .map(|index| {
                    self.stage_keys(hashes, Some(Shard { index, count }), None)
                        .map(|(keys, _)| keys)
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let mut keys: Vec<String> = Vec::new();
        for (k, (stage, (_, plan))) in self.config.stages.iter().zip(&self.plan).enumerate() {
            let per_sentence = stage.kind.stage().scope() == Scope::PerSentence;
            if per_sentence && !per_shard.is_empty() {
                let joined: Vec<&str> = per_shard.iter().map(|keys| keys[k].as_str()).collect();
                keys.push(sha256_hex(&format!("shards\n{}", joined.join("\n"))));
                continue;
            }
            let mut material = format!("{STAGE_KEY_VERSION}\n{}\n", self.config.tree["stages"][k]);
            for name in &plan.inputs {
                let input = &self.config.inputs[name];
                let mut options = self.config.tree["inputs"][name].clone();
                if let Some(options) = options.as_object_mut() {
                    // The files are hashed by content, wherever they are.
                    options.remove("path");
                    options.remove("exclude_in");
                }
                material += &format!("input {name} {options}");
                material += &format!(
                    " {}",
                    hashes.hash(&input.path, &format!("inputs.{name}.path"))?
                );
                if let Some(other) = &input.exclude_in {
                    material += &format!(
                        " {}",
                        hashes.hash(other, &format!("inputs.{name}.exclude_in"))?
                    );
                }
                material += "\n";
            }
            for (source, kind) in &plan.reads {
                match self.plan.iter().position(|(n, _)| n == source) {
                    Some(j) if j < k => material += &format!("stage {source} {}\n", keys[j]),
                    _ => {
                        let model = &self.config.models[source];
                        debug_assert_eq!(*kind, ArtefactKind::Model);
                        let weights =
                            hashes.hash(&model.weights, &format!("models.{source}.weights"))?;
                        let vocab = hashes.hash(&model.vocab, &format!("models.{source}.vocab"))?;
                        material += &format!("model {source} {weights} {vocab}\n");
                    }
                }
            }
            for file in &plan.data_files {
                material += &format!(
                    "file {}\n",
                    hashes.hash(file, &format!("stages.{}", stage.name))?
                );
            }
            if let (true, Some(shard)) = (per_sentence, shard) {
                material += &format!("shard {shard}\n");
            }
            keys.push(sha256_hex(&material));
        }
        Ok((keys, per_shard))
    }

    /// The inputs a run reads in bounded batches: every stage that reads one streams it, and no
    /// later stage reads what those stages provide (so no stage needs all its rows at once).
    fn streamed_inputs(&self) -> BTreeSet<String> {
        let read: BTreeSet<&str> = self
            .plan
            .iter()
            .flat_map(|(_, p)| p.reads.iter().map(|(name, _)| name.as_str()))
            .collect();
        self.used_inputs()
            .into_iter()
            .filter(|input| {
                self.config
                    .stages
                    .iter()
                    .zip(&self.plan)
                    .filter(|(_, (_, plan))| plan.inputs.contains(input))
                    .all(|(stage, (name, _))| {
                        stage.kind.stage().streams() && !read.contains(name.as_str())
                    })
            })
            .collect()
    }

    /// Reads every input the stages use (its file hashed for the manifest already), but those
    /// it streams, which it describes for reading in batches.
    fn read_inputs(&self, hashes: &mut FileHashes, shard: Option<Shard>) -> Result<Inputs, Error> {
        let streamed = self.streamed_inputs();
        let mut corpora = BTreeMap::new();
        let mut streams = BTreeMap::new();
        let mut excluded: Vec<(&PathBuf, crate::data::Format, Corpus)> = Vec::new();
        for input in self.used_inputs() {
            let config = &self.config.inputs[&input];
            let format = config.format(&format!("inputs.{input}"))?;
            hashes.hash(&config.path, &format!("inputs.{input}.path"))?;
            // Two inputs cut from one file usually exclude the same other file: read it once.
            let exclusion = match &config.exclude_in {
                Some(other) => Some(
                    match excluded
                        .iter()
                        .position(|(p, f, _)| *p == other && *f == format)
                    {
                        Some(position) => position,
                        None => {
                            excluded.push((
                                other,
                                format,
                                Corpus::read(&input, other, format, None)?,
                            ));
                            excluded.len() - 1
                        }
                    },
                ),
                None => None,
            };
            if streamed.contains(&input) {
                let stream = StreamedInput {
                    name: input.clone(),
                    path: config.path.clone(),
                    format,
                    split: config.split.clone(),
                    excluded: exclusion.map(|position| {
                        Arc::new(
                            excluded[position]
                                .2
                                .sentences
                                .iter()
                                .map(|s| s.tokens.clone())
                                .collect(),
                        )
                    }),
                    sample: config.sample,
                    shard,
                    checked: None,
                };
                // One pass to check every line before any stage runs, as a whole read does.
                let sentences = stream.count()?;
                tracing::info!(
                    sentences,
                    "input {input} ({}): checked, streamed in batches of {BATCH_SENTENCES} sentences",
                    config.path.display()
                );
                if sentences == 0 {
                    tracing::warn!(
                        "input {input} has no sentences ({}): its stages produce empty tables",
                        config.path.display()
                    );
                }
                streams.insert(
                    input,
                    (
                        StreamedInput {
                            checked: Some(sentences),
                            ..stream
                        },
                        sentences,
                    ),
                );
                continue;
            }
            let mut corpus = Corpus::read(&input, &config.path, format, config.split.as_deref())?;
            if let Some(position) = exclusion {
                let dropped = corpus.exclude(&excluded[position].2);
                tracing::info!(
                    dropped,
                    "input {input}: sentences also in {}",
                    excluded[position].0.display()
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
        Ok((corpora, streams))
    }
}

/// The inputs read whole, and those streamed with the number of sentences each keeps, by name.
type Inputs = (
    BTreeMap<String, Corpus>,
    BTreeMap<String, (StreamedInput, usize)>,
);

/// What a run does with one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Computes it, or reuses it when its key is complete in the store.
    Compute,
    /// A reduce's per-sentence stage: its artefacts merged from every shard.
    FromShards,
    /// The other side of a sharded run does it.
    NotRun,
}

/// One shard's completed folder of a stage, and its record.
type ShardResult = (Shard, PathBuf, StageOutcome);

/// The parts of a run that computing one stage needs.
struct Runner<'a> {
    config: &'a PipelineFile,
    plan: &'a [(String, StagePlan)],
    store: &'a Store,
    keys: &'a [String],
    /// A reduce's keys of each shard's stages.
    shard_keys: &'a [Vec<String>],
    shards: Option<usize>,
}

impl Runner<'_> {
    /// Reuses stage `k` when its folder is complete under its key (and its artefacts read back),
    /// else computes it into the folder and marks it complete. Returns its status, folder and
    /// outcome.
    fn compute_or_reuse(
        &self,
        k: usize,
        context: &mut RunContext,
        hashes: &mut FileHashes,
    ) -> Result<(&'static str, PathBuf, StageOutcome), Error> {
        let stage = &self.config.stages[k];
        let stage_ref = StageRef {
            name: &stage.name,
            kind: stage.kind.name(),
        };
        let key = &self.keys[k];
        let folder = self.store.stage_folder(&stage.name, key);
        let io_error = |source| OutputError::Io {
            path: folder.clone(),
            source,
        };
        let _lock = Store::lock_stage(&folder).map_err(io_error)?;
        if let Some(outcome) = Store::completed(&folder, key) {
            // A training stage's results point into the model cache: its files are checked too.
            let cache_intact = stage
                .kind
                .stage()
                .cached_model(&stage_ref, self.config, &context.model_cache)?
                .is_none_or(|cached| cached.present);
            let reused = Store::verify(&folder, &outcome)
                .and_then(|()| {
                    if cache_intact {
                        Ok(())
                    } else {
                        Err("its model in the model cache is missing or damaged".into())
                    }
                })
                .and_then(|()| {
                    self.restore(k, &folder, &outcome, context)
                        .map_err(|e| e.to_string())
                });
            match reused {
                Ok(()) => {
                    tracing::info!(
                        "stage {}: reusing its results in {} (same key: same options, data and upstream stages)",
                        stage.name,
                        folder.display()
                    );
                    self.hash_models(k, context, hashes)?;
                    return Ok(("reused", folder, outcome));
                }
                Err(e) => {
                    tracing::warn!("stage {}: cannot reuse {e}; computing it again", stage.name)
                }
            }
        }
        Store::prepare(&folder).map_err(io_error)?;
        context.stage_dir = folder.clone();
        context.stage_key = key.clone();
        context.stage_encoded.clear();
        let started = Instant::now();
        if let Err(e) = stage.kind.stage().run(&stage_ref, context) {
            // Nothing to resume from: the folder goes, so that a run refusing bad input it found
            // while streaming leaves the output folder as it found it.
            if !Store::holds_parts(&folder) {
                let _ = std::fs::remove_dir_all(&folder);
            }
            return Err(e);
        }
        let seconds = started.elapsed().as_secs_f64();
        publish_all(std::mem::take(&mut context.pending))?;
        let plan = &self.plan[k].1;
        for provides in &plan.provides {
            if let Some(artefact) = context.artefacts.get(&stage.name, provides.kind()) {
                let corpus = provides.input().map(|input| &context.corpora[input]);
                snapshot::save(artefact, &folder, corpus)?;
            }
        }
        let files = stored_files(&folder, plan).map_err(io_error)?;
        let coverage = context
            .stage_encoded
            .iter()
            .map(|key @ (input, model)| CoverageEntry {
                input: input.clone(),
                model: model.clone(),
                coverage: context.coverage[key].clone(),
            })
            .collect();
        let outcome = StageOutcome {
            name: stage.name.clone(),
            kind: stage_ref.kind.into(),
            key: key.clone(),
            seconds,
            files,
            coverage,
            checksums: Store::checksums(&folder).map_err(io_error)?,
        };
        Store::complete(&folder, &outcome).map_err(io_error)?;
        self.hash_models(k, context, hashes)?;
        Ok(("ran", folder, outcome))
    }

    /// Hands the artefacts of completed stage `k` to the run, and its vocabulary coverage.
    fn restore(
        &self,
        k: usize,
        folder: &Path,
        outcome: &StageOutcome,
        context: &mut RunContext,
    ) -> Result<(), super::SnapshotError> {
        let name = &self.config.stages[k].name;
        for artefact in self.load_artefacts(k, folder, context)? {
            context.artefacts.insert(name, artefact);
        }
        for entry in &outcome.coverage {
            context.coverage.insert(
                (entry.input.clone(), entry.model.clone()),
                entry.coverage.clone(),
            );
        }
        Ok(())
    }

    /// What stage `k` provides, read back from its folder (its table only when a later stage
    /// reads it), sentences matched against the run's corpora.
    fn load_artefacts(
        &self,
        k: usize,
        folder: &Path,
        context: &RunContext,
    ) -> Result<Vec<Artefact>, super::SnapshotError> {
        let name = &self.config.stages[k].name;
        let table = folder.join(format!("{name}.parquet"));
        self.plan[k]
            .1
            .provides
            .iter()
            .filter(|p| match p.kind() {
                ArtefactKind::Table => context.keep_tables.contains(name),
                // Nothing reads a stage's results when it streams its input.
                ArtefactKind::Model => true,
                _ => p
                    .input()
                    .is_none_or(|input| !context.streams.contains_key(input)),
            })
            .map(|provides| {
                let corpus = provides.input().map(|input| &context.corpora[input]);
                snapshot::load(provides.kind(), folder, &table, corpus)
            })
            .collect()
    }

    /// A reduce's per-sentence stage `k`: the artefacts of every shard, merged, and their
    /// vocabulary coverage added up.
    fn merge_shards(
        &self,
        k: usize,
        context: &mut RunContext,
    ) -> Result<(StageOutcome, Vec<ShardResult>), Error> {
        let stage = &self.config.stages[k];
        let count = self.shards.expect("a reduce knows its shards");
        let mut outcomes = Vec::new();
        let mut loaded: BTreeMap<ArtefactKind, Vec<Artefact>> = BTreeMap::new();
        for index in 0..count {
            let shard = Shard { index, count };
            let key = &self.shard_keys[index][k];
            let folder = self.store.stage_folder(&stage.name, key);
            let missing = |message: String| ShardsError {
                output: context.output_dir.clone(),
                message: format!(
                    "stage {} of shard {shard} {message}: run `cd-pipeline run PIPELINE --shard {shard}` first (with the same file and --set)",
                    stage.name
                ),
            };
            let outcome = Store::completed(&folder, key)
                .ok_or_else(|| missing(format!("is not complete in {}", folder.display())))?;
            Store::verify(&folder, &outcome).map_err(|e| missing(format!("is damaged: {e}")))?;
            let artefacts = self
                .load_artefacts(k, &folder, context)
                .map_err(|e| missing(format!("cannot be read back ({e})")))?;
            for artefact in artefacts {
                loaded.entry(artefact.kind()).or_default().push(artefact);
            }
            outcomes.push((shard, folder, outcome));
        }
        for (kind, parts) in loaded {
            let merged = snapshot::merge(kind, parts).map_err(|message| ShardsError {
                output: context.output_dir.clone(),
                message: format!("stage {}: {message}", stage.name),
            })?;
            context.artefacts.insert(&stage.name, merged);
        }
        let mut coverage: BTreeMap<(String, String), Coverage> = BTreeMap::new();
        for entry in outcomes.iter().flat_map(|(_, _, o)| &o.coverage) {
            coverage
                .entry((entry.input.clone(), entry.model.clone()))
                .or_default()
                .add(&entry.coverage);
        }
        context.coverage.extend(coverage);
        // The rows of every shard's tables, added up, for the manifest.
        let mut files: Vec<StoredFile> = Vec::new();
        for file in outcomes.iter().flat_map(|(_, _, o)| &o.files) {
            match files.iter_mut().find(|f| f.name == file.name) {
                Some(known) => known.rows = known.rows.zip(file.rows).map(|(a, b)| a + b),
                None => files.push(file.clone()),
            }
        }
        let merged = StageOutcome {
            name: stage.name.clone(),
            kind: stage.kind.name().into(),
            key: self.keys[k].clone(),
            seconds: outcomes.iter().map(|(_, _, o)| o.seconds).sum(),
            files,
            coverage: Vec::new(),
            checksums: BTreeMap::new(),
        };
        Ok((merged, outcomes))
    }

    /// Hashes, for the manifest, the files of the models stage `k` provides (trained ones).
    fn hash_models(
        &self,
        k: usize,
        context: &RunContext,
        hashes: &mut FileHashes,
    ) -> Result<(), Error> {
        let name = &self.config.stages[k].name;
        if let Some(Artefact::Model(loaded)) = context.artefacts.get(name, ArtefactKind::Model) {
            hashes.hash(
                &loaded.weights,
                &format!("stages.{name} (trained model weights)"),
            )?;
            hashes.hash(
                loaded.vocab.path(),
                &format!("stages.{name} (trained model vocabulary)"),
            )?;
        }
        Ok(())
    }
}

/// `<output>/<stem>/shard=<i>/part-0.parquet`: a per-sentence table's partition.
fn partition_path(output_dir: &Path, file: &str, shard: Shard) -> PathBuf {
    let stem = file.strip_suffix(".parquet").unwrap_or(file);
    output_dir
        .join(stem)
        .join(shard.partition())
        .join("part-0.parquet")
}

/// After a whole run or a reduce, the per-sentence tables of the other layout, left by an
/// earlier run into the same folder, which readers would otherwise take with the new ones: a
/// whole run removes partition folders, a reduce of N shards the flat files and partitions of
/// shards N and up.
fn remove_stale_tables(
    output_dir: &Path,
    config: &PipelineFile,
    plan: &[(String, StagePlan)],
    shards: Option<usize>,
) {
    let per_sentence = config
        .stages
        .iter()
        .zip(plan)
        .filter(|(stage, _)| stage.kind.stage().scope() == Scope::PerSentence);
    for (_, (_, stage_plan)) in per_sentence {
        for (stem, _) in &stage_plan.tables {
            let folder = output_dir.join(stem);
            let stale: Vec<PathBuf> = match shards {
                None => vec![folder],
                Some(count) => {
                    let mut stale = vec![output_dir.join(format!("{stem}.parquet"))];
                    stale.extend(
                        std::fs::read_dir(&folder)
                            .into_iter()
                            .flatten()
                            .flatten()
                            .filter(|entry| {
                                entry
                                    .file_name()
                                    .to_str()
                                    .and_then(|n| n.strip_prefix("shard="))
                                    .and_then(|i| i.parse::<usize>().ok())
                                    .is_some_and(|i| i >= count)
                            })
                            .map(|entry| entry.path()),
                    );
                    stale
                }
            };
            for path in stale.into_iter().filter(|p| p.exists()) {
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Ok(()) => tracing::info!("removed {} of an earlier run", path.display()),
                    Err(e) => {
                        tracing::warn!("cannot remove {} of an earlier run: {e}", path.display())
                    }
                }
            }
        }
    }
}

/// The files a stage wrote into its folder (tables with their rows), as its plan names them.
fn stored_files(folder: &Path, plan: &StagePlan) -> std::io::Result<Vec<StoredFile>> {
    let mut files = Vec::new();
    for (stem, _) in &plan.tables {
        let name = format!("{stem}.parquet");
        let file = std::fs::File::open(folder.join(&name))?;
        let rows = parquet::file::reader::SerializedFileReader::new(file)
            .map(|reader| {
                use parquet::file::reader::FileReader;
                reader.metadata().file_metadata().num_rows() as u64
            })
            .map_err(std::io::Error::other)?;
        files.push(StoredFile {
            name,
            rows: Some(rows),
        });
    }
    for name in &plan.files {
        if folder.join(name).is_file() {
            files.push(StoredFile {
                name: name.clone(),
                rows: None,
            });
        }
    }
    Ok(files)
}

/// A reduce that cannot find or read its shards.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", output.display())]
pub struct ShardsError {
    pub output: PathBuf,
    pub message: String,
}

/// The number of shards the shard runs in `output_dir` used, from their manifests, checked to
/// be one count with every shard present.
fn shard_count(output_dir: &Path, pipeline: &str) -> Result<usize, ShardsError> {
    let folder = output_dir.join(SHARDS_DIR);
    let error = |message: String| ShardsError {
        output: output_dir.to_path_buf(),
        message,
    };
    let mut shards: Vec<Shard> = Vec::new();
    let entries = std::fs::read_dir(&folder).map_err(|e| {
        error(format!(
            "no shard manifests in {} ({e}): run `cd-pipeline run PIPELINE --shard I/N` for every shard first",
            folder.display()
        ))
    })?;
    for entry in entries.flatten() {
        let path = entry.path().join(MANIFEST);
        if !entry.file_name().to_string_lossy().starts_with("shard=") || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| error(format!("{}: {e}", path.display())))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| error(format!("{}: {e}", path.display())))?;
        if manifest.pipeline != pipeline {
            return Err(error(format!(
                "{} is of pipeline `{}`, not `{pipeline}`",
                path.display(),
                manifest.pipeline
            )));
        }
        shards.extend(manifest.shard);
    }
    let count = shards.first().map(|s| s.count).ok_or_else(|| {
        error(format!(
            "no shard manifests in {}: run `cd-pipeline run PIPELINE --shard I/N` for every shard first",
            folder.display()
        ))
    })?;
    if let Some(other) = shards.iter().find(|s| s.count != count) {
        return Err(error(format!(
            "{} holds shards of {count} and of {} shards: remove the older run's shards",
            folder.display(),
            other.count
        )));
    }
    let missing: Vec<String> = (0..count)
        .filter(|index| !shards.iter().any(|s| s.index == *index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(error(format!(
            "shards {} have not run (no manifest in {})",
            missing.join(", "),
            folder.display()
        )));
    }
    Ok(count)
}

/// Every `seed` option the stages were given, by key.
fn seeds(config: &PipelineFile) -> BTreeMap<String, serde_json::Value> {
    config
        .stages
        .iter()
        .enumerate()
        .filter_map(|(k, stage)| {
            let seed = config.tree["stages"][k].get("seed")?;
            Some((format!("stages.{}.seed", stage.name), seed.clone()))
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
        &context.stage_dir.join(COVERAGE_TABLE),
        vocabulary_coverage_schema(),
        &[vocabulary_coverage_batch(&rows)?],
        &metadata,
    )?;
    context.pending.push(table);
    Ok(())
}

/// The `<input>_sentences` and `<input>_constituents` tables of every input read; streamed
/// inputs are read again batch by batch.
fn write_corpus_tables(context: &mut RunContext) -> Result<(), Error> {
    let metadata = |name: &str| -> Vec<(&str, String)> {
        context
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .chain([("input", name.to_string())])
            .collect()
    };
    let mut pending = Vec::new();
    for (name, corpus) in &context.corpora {
        let path = context.stage_dir.join(format!("{name}_sentences.parquet"));
        pending.push(write_table(
            &path,
            sentences_schema(),
            &[sentences_batch(corpus)?],
            &metadata(name),
        )?);
        if let Some(batch) = constituents_batch(corpus)? {
            let path = context
                .stage_dir
                .join(format!("{name}_constituents.parquet"));
            pending.push(write_table(
                &path,
                constituents_schema(),
                &[batch],
                &metadata(name),
            )?);
        }
    }
    for (name, stream) in &context.streams {
        let mut sentences = ParquetTableWriter::create(
            &context.stage_dir.join(format!("{name}_sentences.parquet")),
            sentences_schema(),
            &metadata(name),
        )?;
        let mut constituents = (stream.format == crate::data::Format::SstTrees)
            .then(|| {
                ParquetTableWriter::create(
                    &context
                        .stage_dir
                        .join(format!("{name}_constituents.parquet")),
                    constituents_schema(),
                    &metadata(name),
                )
            })
            .transpose()?;
        for batch in stream.batches(BATCH_SENTENCES)? {
            let batch = batch?;
            sentences.write(&sentences_batch(&batch)?)?;
            if let (Some(writer), Some(rows)) = (&mut constituents, constituents_batch(&batch)?) {
                writer.write(&rows)?;
            }
        }
        pending.push(sentences.finish()?);
        if let Some(writer) = constituents {
            pending.push(writer.finish()?);
        }
    }
    context.pending.extend(pending);
    Ok(())
}
