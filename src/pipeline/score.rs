//! `score` (formerly `cd_score`): attribution scores of chosen spans of every sentence of an input
//! by every chosen method, each span scored in the context of its full sentence.

use std::collections::HashMap;

use serde::Deserialize;

use super::{PlanContext, RunContext, ScoreIndex, ScoredMethod, Stage, StagePlan, StageRef};
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
        let methods: Vec<String> = configs
            .iter()
            .map(|c| format!("{c} ({})", c.target(self.target)))
            .collect();
        let limit = self
            .max_len
            .map_or_else(String::new, |max| format!(" of at most {max} tokens"));
        Ok(StagePlan {
            summary: format!(
                "score: {} of {} with model {} by {} -> {}.parquet",
                self.spans.describe() + &limit,
                self.input,
                self.model,
                methods.join(", "),
                stage.name
            ),
            input: Some(self.input.clone()),
            reads_inputs: Vec::new(),
            model: Some(self.model.clone()),
            reads_tables: Vec::new(),
            table: scores_schema(),
            extra_tables: Vec::new(),
            files: Vec::new(),
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
        let loaded = &context.models[&self.model];
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
        context.scores.insert(stage.name.to_string(), index);
        context.finish_table(stage, writer, kept)?;
        Ok(())
    }
}
