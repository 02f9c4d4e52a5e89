//! `compositionality` (paper §4.4, Fig. 3; spec §4(c), §5.9): every SST constituent whose polarity
//! is opposite to its sentence's and whose length is a third to two thirds of it, scored by every
//! method of a scoring stage in its full sentence. Its one-sided KS statistic per method comes from
//! an `aggregate` stage (`value: score`, `compare: [positive, negative]`, `one_sided: true`).

use serde::Deserialize;

use super::{ArtefactKind, PlanContext, RunContext, Scope, Stage, StagePlan, StageRef};
use crate::Error;
use crate::analysis::compositionality::opposing_constituents;
use crate::config::ConfigError;
use crate::io::{PhraseScoreRecord, SentenceRef, compositionality_batch, compositionality_schema};

/// Options of a `compositionality` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositionalityStage {
    /// An `sst_trees` input.
    pub input: String,
    /// A scoring stage over that input that scored every constituent.
    pub scores: String,
}

impl Stage for CompositionalityStage {
    fn scope(&self) -> Scope {
        Scope::PerSentence
    }

    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        if !context.input_has_trees(&self.input) {
            return Err(ConfigError::Invalid {
                key: stage.key("input"),
                message: format!("`{}` is not an sst_trees input", self.input),
            });
        }
        let (coverage, _) = context.scores_for(&stage.key("scores"), &self.scores, &self.input)?;
        if !coverage.covers_constituents(usize::MAX) {
            return Err(ConfigError::Invalid {
                key: stage.key("scores"),
                message: format!(
                    "stage `{}` must score every constituent (spans constituents or all_spans, no max_len)",
                    self.scores
                ),
            });
        }
        let summary = format!(
            "compositionality: constituents of {} opposite to their sentence, a third to two thirds of it, scored by {} -> {}.parquet",
            self.input, self.scores, stage.name
        );
        Ok(StagePlan::new(stage, summary, compositionality_schema())
            .reading_input(&self.input)
            .reading(&self.scores, ArtefactKind::Scores))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let corpus = context.corpus(&self.input);
        let trees = corpus.trees.as_ref().expect("planned: the input has trees");
        let index = context.artefacts.scores(&self.scores);
        let sentences = SentenceRef::every_sentence_of(corpus);
        let mut rows = Vec::new();
        for (k, (tree, sentence)) in trees.iter().zip(&corpus.sentences).enumerate() {
            for found in opposing_constituents(tree) {
                let scores = index
                    .get(k, found.span)
                    .expect("planned: every constituent is scored");
                for (method, &score) in index.methods.iter().zip(scores) {
                    rows.push(PhraseScoreRecord {
                        sentence: &sentences[k],
                        span: found.span,
                        phrase: tree.tokens[found.span.range()].join(" "),
                        fine_label: tree.nodes[found.node].label,
                        kind: found.polarity.name(),
                        sentence_label: sentence.label,
                        method,
                        score,
                    });
                }
            }
        }
        tracing::info!(
            "stage {}: {} phrases",
            stage.name,
            rows.len() / index.methods.len().max(1)
        );
        let batch = compositionality_batch(&rows)?;
        context.write_table(stage, compositionality_schema(), vec![batch])?;
        Ok(())
    }
}
