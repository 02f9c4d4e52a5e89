//! `cd-pipeline score`: attribution scores for every requested span of pre-tokenised sentences,
//! by every requested method.

use std::path::PathBuf;
use std::time::Instant;

use crate::Error;
use crate::attribution::{MethodConfig, SpanSet, Target, attribute_in_chunks, build_methods};
use crate::config::ConfigError;
use crate::data::TokenJsonl;
use crate::io::{ParquetTableWriter, ScoreRecord, ScoresBuilder, check_writable, scores_schema};
use crate::model::{Coverage, Network, Vocabulary};
use crate::pipeline::BATCH_SENTENCES;

/// What to score and where to write it.
#[derive(Debug, Clone)]
pub struct ScoreJob {
    pub model: PathBuf,
    pub vocab: PathBuf,
    pub input: PathBuf,
    pub spans: SpanSet,
    /// Keep spans of at most this many tokens.
    pub max_len: Option<usize>,
    pub methods: Vec<MethodConfig>,
    /// The target of every method; each method's default when `None`.
    pub target: Option<Target>,
    pub output: PathBuf,
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSummary {
    pub sentences: usize,
    pub rows: usize,
    /// Largest |delta| over the rows that have one.
    pub max_delta: Option<f64>,
    pub seconds: f64,
}

/// Runs the job on the current rayon pool; the output appears only if everything succeeded.
pub fn run_score(job: &ScoreJob) -> Result<ScoreSummary, Error> {
    let started = Instant::now();
    check_writable(std::slice::from_ref(&job.output))?;
    if job.max_len == Some(0) {
        return Err(ConfigError::Invalid {
            key: "--max-len".into(),
            message: "must be at least 1".into(),
        }
        .into());
    }
    let model = Network::<f32>::load(&job.model)?;
    let vocab = Vocabulary::load(&job.vocab)?;
    vocab.check_matches(&job.model, model.vocab_size())?;
    let methods =
        build_methods(&job.methods, job.target, &model, Some(&vocab)).map_err(|message| {
            ConfigError::Invalid {
                key: "--method".into(),
                message,
            }
        })?;
    let names: Vec<(Option<String>, String)> = methods
        .iter()
        .map(|(m, target)| (m.variant(), target.to_string()))
        .collect();
    tracing::info!(
        architecture = %model.architecture(),
        hidden = model.hidden_size(),
        classes = model.num_classes(),
        methods = methods
            .iter()
            .zip(&names)
            .map(|((m, _), (variant, target))| match variant {
                Some(v) => format!("{} ({v}) of {target}", m.method()),
                None => format!("{} of {target}", m.method()),
            })
            .collect::<Vec<_>>()
            .join(", "),
        "scoring {} in batches of {BATCH_SENTENCES} sentences",
        job.input.display()
    );

    let dataset = job
        .input
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let method_list = job
        .methods
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let mut writer = ParquetTableWriter::create(
        &job.output,
        scores_schema(),
        &[
            ("methods", method_list),
            ("model", job.model.display().to_string()),
        ],
    )?;
    let mut builder = ScoresBuilder::default();
    let mut summary = ScoreSummary {
        sentences: 0,
        rows: 0,
        max_delta: None,
        seconds: 0.0,
    };
    let mut coverage = Coverage::default();
    let calls: Vec<(&dyn crate::attribution::Attribution, Target)> =
        methods.iter().map(|(m, t)| (m.as_ref(), *t)).collect();
    let spans_of = |_: usize, ids: &[usize]| {
        let mut spans = job.spans.spans(ids.len());
        spans.retain(|s| job.max_len.is_none_or(|max| s.len() <= max));
        spans
    };
    // One pass to check every line before anything is scored; then the file is streamed.
    for sentence in TokenJsonl::new(&job.input, crate::data::open(&job.input)?) {
        sentence?;
    }
    let mut lines = TokenJsonl::new(&job.input, crate::data::open(&job.input)?);
    loop {
        let sentences = (&mut lines)
            .take(BATCH_SENTENCES)
            .collect::<Result<Vec<_>, _>>()?;
        if sentences.is_empty() {
            break;
        }
        let first = summary.sentences;
        summary.sentences += sentences.len();
        let encoded = vocab.encode(
            sentences.iter().map(|s| (s.line, s.tokens.as_slice())),
            &job.input,
        )?;
        coverage.add(&encoded.coverage);
        attribute_in_chunks(&calls, &encoded.ids, spans_of, |results| {
            for result in results {
                let sentence = &sentences[result.sentence];
                let (method, _) = &methods[result.method];
                let (variant, target) = &names[result.method];
                for score in &result.spans {
                    if let Some(delta) = score.delta {
                        summary.max_delta = Some(summary.max_delta.unwrap_or(0.0).max(delta.abs()));
                    }
                    builder.append(ScoreRecord {
                        sentence_id: &sentence.id,
                        dataset: &dataset,
                        split: None,
                        tokens: &sentence.tokens,
                        fine_label: None,
                        polarity: None,
                        method: method.method(),
                        variant: variant.as_deref(),
                        target,
                        score,
                    });
                }
            }
            summary.rows += builder.len();
            writer.write(&builder.finish()?)?;
            Ok::<(), Error>(())
        })
        .map_err(|e| e.in_batch_at(first))?;
    }
    if summary.sentences == 0 {
        tracing::warn!(
            "{} has no sentences: the table will be empty",
            job.input.display()
        );
    }
    tracing::info!(
        "{} with the vocabulary {}: {}",
        job.input.display(),
        job.vocab.display(),
        coverage.describe()
    );
    writer.add_metadata("tokens", coverage.tokens.to_string());
    writer.add_metadata("unknown_tokens", coverage.unknown_tokens().to_string());
    writer.commit()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
