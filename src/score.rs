//! `cd-pipeline score`: CD scores for every requested span of pre-tokenised sentences.

use std::path::PathBuf;
use std::time::Instant;

use crate::Error;
use crate::attribution::{
    Attribution, ContextualDecomposition, Convention, SentenceAttribution, Span, SpanSet,
    attribute_corpus,
};
use crate::data::read_token_jsonl;
use crate::io::{ParquetTableWriter, ScoreRecord, ScoresBuilder, check_writable, scores_schema};
use crate::model::{LstmClassifier, Vocabulary};

/// Sentences scored per parallel batch: large enough to keep every core busy, small enough to
/// bound memory whatever the size of the input.
const SENTENCES_PER_BATCH: usize = 1024;

/// What to score and where to write it.
#[derive(Debug, Clone)]
pub struct ScoreJob {
    pub model: PathBuf,
    pub vocab: PathBuf,
    pub input: PathBuf,
    pub spans: SpanSet,
    pub conventions: Vec<Convention>,
    pub output: PathBuf,
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSummary {
    pub sentences: usize,
    pub rows: usize,
    /// Largest completeness residual over all rows.
    pub max_residual: f64,
    pub seconds: f64,
}

/// Runs the job on the current rayon pool; the output appears only if everything succeeded.
pub fn run_score(job: &ScoreJob) -> Result<ScoreSummary, Error> {
    let started = Instant::now();
    check_writable(std::slice::from_ref(&job.output))?;
    let model = LstmClassifier::<f32>::load(&job.model)?;
    let vocab = Vocabulary::load(&job.vocab)?;
    vocab.check_matches(&job.model, model.vocab_size())?;
    let sentences = read_token_jsonl(&job.input)?;
    if sentences.is_empty() {
        tracing::warn!(
            "{} has no sentences: the table will be empty",
            job.input.display()
        );
    }
    let encoded = vocab.encode(
        sentences.iter().map(|s| (s.line, s.tokens.as_slice())),
        &job.input,
    )?;
    tracing::info!(
        "{} with the vocabulary {}: {}",
        job.input.display(),
        job.vocab.display(),
        encoded.coverage.describe()
    );
    let ids = encoded.ids;
    tracing::info!(
        sentences = sentences.len(),
        hidden = model.hidden_size(),
        classes = model.num_classes(),
        "scoring {}",
        job.input.display()
    );

    let methods: Vec<ContextualDecomposition<'_, f32>> = job
        .conventions
        .iter()
        .map(|&c| ContextualDecomposition::new(&model, c))
        .collect();
    let methods: Vec<&dyn Attribution> = methods.iter().map(|m| m as &dyn Attribution).collect();
    let dataset = job
        .input
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let conventions = job
        .conventions
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(",");
    let mut writer = ParquetTableWriter::create(
        &job.output,
        scores_schema(),
        &[
            ("conventions", conventions),
            ("model", job.model.display().to_string()),
            ("tokens", encoded.coverage.tokens.to_string()),
            (
                "unknown_tokens",
                encoded.coverage.unknown_tokens().to_string(),
            ),
        ],
    )?;
    let mut builder = ScoresBuilder::default();
    let mut summary = ScoreSummary {
        sentences: sentences.len(),
        rows: 0,
        max_residual: 0.0,
        seconds: 0.0,
    };
    attribute_in_chunks(
        &methods,
        &ids,
        |_, ids| job.spans.spans(ids.len()),
        |results| {
            for result in results {
                let sentence = &sentences[result.sentence];
                let method = methods[result.method];
                for attribution in &result.spans {
                    summary.max_residual = summary.max_residual.max(attribution.residual);
                    builder.append(ScoreRecord {
                        sentence_id: &sentence.id,
                        dataset: &dataset,
                        split: None,
                        tokens: &sentence.tokens,
                        fine_label: None,
                        polarity: None,
                        method: method.method(),
                        convention: method.variant(),
                        attribution,
                    });
                }
            }
            summary.rows += builder.len();
            writer.write(&builder.finish()?)?;
            Ok(())
        },
    )?;
    writer.commit()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Attributes sentences in chunks of `SENTENCES_PER_BATCH` (bounding memory whatever the input
/// size), handing each chunk's results, in input order and with input positions, to `on_chunk`.
pub fn attribute_in_chunks(
    methods: &[&dyn Attribution],
    ids: &[Vec<usize>],
    spans_of: impl Fn(usize, &[usize]) -> Vec<Span> + Sync,
    mut on_chunk: impl FnMut(&[SentenceAttribution]) -> Result<(), Error>,
) -> Result<(), Error> {
    for (chunk_index, chunk_ids) in ids.chunks(SENTENCES_PER_BATCH).enumerate() {
        let offset = chunk_index * SENTENCES_PER_BATCH;
        let mut results = attribute_corpus(methods, chunk_ids, |k, ids| spans_of(offset + k, ids))
            .map_err(|mut e| {
                e.sentence += offset;
                e
            })?;
        for result in &mut results {
            result.sentence += offset;
        }
        tracing::debug!(
            "attributed sentences {}-{} of {}",
            offset + 1,
            offset + chunk_ids.len(),
            ids.len()
        );
        on_chunk(&results)?;
    }
    Ok(())
}
