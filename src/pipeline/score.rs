//! `score` (formerly `cd_score`): attribution scores of chosen spans of every sentence of an input
//! by every chosen method, each span scored in the context of its full sentence.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::RecordBatch;
use serde::Deserialize;

use super::{
    Artefact, ArtefactKind, BetaIndex, MethodRef, PlanContext, Provides, RunContext, Scope,
    ScoreIndex, Stage, StagePlan, StageRef, snapshot,
};
use crate::Error;
use crate::attribution::{
    Attribution, CdOptions, Convention, MethodConfig, SENTENCES_PER_CHUNK, Span, SpanSet, Target,
    attribute_in_chunks, build_methods,
};
use crate::config::ConfigError;
use crate::data::Corpus;
use crate::data::Polarity;
use crate::io::{
    EmbeddingRecord, OutputError, ParquetTableWriter, ScoreRecord, ScoresBuilder, SentenceRef,
    phrase_embeddings_batch, phrase_embeddings_schema, scores_schema,
};

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

    /// Whether every word is scored (every leaf of a tree is a constituent).
    pub fn covers_words(&self) -> bool {
        matches!(
            self.spans,
            SpanSpec::Unigrams | SpanSpec::AllSpans | SpanSpec::Constituents
        )
    }

    /// Whether every contiguous span of at most `len` tokens is scored (`None`: of any length).
    pub fn covers_all_spans(&self, len: Option<usize>) -> bool {
        self.spans == SpanSpec::AllSpans
            && match (self.max_len, len) {
                (None, _) => true,
                (Some(max), Some(len)) => max >= len,
                (Some(_), None) => false,
            }
    }
}

impl ScoreStage {
    /// The position of the CD method with `beta` among the stage's methods; only one may have it.
    fn beta_method(&self, configs: &[MethodConfig]) -> Result<Option<usize>, String> {
        let with_beta: Vec<usize> = configs
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, MethodConfig::Cd(CdOptions { beta: true, .. })))
            .map(|(k, _)| k)
            .collect();
        match with_beta.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err("only one CD method can keep beta (phrase embeddings)".into()),
        }
    }

    /// The methods as rows name them, once each, in the order [`build_methods`] builds them; two
    /// configurations that differ only in options without a column (CD's `beta`) are refused.
    fn scored_methods(&self, configs: &[MethodConfig]) -> Result<Vec<MethodRef>, String> {
        let mut scored: Vec<MethodRef> = Vec::new();
        let mut seen: Vec<&MethodConfig> = Vec::new();
        for config in configs {
            let method = MethodRef {
                method: config.name().to_string(),
                variant: config.variant(),
                target: config.target(self.target).to_string(),
                interactions: config.has_interactions(),
            };
            match scored.iter().position(|m| *m == method) {
                Some(k) if seen[k] != config => {
                    return Err(format!(
                        "{} and {config} name the same method: keep one",
                        seen[k]
                    ));
                }
                Some(_) => {}
                None => {
                    scored.push(method);
                    seen.push(config);
                }
            }
        }
        Ok(scored)
    }

    /// `methods` and the CD conventions of `conventions`, or `[cd]` when both are empty.
    fn method_configs(&self) -> Vec<MethodConfig> {
        let mut configs = self.methods.clone();
        configs.extend(self.conventions.iter().map(|&convention| {
            MethodConfig::Cd(CdOptions {
                convention,
                beta: false,
            })
        }));
        if configs.is_empty() {
            configs.push(MethodConfig::Cd(CdOptions::default()));
        }
        configs
    }
}

impl Stage for ScoreStage {
    fn scope(&self) -> Scope {
        Scope::PerSentence
    }

    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        let classes = context.model(&stage.key("model"), &self.model)?.classes;
        if self.max_len == Some(0) {
            return Err(stage.invalid("max_len", "must be at least 1".into()));
        }
        let configs = self.method_configs();
        for config in &configs {
            config
                .check(config.target(self.target), classes)
                .map_err(|e| stage.invalid("methods", format!("{config}: {e}")))?;
        }
        // Options that name tokens are checked against a loaded model's vocabulary now; a model
        // trained by the run is checked when the stage builds its methods.
        if let Some(loaded) = context.models.get(&self.model) {
            build_methods(&configs, self.target, &loaded.model, Some(&loaded.vocab))
                .map_err(|e| stage.invalid("methods", e))?;
        }
        match &self.spans {
            SpanSpec::Constituents if !context.input_has_trees(&self.input) => {
                return Err(stage.invalid(
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
        let scored = self
            .scored_methods(&configs)
            .map_err(|message| stage.invalid("methods", message))?;
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
        match self.beta_method(&configs) {
            Ok(Some(_)) => {
                plan = plan
                    .with_table(stage, "beta", phrase_embeddings_schema())
                    .providing(Provides::Betas {
                        input: self.input.clone(),
                    });
            }
            Ok(None) => {}
            Err(message) => return Err(stage.invalid("methods", message)),
        }
        Ok(plan)
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let configs = self.method_configs();
        let scored = self
            .scored_methods(&configs)
            .expect("planned: no method named twice");
        let ids = &context.encode(&self.input, &self.model)?;
        let mut writer = context.table_writer(stage, scores_schema())?;
        let keep = context.keeps_table(stage);
        let corpus = context.corpus(&self.input);
        let loaded = context.artefacts.model(&self.model);
        let methods = build_methods(&configs, self.target, &loaded.model, Some(&loaded.vocab))
            .map_err(|message| ConfigError::Invalid {
                key: stage.key("methods"),
                message,
            })?;
        let calls: Vec<(&dyn Attribution, Target)> =
            methods.iter().map(|(m, t)| (m.as_ref(), *t)).collect();
        debug_assert_eq!(scored.len(), methods.len());
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
        let beta_method = self
            .beta_method(&configs)
            .expect("planned: at most one CD method keeps beta")
            .map(|k| {
                // The configs' order is the methods' order, less repeated methods.
                let config = &configs[k];
                scored
                    .iter()
                    .position(|m| m.method == config.name() && m.variant == config.variant())
                    .expect("the CD method is scored")
            });
        let mut betas = BetaIndex {
            variant: beta_method
                .and_then(|m| scored[m].variant.clone())
                .unwrap_or_default(),
            betas: HashMap::new(),
        };
        let mut builder = ScoresBuilder::default();
        let mut kept = Vec::new();
        let mut rows = 0;
        let mut max_delta: Vec<Option<f64>> = vec![None; scored.len()];
        let checkpoints = context.checkpoints();
        let parts = ids.len().div_ceil(PART_SENTENCES);
        for part in 0..parts {
            let range = part * PART_SENTENCES..((part + 1) * PART_SENTENCES).min(ids.len());
            let folder = checkpoints.join(format!("part-{part:05}"));
            let describe = || {
                format!(
                    "part {} of {parts} (sentences {}-{})",
                    part + 1,
                    range.start + 1,
                    range.end
                )
            };
            if let Some((batches, part_index, part_betas)) =
                read_part(&folder, corpus, beta_method.is_some())
            {
                for batch in batches {
                    rows += batch.num_rows();
                    writer.write(&batch)?;
                    if keep {
                        kept.push(batch);
                    }
                }
                index.scores.extend(part_index.scores);
                betas.betas.extend(part_betas.betas);
                tracing::info!(
                    "stage {}: {} restored from {}",
                    stage.name,
                    describe(),
                    folder.display()
                );
                continue;
            }
            let unfinished = checkpoints.join(format!("part-{part:05}.tmp"));
            if unfinished.exists() {
                std::fs::remove_dir_all(&unfinished).map_err(|source| OutputError::Io {
                    path: unfinished.clone(),
                    source,
                })?;
            }
            let mut part_rows =
                ParquetTableWriter::create(&unfinished.join(PART_ROWS), scores_schema(), &[])?;
            let mut part_index = ScoreIndex {
                methods: scored.clone(),
                scores: HashMap::new(),
            };
            let mut part_betas = BetaIndex {
                variant: betas.variant.clone(),
                betas: HashMap::new(),
            };
            attribute_in_chunks(
                &calls,
                &ids[range.clone()],
                |k, ids| spans_of(range.start + k, ids),
                |results| {
                    // Results come sentence by sentence, one per method: the node labels of a
                    // sentence are looked up once for all its methods.
                    let mut labels: (Option<usize>, HashMap<Span, u8>) = (None, HashMap::new());
                    for result in results {
                        let position = range.start + result.sentence;
                        let sentence = &corpus.sentences[position];
                        if labels.0 != Some(position) {
                            labels.0 = Some(position);
                            labels.1 = corpus.trees.as_ref().map_or_else(HashMap::new, |trees| {
                                trees[position]
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
                            part_index
                                .scores
                                .entry((position, score.span))
                                .or_insert_with(|| vec![f64::NAN; scored.len()])[result.method] =
                                score.score;
                            if Some(result.method) == beta_method
                                && let Some(beta) = &score.embedding
                            {
                                part_betas
                                    .betas
                                    .insert((position, score.span), beta.clone());
                            }
                        }
                    }
                    let batch = builder.finish()?;
                    rows += batch.num_rows();
                    writer.write(&batch)?;
                    part_rows.write(&batch)?;
                    if keep {
                        kept.push(batch);
                    }
                    Ok::<(), Error>(())
                },
            )?;
            part_rows.commit()?;
            let part_index = Artefact::Scores(part_index);
            snapshot::save(&part_index, &unfinished, Some(corpus))?;
            let part_betas = Artefact::Betas(part_betas);
            if beta_method.is_some() {
                snapshot::save(&part_betas, &unfinished, Some(corpus))?;
            }
            // A part that could not be read back is replaced.
            if folder.exists() {
                std::fs::remove_dir_all(&folder).map_err(|source| OutputError::Io {
                    path: folder.clone(),
                    source,
                })?;
            }
            std::fs::rename(&unfinished, &folder).map_err(|source| OutputError::Io {
                path: folder.clone(),
                source,
            })?;
            if let (Artefact::Scores(part_index), Artefact::Betas(part_betas)) =
                (part_index, part_betas)
            {
                index.scores.extend(part_index.scores);
                betas.betas.extend(part_betas.betas);
            }
            tracing::info!("stage {}: {} checkpointed", stage.name, describe());
        }
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
        let embeddings = beta_method
            .map(|_| embeddings_batch(corpus, &betas))
            .transpose()?;
        // The methods borrow the model from the context, which the stage now adds to.
        drop(calls);
        drop(methods);
        context
            .artefacts
            .insert(stage.name, Artefact::Scores(index));
        context.finish_table(stage, writer, kept)?;
        if let Some(embeddings) = embeddings {
            let mut writer =
                context.extra_table_writer(stage, "beta", phrase_embeddings_schema())?;
            writer.write(&embeddings)?;
            context.finish_extra_table(writer)?;
            context.artefacts.insert(stage.name, Artefact::Betas(betas));
        }
        Ok(())
    }
}

/// Sentences a scoring stage checkpoints at once: a multiple of the chunks the engine works in,
/// so that a resumed stage groups sentences as an uninterrupted one does. A kill loses at most
/// this many sentences' work (about 10 s of SST constituents with CD and leave-one-out here).
const PART_SENTENCES: usize = 4 * SENTENCES_PER_CHUNK;

/// A checkpointed part's rows, beside its scores (and β) kept exactly.
const PART_ROWS: &str = "rows.parquet";

/// A part a killed run completed: its rows, scores and β; `None` when it is not there whole.
fn read_part(
    folder: &Path,
    corpus: &Corpus,
    with_betas: bool,
) -> Option<(Vec<RecordBatch>, ScoreIndex, BetaIndex)> {
    if !folder.is_dir() {
        return None;
    }
    let read = || -> Result<_, snapshot::SnapshotError> {
        let (batches, _) = snapshot::read_batches(&folder.join(PART_ROWS))?;
        let Artefact::Scores(index) =
            snapshot::load(ArtefactKind::Scores, folder, folder, Some(corpus))?
        else {
            unreachable!("scores load as scores")
        };
        let betas = if with_betas {
            let Artefact::Betas(betas) =
                snapshot::load(ArtefactKind::Betas, folder, folder, Some(corpus))?
            else {
                unreachable!("betas load as betas")
            };
            betas
        } else {
            BetaIndex::default()
        };
        Ok((batches, index, betas))
    };
    match read() {
        Ok(part) => Some(part),
        Err(e) => {
            tracing::warn!("cannot read checkpoint {e}; scoring its sentences again");
            None
        }
    }
}

/// The `phrase_embeddings` rows of the kept β, by sentence and span.
fn embeddings_batch(corpus: &Corpus, betas: &BetaIndex) -> Result<RecordBatch, OutputError> {
    let mut keys: Vec<&(usize, Span)> = betas.betas.keys().collect();
    keys.sort_unstable();
    let sentences = SentenceRef::every_sentence_of(corpus);
    let rows: Vec<EmbeddingRecord<'_>> = keys
        .into_iter()
        .map(|key @ &(k, span)| EmbeddingRecord {
            sentence: &sentences[k],
            span,
            phrase: corpus.sentences[k].tokens[span.range()].join(" "),
            variant: &betas.variant,
            beta: &betas.betas[key],
        })
        .collect();
    phrase_embeddings_batch(&rows)
}
