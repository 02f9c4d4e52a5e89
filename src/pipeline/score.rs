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
use crate::data::{Corpus, Polarity, Sentence, SstTree};
use crate::io::{
    EmbeddingRecord, OutputError, ParquetTableWriter, ScoreRecord, ScoresBuilder, SentenceRef,
    phrase_embeddings_batch, phrase_embeddings_schema, scores_schema,
};
use crate::model::Coverage;

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
    /// The whole sentence as one span.
    Sentence,
    /// The phrases an earlier stage produced for the same input (`spans: {phrases: stage}`).
    Phrases(String),
}

impl SpanSpec {
    fn describe(&self) -> String {
        match self {
            SpanSpec::Constituents => "constituents".into(),
            SpanSpec::Unigrams => "unigrams".into(),
            SpanSpec::AllSpans => "all spans".into(),
            SpanSpec::Sentence => "whole sentences".into(),
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

    fn streams(&self) -> bool {
        !matches!(self.spans, SpanSpec::Phrases(_))
            && matches!(self.beta_method(&self.method_configs()), Ok(None))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let configs = self.method_configs();
        let scored = self
            .scored_methods(&configs)
            .expect("planned: no method named twice");
        // A whole input is encoded at once; a streamed one part by part, below.
        let whole = match context.stream(&self.input) {
            Some(_) => None,
            None => Some(context.encode(&self.input, &self.model)?),
        };
        let mut writer = context.table_writer(stage, scores_schema())?;
        let keep = context.keeps_table(stage);
        let stream = context.stream(&self.input);
        let corpus = whole.is_some().then(|| context.corpus(&self.input));
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
        let mut scorer = PartScorer {
            stage: stage.name,
            spans: &self.spans,
            max_len: self.max_len,
            calls,
            scored: &scored,
            phrases: phrases.map(Vec::as_slice),
            beta_method,
            whole: corpus,
            index: ScoreIndex {
                methods: scored.clone(),
                scores: HashMap::new(),
            },
            betas: BetaIndex {
                variant: beta_method
                    .and_then(|m| scored[m].variant.clone())
                    .unwrap_or_default(),
                betas: HashMap::new(),
            },
            builder: ScoresBuilder::default(),
            writer: &mut writer,
            kept: keep.then(Vec::new),
            rows: 0,
            sentences: 0,
            max_delta: vec![None; scored.len()],
            checkpoints: context.checkpoints(),
        };
        let mut coverage = Coverage::default();
        match (corpus, &whole, stream) {
            (Some(corpus), Some(ids), _) => {
                let parts = ids.len().div_ceil(PART_SENTENCES);
                for part in 0..parts {
                    let range = part * PART_SENTENCES..((part + 1) * PART_SENTENCES).min(ids.len());
                    let chunk = Part {
                        number: part,
                        of: Some(parts),
                        offset: range.start,
                        name: &corpus.name,
                        split: corpus.split.as_deref(),
                        sentences: &corpus.sentences[range.clone()],
                        trees: corpus.trees.as_ref().map(|trees| &trees[range.clone()]),
                        ids: &ids[range],
                    };
                    scorer.score(&chunk)?;
                }
            }
            (_, _, Some(stream)) => {
                let vocab = &loaded.vocab;
                let mut offset = 0;
                for (part, batch) in stream.batches(PART_SENTENCES)?.enumerate() {
                    let batch = batch?;
                    let encoded = vocab.encode(
                        batch
                            .sentences
                            .iter()
                            .map(|s| (s.line, s.tokens.as_slice())),
                        &batch.path,
                    )?;
                    coverage.add(&encoded.coverage);
                    let chunk = Part {
                        number: part,
                        of: None,
                        offset,
                        name: &batch.name,
                        split: batch.split.as_deref(),
                        sentences: &batch.sentences,
                        trees: batch.trees.as_deref(),
                        ids: &encoded.ids,
                    };
                    scorer.score(&chunk)?;
                    offset += batch.sentences.len();
                }
            }
            _ => unreachable!("an input is read whole or streamed"),
        }
        for (method, delta) in scored.iter().zip(&scorer.max_delta) {
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
            rows = scorer.rows,
            "stage {}: scored {} sentences",
            stage.name,
            scorer.sentences
        );
        let PartScorer {
            index, betas, kept, ..
        } = scorer;
        let embeddings = match (beta_method, corpus) {
            (Some(_), Some(corpus)) => Some(embeddings_batch(corpus, &betas)?),
            _ => None,
        };
        // The methods borrow the model from the context, which the stage now adds to.
        drop(methods);
        if whole.is_some() {
            context
                .artefacts
                .insert(stage.name, Artefact::Scores(index));
        } else {
            tracing::info!(
                "input {} with the vocabulary of model {}: {}",
                self.input,
                self.model,
                coverage.describe()
            );
            context.add_coverage(&self.input, &self.model, coverage);
        }
        context.finish_table(stage, writer, kept.unwrap_or_default())?;
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

/// One checkpointed part of a stage's sentences.
struct Part<'a> {
    /// 0-based.
    number: usize,
    /// How many parts there are, when the input is read whole.
    of: Option<usize>,
    /// The position of its first sentence in the input.
    offset: usize,
    /// The input's name and split.
    name: &'a str,
    split: Option<&'a str>,
    sentences: &'a [Sentence],
    trees: Option<&'a [SstTree]>,
    ids: &'a [Vec<usize>],
}

/// What scoring a stage's parts one after the other adds up.
struct PartScorer<'a, 'w> {
    stage: &'a str,
    spans: &'a SpanSpec,
    max_len: Option<usize>,
    calls: Vec<(&'a dyn Attribution, Target)>,
    scored: &'a [MethodRef],
    phrases: Option<&'a [Vec<Span>]>,
    beta_method: Option<usize>,
    /// The input when it is read whole: scores and β are then kept for later stages, by position.
    whole: Option<&'a Corpus>,
    index: ScoreIndex,
    betas: BetaIndex,
    builder: ScoresBuilder,
    writer: &'w mut ParquetTableWriter,
    /// The table's batches, when a later stage reads it.
    kept: Option<Vec<RecordBatch>>,
    rows: usize,
    sentences: usize,
    max_delta: Vec<Option<f64>>,
    checkpoints: std::path::PathBuf,
}

impl PartScorer<'_, '_> {
    /// Scores a part, or restores it from the checkpoint a killed run completed, and writes its
    /// rows; then checkpoints it.
    fn score(&mut self, part: &Part<'_>) -> Result<(), Error> {
        let folder = self.checkpoints.join(format!("part-{:05}", part.number));
        let describe = || {
            format!(
                "part {}{} (sentences {}-{})",
                part.number + 1,
                part.of.map_or_else(String::new, |of| format!(" of {of}")),
                part.offset + 1,
                part.offset + part.sentences.len()
            )
        };
        self.sentences += part.sentences.len();
        if let Some((batches, part_index, part_betas)) =
            read_part(&folder, self.whole, self.beta_method.is_some())
        {
            for batch in batches {
                self.rows += batch.num_rows();
                self.writer.write(&batch)?;
                if let Some(kept) = &mut self.kept {
                    kept.push(batch);
                }
            }
            self.index.scores.extend(part_index.scores);
            self.betas.betas.extend(part_betas.betas);
            tracing::info!(
                "stage {}: {} restored from {}",
                self.stage,
                describe(),
                folder.display()
            );
            return Ok(());
        }
        let unfinished = self
            .checkpoints
            .join(format!("part-{:05}.tmp", part.number));
        if unfinished.exists() {
            std::fs::remove_dir_all(&unfinished).map_err(|source| OutputError::Io {
                path: unfinished.clone(),
                source,
            })?;
        }
        let mut part_rows =
            ParquetTableWriter::create(&unfinished.join(PART_ROWS), scores_schema(), &[])?;
        let mut part_index = ScoreIndex {
            methods: self.scored.to_vec(),
            scores: HashMap::new(),
        };
        let mut part_betas = BetaIndex {
            variant: self.betas.variant.clone(),
            betas: HashMap::new(),
        };
        let keep_scores = self.whole.is_some();
        let spans_of = |k: usize, ids: &[usize]| -> Vec<Span> {
            let mut spans = match self.spans {
                SpanSpec::Constituents => part.trees.expect("planned: input has trees")[k]
                    .nodes
                    .iter()
                    .map(|n| Span::new(n.start, n.end))
                    .collect(),
                SpanSpec::Unigrams => SpanSet::Unigrams.spans(ids.len()),
                SpanSpec::AllSpans => SpanSet::All.spans(ids.len()),
                SpanSpec::Sentence => SpanSet::Sentence.spans(ids.len()),
                SpanSpec::Phrases(_) => {
                    self.phrases.expect("planned: phrases exist")[part.offset + k].clone()
                }
            };
            spans.sort_unstable();
            spans.dedup();
            spans.retain(|s| self.max_len.is_none_or(|max| s.len() <= max));
            spans
        };
        attribute_in_chunks(&self.calls, part.ids, spans_of, |results| {
            // Results come sentence by sentence, one per method: the node labels of a
            // sentence are looked up once for all its methods.
            let mut labels: (Option<usize>, HashMap<Span, u8>) = (None, HashMap::new());
            for result in results {
                let local = result.sentence;
                let position = part.offset + local;
                let sentence = &part.sentences[local];
                if labels.0 != Some(local) {
                    labels.0 = Some(local);
                    labels.1 = part.trees.map_or_else(HashMap::new, |trees| {
                        trees[local]
                            .nodes
                            .iter()
                            .map(|n| (Span::new(n.start, n.end), n.label))
                            .collect()
                    });
                }
                let labels = &labels.1;
                let method = &self.scored[result.method];
                for score in &result.spans {
                    if let Some(delta) = score.delta {
                        let worst = self.max_delta[result.method].get_or_insert(0.0);
                        *worst = worst.max(delta.abs());
                    }
                    let fine_label = labels.get(&score.span).copied();
                    self.builder.append(ScoreRecord {
                        sentence_id: &sentence.id,
                        dataset: part.name,
                        split: part.split,
                        tokens: &sentence.tokens,
                        fine_label: fine_label
                            .map(|l| i8::try_from(l).expect("fine labels are 0-4")),
                        polarity: fine_label.map(|l| Polarity::of(l).name()),
                        method: &method.method,
                        variant: method.variant.as_deref(),
                        target: &method.target,
                        score,
                    });
                    if keep_scores {
                        part_index
                            .scores
                            .entry((position, score.span))
                            .or_insert_with(|| vec![f64::NAN; self.scored.len()])[result.method] =
                            score.score;
                    }
                    if Some(result.method) == self.beta_method
                        && let Some(beta) = &score.embedding
                    {
                        part_betas
                            .betas
                            .insert((position, score.span), beta.clone());
                    }
                }
            }
            let batch = self.builder.finish()?;
            part_rows.write(&batch)?;
            self.rows += batch.num_rows();
            self.writer.write(&batch)?;
            if let Some(kept) = &mut self.kept {
                kept.push(batch);
            }
            Ok::<(), Error>(())
        })
        .map_err(|e| e.in_batch_at(part.offset))?;
        part_rows.commit()?;
        let part_index = Artefact::Scores(part_index);
        let part_betas = Artefact::Betas(part_betas);
        if let Some(whole) = self.whole {
            snapshot::save(&part_index, &unfinished, Some(whole))?;
            if self.beta_method.is_some() {
                snapshot::save(&part_betas, &unfinished, Some(whole))?;
            }
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
            self.index.scores.extend(part_index.scores);
            self.betas.betas.extend(part_betas.betas);
        }
        tracing::info!("stage {}: {} checkpointed", self.stage, describe());
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
    whole: Option<&Corpus>,
    with_betas: bool,
) -> Option<(Vec<RecordBatch>, ScoreIndex, BetaIndex)> {
    if !folder.is_dir() {
        return None;
    }
    let read = || -> Result<_, snapshot::SnapshotError> {
        let (batches, _) = snapshot::read_batches(&folder.join(PART_ROWS))?;
        // A streamed input's parts keep only their rows.
        let Some(corpus) = whole else {
            return Ok((batches, ScoreIndex::default(), BetaIndex::default()));
        };
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
