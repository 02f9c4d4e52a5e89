//! What stages hand to later stages: named artefacts (tables, models, score indexes, phrases,
//! coefficients, phrase embeddings), declared in each stage's plan and kept during a run in one
//! store keyed by name and kind.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::ScoreCoverage;
use crate::attribution::Span;
pub use crate::io::MethodRef;
use crate::model::{ModelError, Network, Vocabulary};

/// The kinds of artefacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtefactKind {
    /// A stage's main table, `<name>.parquet`, kept in memory for the stages that read it.
    Table,
    /// A classifier with its vocabulary: under `models`, or trained by a stage.
    Model,
    /// Scores of spans of an input, per method.
    Scores,
    /// Spans per sentence of an input, for a scoring stage to score.
    Phrases,
    /// The coefficients of a linear model on n-grams.
    Coefficients,
    /// CD's β_T of spans of an input, phrase embeddings.
    Betas,
}

impl ArtefactKind {
    pub fn name(self) -> &'static str {
        match self {
            ArtefactKind::Table => "a table",
            ArtefactKind::Model => "a model",
            ArtefactKind::Scores => "scores",
            ArtefactKind::Phrases => "phrases",
            ArtefactKind::Coefficients => "coefficients",
            ArtefactKind::Betas => "phrase embeddings (beta)",
        }
    }
}

impl fmt::Display for ArtefactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What planning knows of an artefact a stage will provide, so that later stages can check that
/// it is what they need.
#[derive(Debug, Clone)]
pub enum Provides {
    Table(SchemaRef),
    Model {
        classes: usize,
    },
    Scores {
        input: String,
        model: String,
        coverage: ScoreCoverage,
        methods: Vec<MethodRef>,
    },
    Phrases {
        input: String,
    },
    Coefficients {
        /// Longest n-gram.
        max_n: usize,
    },
    Betas {
        input: String,
    },
}

impl Provides {
    pub fn kind(&self) -> ArtefactKind {
        match self {
            Provides::Table(_) => ArtefactKind::Table,
            Provides::Model { .. } => ArtefactKind::Model,
            Provides::Scores { .. } => ArtefactKind::Scores,
            Provides::Phrases { .. } => ArtefactKind::Phrases,
            Provides::Coefficients { .. } => ArtefactKind::Coefficients,
            Provides::Betas { .. } => ArtefactKind::Betas,
        }
    }

    /// The input the artefact is about, for those about one.
    pub fn input(&self) -> Option<&str> {
        match self {
            Provides::Scores { input, .. }
            | Provides::Phrases { input }
            | Provides::Betas { input } => Some(input),
            _ => None,
        }
    }
}

/// Scores of spans, by sentence position and span, one entry per method.
#[derive(Debug, Default)]
pub struct ScoreIndex {
    pub methods: Vec<MethodRef>,
    pub scores: HashMap<(usize, Span), Vec<f64>>,
}

impl ScoreIndex {
    /// The scores of a span of the sentence at position `sentence`, one per method.
    pub fn get(&self, sentence: usize, span: Span) -> Option<&[f64]> {
        self.scores.get(&(sentence, span)).map(Vec::as_slice)
    }

    /// The methods whose phrase scores carry interactions, with their positions.
    pub fn with_interactions(&self) -> impl Iterator<Item = (usize, &MethodRef)> {
        self.methods
            .iter()
            .enumerate()
            .filter(|(_, m)| m.interactions)
    }
}

/// β_T (hidden-size vectors) of spans, by sentence position and span, from one CD method.
#[derive(Debug, Default)]
pub struct BetaIndex {
    /// The CD convention.
    pub variant: String,
    pub betas: HashMap<(usize, Span), Vec<f32>>,
}

/// A linear model's coefficients by n-gram.
#[derive(Debug, Default)]
pub struct Coefficients {
    /// Longest n-gram.
    pub max_n: usize,
    /// n-gram (space-joined, normalised) → coefficient; the empty term is the intercept.
    pub terms: HashMap<String, f64>,
    /// Whether the features count occurrences (else presence).
    pub counts: bool,
}

/// A model with its vocabulary, checked against each other.
#[derive(Debug)]
pub struct LoadedModel {
    pub weights: PathBuf,
    pub model: Network<f32>,
    pub vocab: Vocabulary,
}

impl LoadedModel {
    pub fn load(weights: &Path, vocab: &Path) -> Result<Self, ModelError> {
        let model = Network::<f32>::load(weights)?;
        let vocab = Vocabulary::load(vocab)?;
        vocab.check_matches(weights, model.vocab_size())?;
        Ok(Self {
            weights: weights.to_path_buf(),
            model,
            vocab,
        })
    }
}

/// An artefact during a run.
#[derive(Debug)]
pub enum Artefact {
    Table(Vec<RecordBatch>),
    Model(Box<LoadedModel>),
    Scores(ScoreIndex),
    Phrases(Vec<Vec<Span>>),
    Coefficients(Coefficients),
    Betas(BetaIndex),
}

impl Artefact {
    pub fn kind(&self) -> ArtefactKind {
        match self {
            Artefact::Table(_) => ArtefactKind::Table,
            Artefact::Model(_) => ArtefactKind::Model,
            Artefact::Scores(_) => ArtefactKind::Scores,
            Artefact::Phrases(_) => ArtefactKind::Phrases,
            Artefact::Coefficients(_) => ArtefactKind::Coefficients,
            Artefact::Betas(_) => ArtefactKind::Betas,
        }
    }
}

/// A run's artefacts, by the name of the stage (or model) that provides them and their kind.
/// Planning checked every reference, so a missing artefact is a bug, and the getters panic.
#[derive(Debug, Default)]
pub struct Artefacts {
    values: HashMap<(String, ArtefactKind), Artefact>,
}

/// Generates a typed getter per artefact kind.
macro_rules! getters {
    ($($getter:ident: $variant:ident => $value:ty),* $(,)?) => {
        impl Artefacts {
            $(
                pub fn $getter(&self, name: &str) -> &$value {
                    match self.values.get(&(name.to_string(), ArtefactKind::$variant)) {
                        Some(Artefact::$variant(value)) => value,
                        _ => panic!("planned: `{name}` provides {}", ArtefactKind::$variant),
                    }
                }
            )*
        }
    };
}

getters! {
    table: Table => Vec<RecordBatch>,
    model: Model => Box<LoadedModel>,
    scores: Scores => ScoreIndex,
    phrases: Phrases => Vec<Vec<Span>>,
    coefficients: Coefficients => Coefficients,
    betas: Betas => BetaIndex,
}

impl Artefacts {
    pub fn get(&self, name: &str, kind: ArtefactKind) -> Option<&Artefact> {
        self.values.get(&(name.to_string(), kind))
    }

    pub fn insert(&mut self, name: &str, artefact: Artefact) {
        self.values
            .insert((name.to_string(), artefact.kind()), artefact);
    }
}
