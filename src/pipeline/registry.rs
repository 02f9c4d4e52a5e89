//! The stage registry: every stage kind, its YAML name and its typed options, one line each, and
//! the stage of a pipeline file that the registry deserialises.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::{
    AggregateStage, CompositionalityStage, DissentingSubphrasesStage, HierarchyStage,
    NegationStage, ReportStage, ReproductionStage, ScoreStage, SimilarPhrasesStage, Stage,
    TrainLogregStage, TrainLstmStage, UnigramCorrelationStage,
};
use crate::config::{NamedStage, PipelineConfig};

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
    UnigramCorrelation(UnigramCorrelationStage) = "unigram_correlation",
    Compositionality(CompositionalityStage) = "compositionality",
    DissentingSubphrases(DissentingSubphrasesStage) = "dissenting_subphrases",
    SimilarPhrases(SimilarPhrasesStage) = "similar_phrases",
    Hierarchy(HierarchyStage) = "hierarchy",
    Reproduction(ReproductionStage) = "reproduction",
    Report(ReportStage) = "report",
}

/// A pipeline file whose stages are this registry's.
pub type PipelineFile = PipelineConfig<StageConfig>;

/// One stage: a unique name (its output table is `<name>.parquet`) and its kind's typed options.
#[derive(Debug, Clone)]
pub struct StageConfig {
    pub name: String,
    pub kind: StageKind,
}

/// Reads `name` and `kind`, then hands the rest of the mapping to the kind's options without
/// buffering it, so that errors inside the options keep their line and column.
impl<'de> Deserialize<'de> for StageConfig {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StageVisitor;
        impl<'de> Visitor<'de> for StageVisitor {
            type Value = StageConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stage: a mapping with `name`, `kind` and the kind's options")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StageConfig, A::Error> {
                let mut name: Option<String> = None;
                loop {
                    match map.next_key::<String>()?.as_deref() {
                        Some("name") => name = Some(map.next_value()?),
                        Some("kind") => {
                            let kind: KindName = map.next_value()?;
                            let options = de::value::MapAccessDeserializer::new(map);
                            let kind = StageKind::deserialize_options(kind, options)?;
                            let name = name.ok_or_else(|| {
                                de::Error::custom("missing field `name` (put it before `kind`)")
                            })?;
                            return Ok(StageConfig { name, kind });
                        }
                        Some(other) => {
                            return Err(de::Error::custom(format!(
                                "`{other}`: a stage starts with `name` and `kind`, then its options"
                            )));
                        }
                        None => return Err(de::Error::missing_field("kind")),
                    }
                }
            }
        }
        deserializer.deserialize_map(StageVisitor)
    }
}

impl NamedStage for StageConfig {
    fn name(&self) -> &str {
        &self.name
    }
}
