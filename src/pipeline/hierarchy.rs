//! `hierarchy`: ACD's hierarchical explanation of each sentence (`agg_1d`, see
//! [`crate::analysis::hierarchy`]) from one CD method's scores of every span, so that a sentence
//! is one batched CD call instead of one call per candidate merge.

use serde::Deserialize;

use super::{ArtefactKind, PlanContext, RunContext, Scope, Stage, StagePlan, StageRef};
use crate::Error;
use crate::analysis::hierarchy::agglomerate;
use crate::config::ConfigError;
use crate::io::{HierarchyRecord, SentenceRef, hierarchy_batch, hierarchy_schema};

/// Options of a `hierarchy` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HierarchyStage {
    /// The input whose sentences are explained.
    pub input: String,
    /// A scoring stage over that input that scored every span with CD.
    pub scores: String,
    /// The CD convention of those scores to use (default: the stage's first CD method).
    #[serde(default)]
    pub variant: Option<String>,
    /// `agg_1d`'s `percentile_include`: candidates at or above this percentile join (ACD: 90).
    #[serde(default = "default_percentile")]
    pub percentile: f64,
    /// Select by |score| (`agg_1d`'s default) rather than by signed score.
    #[serde(default = "default_absolute")]
    pub absolute: bool,
}

fn default_percentile() -> f64 {
    90.0
}

fn default_absolute() -> bool {
    true
}

impl HierarchyStage {
    /// The position of the chosen CD method among a scoring stage's methods.
    fn method(&self, methods: &[crate::io::MethodRef]) -> Option<usize> {
        methods.iter().position(|m| {
            m.method == "cd"
                && self
                    .variant
                    .as_ref()
                    .is_none_or(|v| m.variant.as_ref() == Some(v))
        })
    }
}

impl Stage for HierarchyStage {
    fn scope(&self) -> Scope {
        Scope::PerSentence
    }

    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        context.input(&stage.key("input"), &self.input)?;
        if !(0.0..=100.0).contains(&self.percentile) {
            return Err(stage.invalid("percentile", "a percentile from 0 to 100".into()));
        }
        let (coverage, methods) =
            context.scores_for(&stage.key("scores"), &self.scores, &self.input)?;
        if !coverage.covers_all_spans(None) {
            return Err(stage.invalid(
                "scores",
                format!(
                    "stage `{}` must score every span (spans all_spans, no max_len)",
                    self.scores
                ),
            ));
        }
        let Some(m) = self.method(methods) else {
            return Err(stage.invalid(
                "scores",
                format!(
                    "stage `{}` has no CD method{}",
                    self.scores,
                    self.variant
                        .as_ref()
                        .map_or_else(String::new, |v| format!(" in convention {v}"))
                ),
            ));
        };
        let summary = format!(
            "hierarchy: ACD's agglomeration of {} by {} from {} (percentile {}{}) -> {}.parquet",
            self.input,
            methods[m],
            self.scores,
            self.percentile,
            if self.absolute { ", by |score|" } else { "" },
            stage.name
        );
        Ok(StagePlan::new(stage, summary, hierarchy_schema())
            .reading_input(&self.input)
            .reading(&self.scores, ArtefactKind::Scores))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let corpus = context.corpus(&self.input);
        let index = context.artefacts.scores(&self.scores);
        let m = self.method(&index.methods).expect("planned: a CD method");
        let method = &index.methods[m];
        let sentences = SentenceRef::every_sentence_of(corpus);
        let mut rows = Vec::new();
        for (k, sentence) in corpus.sentences.iter().enumerate() {
            let score = |span| index.get(k, span).expect("planned: every span is scored")[m];
            let levels = agglomerate(sentence.tokens.len(), score, self.percentile, self.absolute);
            for (level, partition) in levels.into_iter().enumerate() {
                for (span, component) in partition.spans {
                    rows.push(HierarchyRecord {
                        sentence: &sentences[k],
                        level,
                        span,
                        phrase: sentence.tokens[span.range()].join(" "),
                        component,
                        score: score(span),
                        method,
                    });
                }
            }
        }
        tracing::info!(
            "stage {}: {} levels for {} sentences",
            stage.name,
            rows.iter().filter(|r| r.span.start == 0).count(),
            corpus.sentences.len()
        );
        let batch = hierarchy_batch(&rows)?;
        context.write_table(stage, hierarchy_schema(), vec![batch])?;
        Ok(())
    }
}
