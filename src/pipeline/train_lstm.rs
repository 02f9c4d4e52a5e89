//! `train_lstm`: trains the paper's LSTM classifier (spec §3) on an input, or reuses the model a
//! previous run trained from the same options and data (content hash), and evaluates it.
//!
//! Later stages use the model under the stage's name. Its files (`model.safetensors` in the
//! PyTorch layout, `vocab.json`, `training.json`) live in `model_cache/<stage>-<key>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::examples::{
    LabelledText, distinct, sentence_texts, training_plan, training_texts, write_evaluations,
};
use super::manifest::sha256_file;
use super::{
    Artefact, CachedModel, LoadedModel, PipelineFile, PlanContext, Provides, RunContext, Stage,
    StagePlan, StageRef,
};
use crate::Error;
use crate::config::ConfigError;
use crate::data::{Corpus, InputError};
use crate::io::{EvalRecord, OutputError, train_log_batch, train_log_schema};
use crate::model::{
    Architecture, CellKind, Example, Initialisation, LstmParameters, RnnClassifier, TrainOptions,
    TrainRecord, Trainable, Trained, Vocabulary, WordVectors, accuracy, normalize_token, train,
};
use crate::numeric::SplitMix64;

/// Version of the training procedure; part of the cache key, bumped when it changes results
/// (2: the f32 `exp` became a degree-6 minimax polynomial, whose last-bit differences reach the
/// trained weights).
const TRAINER_VERSION: &str = "2";

/// Options of a `train_lstm` stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainLstmStage {
    /// Training input. For `sst_trees`, every non-neutral constituent is an example (the authors'
    /// `train_subtrees`); otherwise every labelled sentence.
    pub train: String,
    /// Early-stopping input: labelled sentences (non-neutral roots for SST).
    pub dev: String,
    /// Further inputs to evaluate the kept model on (written to `<stage>_eval`).
    #[serde(default)]
    pub test: Vec<String>,
    /// Pretrained vectors in GloVe's text format, relative to `data_dir`; rows of words without a
    /// vector are drawn from N(0, 0.1²). Without it every row is N(0, 1), PyTorch's default.
    #[serde(default)]
    pub glove: Option<PathBuf>,
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Dev accuracy is checked every this many iterations (and after every epoch).
    #[serde(default = "default_eval_every")]
    pub eval_every: usize,
    /// Train on each distinct (text, label) pair once, as GLUE's SST-2 phrase set does.
    #[serde(default)]
    pub unique: bool,
    /// Evaluate and keep an exponential moving average of the weights with this decay (not in
    /// the authors' recipe; see the README for what it gains).
    #[serde(default)]
    pub average: Option<f64>,
    /// How the LSTM's weights start: `pytorch` (PyTorch's defaults, as the authors' released code)
    /// or `lua_torch` (Lua Torch's SeqLSTM, as the paper's "Lua Torch default initialisations":
    /// forget-gate bias 1). Left out of the cache key when `pytorch`, so models trained before the
    /// option existed are still reused.
    #[serde(default, skip_serializing_if = "Initialisation::is_pytorch")]
    pub init: Initialisation,
    /// Starts the forget gate's bias at this value instead (not in the paper's recipe; the README's
    /// reproduction section measures what it does to CD's scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_bias: Option<f64>,
    /// `lstm` (the paper's) or `gru`. This and the next two are left out of the cache key at
    /// their defaults, so models trained before they existed are still reused.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cell: CellKind,
    /// Stacked recurrent layers.
    #[serde(default = "default_layers", skip_serializing_if = "is_one")]
    pub layers: usize,
    /// A backward direction beside the forward one in every layer.
    #[serde(default, skip_serializing_if = "is_default")]
    pub bidirectional: bool,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn is_one(value: &usize) -> bool {
    *value == 1
}

fn default_layers() -> usize {
    1
}

fn default_hidden() -> usize {
    168
}
fn default_epochs() -> usize {
    4
}
fn default_batch_size() -> usize {
    50
}
fn default_learning_rate() -> f64 {
    1e-3
}
fn default_seed() -> u64 {
    1
}
fn default_eval_every() -> usize {
    1000
}

/// The trained model's weights and vocabulary as the run's output folder holds them.
fn model_files(stage: &str) -> [String; 2] {
    [
        format!("{stage}_model.safetensors"),
        format!("{stage}_vocab.json"),
    ]
}

/// The file of a cached model that records how it was trained; written last, so a folder that has
/// it is complete.
const TRAINING_RECORD: &str = "training.json";

/// What `training.json` in the cache records.
#[derive(Debug, Serialize, Deserialize)]
struct TrainingRecord {
    cache_key: String,
    options: TrainLstmStage,
    best_iteration: usize,
    best_dev_accuracy: f64,
    log: Vec<TrainRecord>,
    /// SHA-256 of the model's files, checked before the cached model is used.
    #[serde(default)]
    sha256: BTreeMap<String, String>,
}

/// The files of a cached model, beside its training record.
const MODEL_FILES: [&str; 2] = ["model.safetensors", "vocab.json"];

/// A cached model's record when its files are the ones trained (`None`: nothing cached); the
/// error says what is damaged.
fn check_cached(folder: &Path) -> Result<Option<TrainingRecord>, String> {
    let record_path = folder.join(TRAINING_RECORD);
    if !record_path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&record_path)
        .map_err(|e| format!("{}: {e}", record_path.display()))?;
    let record: TrainingRecord =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", record_path.display()))?;
    for name in MODEL_FILES {
        let path = folder.join(name);
        let recorded = record.sha256.get(name).ok_or_else(|| {
            format!(
                "{} has no SHA-256 of {name} (an older version wrote it)",
                record_path.display()
            )
        })?;
        let (found, _) = sha256_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if &found != recorded {
            return Err(format!(
                "{} changed since it was trained (SHA-256 {} recorded, {} found)",
                path.display(),
                super::store::short(recorded),
                super::store::short(&found)
            ));
        }
    }
    Ok(Some(record))
}

impl Stage for TrainLstmStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        if context.config.models.contains_key(stage.name) {
            return Err(ConfigError::Invalid {
                key: format!("stages.{}", stage.name),
                message: "a model under `models` has this name already".into(),
            });
        }
        let positive = |option: &str, value: usize| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    key: stage.key(option),
                    message: "must be at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("hidden", self.hidden)?;
        positive("layers", self.layers)?;
        let architecture = self.architecture();
        if !architecture.is_paper() && !self.init.is_pytorch() {
            return Err(ConfigError::Invalid {
                key: stage.key("init"),
                message: format!(
                    "`{}` is the paper's one-layer LSTM's initialisation; a {architecture} starts from PyTorch's (`pytorch`)",
                    self.init
                ),
            });
        }
        if self.forget_bias.is_some() && self.cell == CellKind::Gru {
            return Err(ConfigError::Invalid {
                key: stage.key("forget_bias"),
                message: "a GRU has no forget gate".into(),
            });
        }
        positive("epochs", self.epochs)?;
        positive("batch_size", self.batch_size)?;
        positive("eval_every", self.eval_every)?;
        if self.average.is_some_and(|d| !(0.0..1.0).contains(&d)) {
            return Err(ConfigError::Invalid {
                key: stage.key("average"),
                message: "a decay in [0, 1)".into(),
            });
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(ConfigError::Invalid {
                key: stage.key("learning_rate"),
                message: "must be a positive number".into(),
            });
        }
        if self.forget_bias.is_some_and(|b| !b.is_finite()) {
            return Err(ConfigError::Invalid {
                key: stage.key("forget_bias"),
                message: "must be a finite number".into(),
            });
        }
        let glove = self
            .glove
            .as_ref()
            .map(|glove| context.data_file(&stage.key("glove"), glove))
            .transpose()?;
        let init = match self.forget_bias {
            Some(bias) => format!("{} init, forget bias {bias}", self.init),
            None => format!("{} init", self.init),
        };
        let summary = format!(
            "train_lstm: {architecture} (hidden {}, {init}) on {} with early stopping on {}, {} epochs of batches of {}, Adam {}, seed {}; cached in the model cache -> {}.parquet, {}_eval.parquet, the model as {}",
            self.hidden,
            self.train,
            self.dev,
            self.epochs,
            self.batch_size,
            self.learning_rate,
            self.seed,
            stage.name,
            stage.name,
            model_files(stage.name).join(" and ")
        );
        let [weights, vocab] = model_files(stage.name);
        Ok(training_plan(
            stage,
            context,
            (&self.train, &self.dev, &self.test),
            summary,
            train_log_schema(),
            Provides::Model { classes: 2 },
        )?
        .with_file(weights)
        .with_file(vocab)
        .reading_files(glove))
    }

    fn cached_model(
        &self,
        stage: &StageRef<'_>,
        config: &PipelineFile,
        model_cache: &Path,
    ) -> Result<Option<CachedModel>, Error> {
        let folder = model_cache.join(format!("{}-{}", stage.name, &self.cache_key(config)?[..16]));
        Ok(Some(CachedModel {
            present: matches!(check_cached(&folder), Ok(Some(_))),
            folder,
        }))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let key = self.cache_key(&context.config)?;
        let folder = context
            .model_cache
            .join(format!("{}-{}", stage.name, &key[..16]));
        let cached = match check_cached(&folder) {
            Ok(cached) => cached,
            Err(damage) => {
                tracing::warn!(
                    "stage {}: not reusing the cached model ({damage}); training it again",
                    stage.name
                );
                match std::fs::remove_dir_all(&folder) {
                    // Another run sharing the cache found the damage first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => other.map_err(|source| OutputError::Io {
                        path: folder.clone(),
                        source,
                    })?,
                }
                None
            }
        };
        let reused = cached.is_some();
        let record: TrainingRecord = if let Some(record) = cached {
            tracing::info!(
                "stage {}: reusing the model in {} (trained from the same options and data, files as trained)",
                stage.name,
                folder.display()
            );
            record
        } else {
            let record = self.train_into(stage, context, &key, &folder)?;
            tracing::info!(
                "stage {}: model saved to {} (PyTorch layout, with vocab.json and {TRAINING_RECORD})",
                stage.name,
                folder.join("model.safetensors").display()
            );
            record
        };
        let (weights, vocab) = (folder.join("model.safetensors"), folder.join("vocab.json"));
        let loaded = LoadedModel::load(&weights, &vocab)?;
        // The run's output folder gets its own copy, so that its tables and the model that made
        // them travel together (and `cd-pipeline score` has a stable path to it).
        for (name, source) in model_files(stage.name).iter().zip([&weights, &vocab]) {
            let bytes = std::fs::read(source).map_err(|source_error| InputError::Read {
                path: source.clone(),
                source: source_error,
            })?;
            let path = context.write_file(name, &bytes)?;
            tracing::debug!(
                "stage {}: {} will be {}",
                stage.name,
                source.display(),
                path.display()
            );
        }

        let mut rows = Vec::new();
        for input in std::iter::once(&self.dev).chain(&self.test) {
            let corpus = context.corpus(input);
            let examples = encode(corpus, &loaded.vocab, &sentence_texts(corpus))?;
            rows.push(EvalRecord {
                model: stage.name.to_string(),
                dataset: corpus.name.clone(),
                split: corpus.split.clone(),
                examples: examples.len(),
                accuracy: accuracy(&loaded.model, &examples),
                l2: None,
                cache_key: Some(key.clone()),
                reused,
            });
            tracing::info!(
                accuracy = format!("{:.4}", rows.last().map_or(0.0, |r| r.accuracy)),
                examples = examples.len(),
                "stage {}: evaluated on {input}",
                stage.name
            );
        }
        let log_batch = train_log_batch(stage.name, &record.log, record.best_iteration)?;
        context.write_table(stage, train_log_schema(), vec![log_batch])?;
        write_evaluations(stage, context, &rows)?;
        context
            .artefacts
            .insert(stage.name, Artefact::Model(Box::new(loaded)));
        Ok(())
    }
}

impl TrainLstmStage {
    /// FNV-1a (128-bit) of the trainer version, the options, how each input is read (format,
    /// split, tokenizer, length limit, sample) and the bytes of every file read.
    fn cache_key(&self, config: &PipelineFile) -> Result<String, Error> {
        let mut hash = Fnv128::default();
        hash.write(TRAINER_VERSION.as_bytes());
        hash.write(
            serde_json::to_string(self)
                .expect("options serialise")
                .as_bytes(),
        );
        let mut files: Vec<PathBuf> = Vec::new();
        for name in std::iter::once(&self.train)
            .chain(std::iter::once(&self.dev))
            .chain(&self.test)
        {
            let input = &config.inputs[name];
            hash.write(
                format!(
                    "{:?} {:?} {:?} {:?} {:?}",
                    input.format, input.split, input.tokenizer, input.max_tokens, input.sample
                )
                .as_bytes(),
            );
            files.push(input.path.clone());
            files.extend(input.exclude_in.clone());
        }
        files.extend(self.glove_path(config));
        for file in files {
            let bytes = std::fs::read(&file).map_err(|source| InputError::Read {
                path: file.clone(),
                source,
            })?;
            hash.write(&(bytes.len() as u64).to_le_bytes());
            hash.write(&bytes);
        }
        Ok(format!("{:032x}", hash.0))
    }

    fn glove_path(&self, config: &PipelineFile) -> Option<PathBuf> {
        self.glove.as_ref().map(|p| config.data_dir.join(p))
    }

    /// Trains and writes the model files into `folder` (through a temporary folder renamed into
    /// place, so an interrupted run leaves no half-written model).
    fn train_into(
        &self,
        stage: &StageRef<'_>,
        context: &RunContext,
        key: &str,
        folder: &Path,
    ) -> Result<TrainingRecord, Error> {
        let glove = self.glove_path(&context.config);
        let vocab_tokens = vocabulary(
            std::iter::once(&self.train)
                .chain(std::iter::once(&self.dev))
                .chain(&self.test)
                .map(|input| context.corpus(input)),
        );
        let vocab = Vocabulary::from_tokens(&folder.join("vocab.json"), vocab_tokens.clone())?;
        let (embedding, dimension) = self.initial_embedding(&vocab_tokens, glove.as_deref())?;
        let train_corpus = context.corpus(&self.train);
        let mut texts = training_texts(train_corpus);
        if self.unique {
            texts = distinct(texts);
        }
        let train_examples = encode(train_corpus, &vocab, &texts)?;
        let dev_corpus = context.corpus(&self.dev);
        let dev_examples = encode(dev_corpus, &vocab, &sentence_texts(dev_corpus))?;
        tracing::info!(
            examples = train_examples.len(),
            dev = dev_examples.len(),
            vocabulary = vocab_tokens.len(),
            "stage {}: training",
            stage.name
        );
        let options = TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            seed: self.seed,
            eval_every: self.eval_every,
            average: self.average,
        };
        let architecture = self.architecture();
        let trained: Trained<Saver> = if architecture.is_paper() {
            let mut parameters = LstmParameters::initialise(
                embedding,
                dimension,
                self.hidden,
                2,
                self.seed,
                self.init,
            );
            if let Some(value) = self.forget_bias {
                parameters.set_forget_bias(value);
            }
            boxed(train(parameters, &train_examples, &dev_examples, &options))
        } else {
            let rows = Array2::from_shape_vec((vocab_tokens.len(), dimension), embedding)
                .expect("one row per token");
            let mut model =
                RnnClassifier::initialise(architecture, rows, self.hidden, 2, self.seed);
            if let Some(value) = self.forget_bias {
                model.set_forget_bias(value);
            }
            boxed(train(model, &train_examples, &dev_examples, &options))
        };
        let mut record = TrainingRecord {
            cache_key: key.to_string(),
            options: self.clone(),
            best_iteration: trained.best_iteration,
            best_dev_accuracy: trained.best_dev_accuracy,
            log: trained.log.clone(),
            sha256: BTreeMap::new(),
        };
        let temporary = folder.with_extension(format!("tmp-{}", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OutputError::Io { path, source }
        };
        std::fs::create_dir_all(&temporary).map_err(io(&temporary))?;
        (trained.parameters)(&temporary.join("model.safetensors"))
            .map_err(io(&temporary.join("model.safetensors")))?;
        std::fs::write(
            temporary.join("vocab.json"),
            serde_json::to_string(&vocab_tokens).expect("tokens serialise"),
        )
        .map_err(io(&temporary.join("vocab.json")))?;
        for name in MODEL_FILES {
            let path = temporary.join(name);
            let (hash, _) = sha256_file(&path).map_err(io(&path))?;
            record.sha256.insert(name.to_string(), hash);
        }
        std::fs::write(
            temporary.join(TRAINING_RECORD),
            serde_json::to_string_pretty(&record).expect("record serialises"),
        )
        .map_err(io(&temporary.join(TRAINING_RECORD)))?;
        std::fs::rename(&temporary, folder).map_err(io(folder))?;
        Ok(record)
    }

    pub fn architecture(&self) -> Architecture {
        Architecture {
            cell: self.cell,
            layers: self.layers,
            bidirectional: self.bidirectional,
        }
    }

    /// GloVe rows where the word has a vector, N(0, 0.1²) otherwise; N(0, 1) without GloVe.
    fn initial_embedding(
        &self,
        tokens: &[String],
        glove: Option<&Path>,
    ) -> Result<(Vec<f32>, usize), InputError> {
        let mut rng = SplitMix64(self.seed ^ 0x5EED_E3B0);
        let Some(path) = glove else {
            let dimension = 50;
            let values = (0..tokens.len() * dimension)
                .map(|_| rng.normal() as f32)
                .collect();
            return Ok((values, dimension));
        };
        let vectors = WordVectors::load(path)?;
        let mut values = Vec::with_capacity(tokens.len() * vectors.dimension);
        let mut found = 0;
        for token in tokens {
            match vectors.vectors.get(token) {
                Some(vector) => {
                    found += 1;
                    values.extend_from_slice(vector);
                }
                None => values.extend((0..vectors.dimension).map(|_| 0.1 * rng.normal() as f32)),
            }
        }
        tracing::info!(
            found,
            vocabulary = tokens.len(),
            "GloVe vectors from {}",
            path.display()
        );
        Ok((values, vectors.dimension))
    }
}

/// `<unk>`, then every normalised token of the corpora in first-seen order (the authors build
/// their vocabulary over train, dev and test).
fn vocabulary<'a>(corpora: impl Iterator<Item = &'a Corpus>) -> Vec<String> {
    let mut tokens = vec![crate::model::UNKNOWN_TOKEN.to_string()];
    let mut seen: std::collections::HashSet<String> = tokens.iter().cloned().collect();
    for corpus in corpora {
        for sentence in &corpus.sentences {
            for token in &sentence.tokens {
                let normalized = normalize_token(token);
                if seen.insert(normalized.clone()) {
                    tokens.push(normalized);
                }
            }
        }
    }
    tokens
}

/// Encodes labelled texts of `corpus`; an unknown token names the file, line and position.
fn encode(
    corpus: &Corpus,
    vocab: &Vocabulary,
    texts: &[LabelledText<'_>],
) -> Result<Vec<Example>, InputError> {
    let encoded = vocab.encode(texts.iter().map(|t| (t.line, t.tokens)), &corpus.path)?;
    Ok(encoded
        .ids
        .into_iter()
        .zip(texts)
        .map(|(ids, text)| Example {
            ids,
            label: text.label,
        })
        .collect())
}

/// FNV-1a with 128-bit state: stable across platforms and releases, enough for cache keys.
struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Self(0x6c62272e07bb014262b821756295c58d)
    }
}

impl Fnv128 {
    fn write(&mut self, bytes: &[u8]) {
        const PRIME: u128 = 0x0000000001000000000000000000013B;
        for &byte in bytes {
            self.0 ^= u128::from(byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }
}

/// Writes a trained model's state_dict to a path.
type Saver = Box<dyn Fn(&Path) -> std::io::Result<()>>;

/// The run's outcome with its parameters as their saver, whatever their architecture.
fn boxed<P: Trainable + 'static>(trained: Trained<P>) -> Trained<Saver> {
    let parameters = trained.parameters;
    Trained {
        parameters: Box::new(move |path: &Path| parameters.save(path)),
        best_iteration: trained.best_iteration,
        best_dev_accuracy: trained.best_dev_accuracy,
        log: trained.log,
    }
}
