//! `score` (formerly `cd_score`): attribution scores of chosen spans of every sentence of an input
//! by every chosen method, each span scored in the context of its full sentence.

use std::collections::HashMap;

use serde::Deserialize;

use super::{
    Artefact, ArtefactKind, PlanContext, Provides, RunContext, ScoreIndex, ScoredMethod, Stage,
    StagePlan, StageRef,
};
use crate::Error;
use crate::attribution::{
    Attribution, CdOptions, Convention, MethodConfig, Span, SpanSet, Target, attribute_in_chunks,
    build_methods,
};
use crate::config::ConfigError;
use crate::data::Polarity;
use crate::io::{ScoreRecord, ScoresBuilder, scores_schema};

/// Options of a `score` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreStage {
    /// Name of the input whose sentences are scored.
    pub input: String,
    /// Name of the model under `models`, or of a training stage.
    pub model: String,
    /// Which spans of each sentence.
    #[serde(default = "default_spans")]
    pub spans: SpanSpec,
    /// Keep only spans of at most this many tokens.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Attribution methods, one set of rows each (default: `[cd]`).
    #[serde(default)]
    pub methods: Vec<MethodConfig>,
    /// What every method attributes; each method's default when not given.
    #[serde(default)]
    pub target: Option<Target>,
    /// Shorthand for `methods: [cd:convention=...]`, as the `--convention` flag of `score`.
    #[serde(default)]
    pub conventions: Vec<Convention>,
}

fn default_spans() -> SpanSpec {
    SpanSpec::AllSpans
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

impl ScoreStage {
    /// `methods` and the CD conventions of `conventions`, or `[cd]` when both are empty.
    fn method_configs(&self) -> Vec<MethodConfig> {
        let mut configs = self.methods.clone();
        configs.extend(
            self.conventions
                .iter()
                .map(|&convention| MethodConfig::Cd(CdOptions { convention })),
        );
        if configs.is_empty() {
            configs.push(MethodConfig::Cd(CdOptions::default()));
        }
        configs
    }
}

impl Stage for ScoreStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        let classes = context.model(&stage.key("model"), &self.model)?.classes;
        let invalid = |option: &str, message: String| ConfigError::Invalid {
            key: stage.key(option),
            message,
        };
        if self.max_len == Some(0) {
            return Err(invalid("max_len", "must be at least 1".into()));
        }
        let configs = self.method_configs();
        for config in &configs {
            config
                .check(config.target(self.target), classes)
                .map_err(|e| invalid("methods", format!("{config}: {e}")))?;
        }
        // Options that name tokens are checked against a loaded model's vocabulary now; a model
        // trained by the run is checked when the stage builds its methods.
        if let Some(loaded) = context.models.get(&self.model) {
            build_methods(&configs, self.target, &loaded.model, Some(&loaded.vocab))
                .map_err(|e| invalid("methods", e))?;
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
                context.provided_for(
                    &stage.key("spans.phrases"),
                    source,
                    ArtefactKind::Phrases,
                    &self.input,
                )?;
            }
            _ => {}
        }
        let mut scored: Vec<ScoredMethod> = Vec::new();
        for config in &configs {
            let method = ScoredMethod {
                method: config.name().to_string(),
                variant: config.variant(),
                target: config.target(self.target).to_string(),
            };
            if !scored.contains(&method) {
                scored.push(method);
            }
        }
        let limit = self
            .max_len
            .map_or_else(String::new, |max| format!(" of at most {max} tokens"));
        let summary = format!(
            "score: {} of {} with model {} by {} -> {}.parquet",
            self.spans.describe() + &limit,
            self.input,
            self.model,
            scored
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            stage.name
        );
        let mut plan = StagePlan::new(stage, summary, scores_schema())
            .reading_input(&self.input)
            .reading(&self.model, ArtefactKind::Model)
            .providing(Provides::Scores {
                input: self.input.clone(),
                model: self.model.clone(),
                coverage: ScoreCoverage {
                    spans: self.spans.clone(),
                    max_len: self.max_len,
                },
                methods: scored,
            });
        if let SpanSpec::Phrases(source) = &self.spans {
            plan = plan.reading(source, ArtefactKind::Phrases);
        }
        Ok(plan)
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let ids = &context.encode(&self.input, &self.model)?;
        let mut writer = context.table_writer(stage, scores_schema())?;
        let keep = context.keeps_table(stage);
        let corpus = context.corpus(&self.input);
        let loaded = context.artefacts.model(&self.model);
        let methods = build_methods(
            &self.method_configs(),
            self.target,
            &loaded.model,
            Some(&loaded.vocab),
        )
        .map_err(|message| ConfigError::Invalid {
            key: stage.key("methods"),
            message,
        })?;
        let calls: Vec<(&dyn Attribution, Target)> =
            methods.iter().map(|(m, t)| (m.as_ref(), *t)).collect();
        let scored: Vec<ScoredMethod> = methods
            .iter()
            .map(|(m, target)| ScoredMethod {
                method: m.method().to_string(),
                variant: m.variant(),
                target: target.to_string(),
            })
            .collect();
        let phrases = match &self.spans {
            SpanSpec::Phrases(source) => Some(context.artefacts.phrases(source)),
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
            methods: scored.clone(),
            scores: HashMap::new(),
        };
        let mut builder = ScoresBuilder::default();
        let mut kept = Vec::new();
        let mut rows = 0;
        let mut max_delta: Vec<Option<f64>> = vec![None; scored.len()];
        attribute_in_chunks(&calls, ids, spans_of, |results| {
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
                let method = &scored[result.method];
                for score in &result.spans {
                    if let Some(delta) = score.delta {
                        let worst = max_delta[result.method].get_or_insert(0.0);
                        *worst = worst.max(delta.abs());
                    }
                    let fine_label = labels.get(&score.span).copied();
                    builder.append(ScoreRecord {
                        sentence_id: &sentence.id,
                        dataset: &corpus.name,
                        split: corpus.split.as_deref(),
                        tokens: &sentence.tokens,
                        fine_label: fine_label
                            .map(|l| i8::try_from(l).expect("fine labels are 0-4")),
                        polarity: fine_label.map(|l| Polarity::of(l).name()),
                        method: &method.method,
                        variant: method.variant.as_deref(),
                        target: &method.target,
                        score,
                    });
                    index
                        .scores
                        .entry((result.sentence, score.span))
                        .or_insert_with(|| vec![f64::NAN; scored.len()])[result.method] =
                        score.score;
                }
            }
            let batch = builder.finish()?;
            rows += batch.num_rows();
            writer.write(&batch)?;
            if keep {
                kept.push(batch);
            }
            Ok::<(), Error>(())
        })?;
        for (method, delta) in scored.iter().zip(&max_delta) {
            if let Some(delta) = delta {
                tracing::info!(
                    "stage {}: {} {} of {}: largest |delta| {delta:.3e}",
                    stage.name,
                    method.method,
                    method.variant.as_deref().unwrap_or_default(),
                    method.target
                );
            }
        }
        tracing::info!(
            rows,
            "stage {}: scored {} sentences",
            stage.name,
            corpus.sentences.len()
        );
        // The methods borrow the model from the context, which the stage now adds to.
        drop(calls);
        drop(methods);
        context
            .artefacts
            .insert(stage.name, Artefact::Scores(index));
        context.finish_table(stage, writer, kept)?;
        Ok(())
    }
}
