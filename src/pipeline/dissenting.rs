//! `dissenting_subphrases` (paper §4.3, Fig. 2; spec §4(b), §5.8): every phrase of at most
//! `max_words` words whose n-gram logistic-regression score exceeds `threshold` in absolute value
//! and that holds a subphrase of the opposite sign beyond it too, the subphrase scored by every
//! method in its full sentence. An `aggregate` stage (`value: subphrase_score`, `compare:
//! [positive, negative]`) then compares the methods' positive and negative subphrases.

use serde::Deserialize;

use super::{ArtefactKind, PlanContext, RunContext, Scope, Stage, StagePlan, StageRef};
use crate::Error;
use crate::analysis::dissenting::{NgramScorer, dissenting_pairs};
use crate::config::ConfigError;
use crate::io::{
    DissentRecord, SentenceRef, dissenting_subphrases_batch, dissenting_subphrases_schema,
};
use crate::model::normalize_token;

/// Options of a `dissenting_subphrases` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DissentingSubphrasesStage {
    /// The input whose sentences (reviews) are searched.
    pub input: String,
    /// A scoring stage over that input that scored every span of up to `max_words` words.
    pub scores: String,
    /// A `train_logreg` stage whose n-gram coefficients score the phrases (the paper's n-gram
    /// model).
    pub coefficients: String,
    /// Phrases have at most this many words (the paper: 5).
    #[serde(default = "default_max_words")]
    pub max_words: usize,
    /// A phrase and its subphrase both score beyond this in absolute value (the paper: 1.5).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_max_words() -> usize {
    5
}

fn default_threshold() -> f64 {
    1.5
}

impl Stage for DissentingSubphrasesStage {
    fn scope(&self) -> Scope {
        Scope::PerSentence
    }

    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        if self.max_words < 2 {
            return Err(stage.invalid(
                "max_words",
                "a phrase with a subphrase has 2 words or more".into(),
            ));
        }
        if !(self.threshold >= 0.0 && self.threshold.is_finite()) {
            return Err(stage.invalid("threshold", "a non-negative number".into()));
        }
        let (coverage, _) = context.scores_for(&stage.key("scores"), &self.scores, &self.input)?;
        if !coverage.covers_all_spans(Some(self.max_words)) {
            return Err(stage.invalid(
                "scores",
                format!(
                    "stage `{}` must score every span of up to {} words (spans all_spans, max_len at least {})",
                    self.scores, self.max_words, self.max_words
                ),
            ));
        }
        context.provided(
            &stage.key("coefficients"),
            &self.coefficients,
            ArtefactKind::Coefficients,
        )?;
        let summary = format!(
            "dissenting_subphrases: phrases of at most {} words of {} beyond ±{} by {} holding a subphrase of the other sign, scored by {} -> {}.parquet",
            self.max_words, self.input, self.threshold, self.coefficients, self.scores, stage.name
        );
        Ok(
            StagePlan::new(stage, summary, dissenting_subphrases_schema())
                .reading_input(&self.input)
                .reading(&self.scores, ArtefactKind::Scores)
                .reading(&self.coefficients, ArtefactKind::Coefficients),
        )
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let corpus = context.corpus(&self.input);
        let index = context.artefacts.scores(&self.scores);
        let coefficients = context.artefacts.coefficients(&self.coefficients);
        let model = NgramScorer {
            coefficients: &coefficients.terms,
            max_n: coefficients.max_n,
            counts: coefficients.counts,
        };
        let sentences = SentenceRef::every_sentence_of(corpus);
        let mut rows = Vec::new();
        let mut pairs_found = 0;
        for (k, sentence) in corpus.sentences.iter().enumerate() {
            let normalized: Vec<String> =
                sentence.tokens.iter().map(|t| normalize_token(t)).collect();
            let pairs = dissenting_pairs(&normalized, &model, self.max_words, self.threshold);
            pairs_found += pairs.len();
            for pair in pairs {
                let score = |span| {
                    index
                        .get(k, span)
                        .expect("planned: every short span is scored")
                };
                let (sub_scores, phrase_scores) = (score(pair.subphrase), score(pair.phrase));
                for (m, method) in index.methods.iter().enumerate() {
                    rows.push(DissentRecord {
                        sentence: &sentences[k],
                        phrase: pair.phrase,
                        phrase_text: sentence.tokens[pair.phrase.range()].join(" "),
                        phrase_lr: pair.phrase_score,
                        subphrase: pair.subphrase,
                        subphrase_text: sentence.tokens[pair.subphrase.range()].join(" "),
                        subphrase_lr: pair.subphrase_score,
                        kind: if pair.subphrase_score > 0.0 {
                            "positive"
                        } else {
                            "negative"
                        },
                        method,
                        subphrase_score: sub_scores[m],
                        phrase_score: phrase_scores[m],
                        sentence_label: sentence.label,
                    });
                }
            }
        }
        tracing::info!(
            "stage {}: {pairs_found} phrase-subphrase pairs in {} sentences",
            stage.name,
            corpus.sentences.len()
        );
        let batch = dissenting_subphrases_batch(&rows)?;
        context.write_table(stage, dissenting_subphrases_schema(), vec![batch])?;
        Ok(())
    }
}
