//! `cd_score`: CD scores of chosen spans of every sentence of an input, each span scored in the
//! context of its full sentence.

use std::collections::HashMap;

use serde::Deserialize;

use super::{PlanContext, RunContext, ScoreIndex, Stage, StagePlan, StageRef};
use crate::Error;
use crate::attribution::{Attribution, ContextualDecomposition, Convention, Span, SpanSet};
use crate::config::ConfigError;
use crate::data::Polarity;
use crate::io::{ScoreRecord, ScoresBuilder, scores_schema};

/// Options of a `cd_score` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdScoreStage {
    /// Name of the input whose sentences are scored.
    pub input: String,
    /// Name of the model under `models`.
    pub model: String,
    /// Which spans of each sentence.
    #[serde(default = "default_spans")]
    pub spans: SpanSpec,
    /// Keep only spans of at most this many tokens.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// CD conventions for the bias×bias product; one set of rows each.
    #[serde(default = "default_conventions")]
    pub conventions: Vec<Convention>,
}

fn default_spans() -> SpanSpec {
    SpanSpec::AllSpans
}

fn default_conventions() -> Vec<Convention> {
    vec![Convention::Paper]
}

/// The spans a scoring stage takes from each sentence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanSpec {
    /// Every node of the sentence's SST tree (needs an `sst_trees` input).
    Constituents,
    /// Every single token.
    Unigrams,
    /// Every contiguous span.
    AllSpans,
    /// The phrases an earlier stage produced for the same input (`spans: {phrases: stage}`).
    Phrases(String),
}

impl SpanSpec {
    fn describe(&self) -> String {
        match self {
            SpanSpec::Constituents => "constituents".into(),
            SpanSpec::Unigrams => "unigrams".into(),
            SpanSpec::AllSpans => "all spans".into(),
            SpanSpec::Phrases(stage) => format!("phrases of {stage}"),
        }
    }
}

/// Which spans a scoring stage scores, so later stages can check they find what they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreCoverage {
    pub spans: SpanSpec,
    pub max_len: Option<usize>,
}

impl ScoreCoverage {
    /// Whether every constituent of at most `len` tokens is scored.
    pub fn covers_constituents(&self, len: usize) -> bool {
        matches!(self.spans, SpanSpec::Constituents | SpanSpec::AllSpans)
            && self.max_len.is_none_or(|max| max >= len)
    }
}

impl Stage for CdScoreStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        context.model(&stage.key("model"), &self.model)?;
        let invalid = |option: &str, message: String| ConfigError::Invalid {
            key: stage.key(option),
            message,
        };
        if self.conventions.is_empty() {
            return Err(invalid(
                "conventions",
                "list at least one convention".into(),
            ));
        }
        if self.max_len == Some(0) {
            return Err(invalid("max_len", "must be at least 1".into()));
        }
        match &self.spans {
            SpanSpec::Constituents if !context.input_has_trees(&self.input) => {
                return Err(invalid(
                    "spans",
                    format!(
                        "constituents need an sst_trees input; `{}` has no trees",
                        self.input
                    ),
                ));
            }
            SpanSpec::Phrases(source) => {
                let plan = context.earlier_stage(&stage.key("spans.phrases"), source)?;
                if !plan.phrases {
                    return Err(invalid(
                        "spans.phrases",
                        format!("stage `{source}` produces no phrases"),
                    ));
                }
                if plan.input.as_deref() != Some(self.input.as_str()) {
                    return Err(invalid(
                        "spans.phrases",
                        format!(
                            "stage `{source}` is about another input than `{}`",
                            self.input
                        ),
                    ));
                }
            }
            _ => {}
        }
        let conventions: Vec<&str> = self.conventions.iter().map(|c| c.name()).collect();
        let limit = self
            .max_len
            .map_or_else(String::new, |max| format!(" of at most {max} tokens"));
        Ok(StagePlan {
            summary: format!(
                "cd_score: {} of {} with model {}, conventions {} -> {}.parquet",
                self.spans.describe() + &limit,
                self.input,
                self.model,
                conventions.join(", "),
                stage.name
            ),
            input: Some(self.input.clone()),
            reads_inputs: Vec::new(),
            model: Some(self.model.clone()),
            reads_tables: Vec::new(),
            table: scores_schema(),
            extra_tables: Vec::new(),
            trains_model: false,
            scores: Some(ScoreCoverage {
                spans: self.spans.clone(),
                max_len: self.max_len,
            }),
            phrases: false,
        })
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let ids = &context.encode(&self.input, &self.model)?;
        let mut writer = context.table_writer(stage, scores_schema())?;
        let keep = context.keeps_table(stage);
        let corpus = context.corpus(&self.input);
        let model = &context.models[&self.model].model;
        let mut conventions: Vec<Convention> = Vec::new();
        for &c in &self.conventions {
            if !conventions.contains(&c) {
                conventions.push(c);
            }
        }
        let methods: Vec<ContextualDecomposition<'_, f32>> = conventions
            .iter()
            .map(|&c| ContextualDecomposition::new(model, c))
            .collect();
        let methods: Vec<&dyn Attribution> =
            methods.iter().map(|m| m as &dyn Attribution).collect();
        let phrases = match &self.spans {
            SpanSpec::Phrases(source) => Some(&context.phrases[source]),
            _ => None,
        };
        let spans_of = |k: usize, ids: &[usize]| -> Vec<Span> {
            let mut spans = match &self.spans {
                SpanSpec::Constituents => corpus.trees.as_ref().expect("planned: input has trees")
                    [k]
                    .nodes
                    .iter()
                    .map(|n| Span::new(n.start, n.end))
                    .collect(),
                SpanSpec::Unigrams => SpanSet::Unigrams.spans(ids.len()),
                SpanSpec::AllSpans => SpanSet::All.spans(ids.len()),
                SpanSpec::Phrases(_) => phrases.expect("planned: phrases exist")[k].clone(),
            };
            spans.sort_unstable();
            spans.dedup();
            spans.retain(|s| self.max_len.is_none_or(|max| s.len() <= max));
            spans
        };

        let mut index = ScoreIndex {
            methods: methods
                .iter()
                .map(|m| (m.method().to_string(), m.variant().to_string()))
                .collect(),
            scores: HashMap::new(),
        };
        let mut builder = ScoresBuilder::default();
        let mut kept = Vec::new();
        let mut rows = 0;
        let mut max_residual = 0.0_f64;
        crate::score::attribute_in_chunks(&methods, ids, spans_of, |results| {
            // Results come sentence by sentence, one per method: the node labels of a sentence
            // are looked up once for all its methods.
            let mut labels: (Option<usize>, HashMap<Span, u8>) = (None, HashMap::new());
            for result in results {
                let sentence = &corpus.sentences[result.sentence];
                if labels.0 != Some(result.sentence) {
                    labels.0 = Some(result.sentence);
                    labels.1 = corpus.trees.as_ref().map_or_else(HashMap::new, |trees| {
                        trees[result.sentence]
                            .nodes
                            .iter()
                            .map(|n| (Span::new(n.start, n.end), n.label))
                            .collect()
                    });
                }
                let labels = &labels.1;
                let method = methods[result.method];
                for attribution in &result.spans {
                    max_residual = max_residual.max(attribution.residual);
                    let fine_label = labels.get(&attribution.span).copied();
                    builder.append(ScoreRecord {
                        sentence_id: &sentence.id,
                        dataset: &corpus.name,
                        split: corpus.split.as_deref(),
                        tokens: &sentence.tokens,
                        fine_label: fine_label
                            .map(|l| i8::try_from(l).expect("fine labels are 0-4")),
                        polarity: fine_label.map(|l| Polarity::of(l).name()),
                        method: method.method(),
                        convention: method.variant(),
                        attribution,
                    });
                    index
                        .scores
                        .entry((result.sentence, attribution.span))
                        .or_insert_with(|| vec![None; methods.len()])[result.method] =
                        attribution.binary_score();
                }
            }
            let batch = builder.finish()?;
            rows += batch.num_rows();
            writer.write(&batch)?;
            if keep {
                kept.push(batch);
            }
            Ok(())
        })?;
        tracing::info!(
            rows,
            max_residual,
            "stage {}: scored {} sentences",
            stage.name,
            corpus.sentences.len()
        );
        context.scores.insert(stage.name.to_string(), index);
        context.finish_table(stage, writer, kept)?;
        Ok(())
    }
}
