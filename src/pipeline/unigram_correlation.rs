//! `unigram_correlation` (paper Table 4; spec §4(a), §5.7): per method, Pearson's r between each
//! word's score in its sentence and the logistic-regression coefficient of that word, one point per
//! token occurrence of the input's labelled sentences, and again per word type (its scores
//! averaged), each with a seeded 95 % bootstrap interval.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Deserialize;

use super::{ArtefactKind, MethodRef, PlanContext, RunContext, Stage, StagePlan, StageRef};
use crate::Error;
use crate::analysis::stats::{pearson, pearson_bootstrap};
use crate::attribution::Span;
use crate::config::ConfigError;
use crate::io::{
    CorrelationRecord, SentenceRef, WordPointRecord, unigram_correlations_batch,
    unigram_correlations_schema, word_points_batch, word_points_schema,
};
use crate::model::normalize_token;

/// Options of a `unigram_correlation` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnigramCorrelationStage {
    /// The input whose labelled sentences give the points.
    pub input: String,
    /// A scoring stage over that input that scored every word.
    pub scores: String,
    /// A `train_logreg` stage, whose unigram coefficients the scores are compared with.
    pub coefficients: String,
    /// Bootstrap resamples for the intervals (0: no interval).
    #[serde(default = "default_resamples")]
    pub resamples: usize,
    /// Seeds the bootstrap.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_resamples() -> usize {
    1000
}

fn default_seed() -> u64 {
    1
}

/// A word with a coefficient: its term, coefficient, and each method's score.
struct Point {
    sentence: usize,
    position: usize,
    term: String,
    coefficient: f64,
}

impl Stage for UnigramCorrelationStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        let (coverage, _) = context.scores_for(&stage.key("scores"), &self.scores, &self.input)?;
        if !coverage.covers_words() {
            return Err(ConfigError::Invalid {
                key: stage.key("scores"),
                message: format!(
                    "stage `{}` must score every word (spans unigrams, all_spans or constituents)",
                    self.scores
                ),
            });
        }
        context.provided(
            &stage.key("coefficients"),
            &self.coefficients,
            ArtefactKind::Coefficients,
        )?;
        let summary = format!(
            "unigram_correlation: Pearson's r of word scores of {} against the coefficients of {}, per token and per word type, {} bootstrap resamples -> {}.parquet, {}_points.parquet",
            self.scores, self.coefficients, self.resamples, stage.name, stage.name
        );
        Ok(
            StagePlan::new(stage, summary, unigram_correlations_schema())
                .with_table(stage, "points", word_points_schema())
                .reading_input(&self.input)
                .reading(&self.scores, ArtefactKind::Scores)
                .reading(&self.coefficients, ArtefactKind::Coefficients),
        )
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let corpus = context.corpus(&self.input);
        let index = context.artefacts.scores(&self.scores);
        let coefficients = &context.artefacts.coefficients(&self.coefficients).terms;
        let (mut points, mut missing) = (Vec::new(), BTreeMap::<String, usize>::new());
        for (k, sentence) in corpus.sentences.iter().enumerate() {
            if sentence.label.is_none() {
                continue;
            }
            for (position, token) in sentence.tokens.iter().enumerate() {
                let term = normalize_token(token);
                match coefficients.get(&term) {
                    Some(&coefficient) => points.push(Point {
                        sentence: k,
                        position,
                        term,
                        coefficient,
                    }),
                    None => *missing.entry(term).or_default() += 1,
                }
            }
        }
        let score = |point: &Point, method: usize| -> f64 {
            index
                .get(
                    point.sentence,
                    Span::new(point.position, point.position + 1),
                )
                .expect("planned: every word is scored")[method]
        };
        let missing_tokens: usize = missing.values().sum();
        let correlate = |xs: &[f64], ys: &[f64], seed: u64| {
            (
                pearson(xs, ys),
                (self.resamples > 0)
                    .then(|| pearson_bootstrap(xs, ys, self.resamples, 0.95, seed))
                    .flatten(),
            )
        };
        let coefficients_of: Vec<f64> = points.iter().map(|p| p.coefficient).collect();
        let rows: Vec<CorrelationRecord> = index
            .methods
            .par_iter()
            .enumerate()
            .flat_map_iter(|(m, method)| {
                let scores: Vec<f64> = points.iter().map(|p| score(p, m)).collect();
                let (token_r, token_interval) = correlate(&coefficients_of, &scores, self.seed);
                // Per word type: the mean score of its occurrences against its coefficient.
                let mut types: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
                for (point, &s) in points.iter().zip(&scores) {
                    let entry = types
                        .entry(&point.term)
                        .or_insert((point.coefficient, 0.0, 0));
                    entry.1 += s;
                    entry.2 += 1;
                }
                let (type_coefficients, type_scores): (Vec<f64>, Vec<f64>) = types
                    .values()
                    .map(|&(c, total, n)| (c, total / n as f64))
                    .unzip();
                let (type_r, type_interval) =
                    correlate(&type_coefficients, &type_scores, self.seed);
                let record = |unit, points, missing, pearson_r, interval| CorrelationRecord {
                    dataset: corpus.name.clone(),
                    split: corpus.split.clone(),
                    coefficients: self.coefficients.clone(),
                    method: method.clone(),
                    unit,
                    points,
                    missing,
                    pearson_r,
                    interval,
                    resamples: self.resamples,
                };
                [
                    record(
                        "token",
                        points.len(),
                        missing_tokens,
                        token_r,
                        token_interval,
                    ),
                    record("type", types.len(), missing.len(), type_r, type_interval),
                ]
            })
            .collect();
        for row in rows.iter().filter(|r| r.unit == "token") {
            tracing::info!(
                "stage {}: {}: r = {} over {} tokens ({} without a coefficient)",
                stage.name,
                row.method,
                row.pearson_r.map_or("-".into(), |r| format!("{r:.3}")),
                row.points,
                row.missing
            );
        }
        let sentences = SentenceRef::every_sentence_of(corpus);
        let methods: &[MethodRef] = &index.methods;
        let mut point_rows = Vec::with_capacity(points.len() * methods.len());
        for point in &points {
            for (m, method) in methods.iter().enumerate() {
                point_rows.push(WordPointRecord {
                    sentence: &sentences[point.sentence],
                    position: point.position,
                    token: &corpus.sentences[point.sentence].tokens[point.position],
                    term: &point.term,
                    coefficient: point.coefficient,
                    method,
                    score: score(point, m),
                });
            }
        }
        let summary = unigram_correlations_batch(&rows)?;
        let points_batch = word_points_batch(&point_rows)?;
        context.write_table(stage, unigram_correlations_schema(), vec![summary])?;
        let mut writer = context.extra_table_writer(stage, "points", word_points_schema())?;
        writer.write(&points_batch)?;
        context.finish_extra_table(writer)?;
        Ok(())
    }
}
