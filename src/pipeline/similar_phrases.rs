//! `similar_phrases` (paper §4.6, Table 3; spec §4(e)): CD's β_T as a phrase embedding, averaged
//! over a phrase's occurrences, and each query phrase's nearest phrases by cosine similarity.
//! The embeddings come from a scoring stage with a `{method: cd, beta: true}` method.

use serde::Deserialize;

use super::{ArtefactKind, PlanContext, RunContext, Stage, StagePlan, StageRef};
use crate::Error;
use crate::analysis::similar::{average_embeddings, nearest};
use crate::config::ConfigError;
use crate::io::{SimilarRecord, similar_phrases_batch, similar_phrases_schema};
use crate::model::normalize_token;

/// Options of a `similar_phrases` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarPhrasesStage {
    /// The input whose phrases are embedded.
    pub input: String,
    /// A scoring stage over that input with a CD method that keeps beta.
    pub scores: String,
    /// The phrases to find neighbours of, by category (default: one per category of the paper's
    /// Table 3).
    #[serde(default = "default_queries")]
    pub queries: Vec<Query>,
    /// Neighbours per query.
    #[serde(default = "default_neighbours")]
    pub neighbours: usize,
    /// Candidate phrases have at most this many words.
    #[serde(default = "default_max_words")]
    pub max_words: usize,
    /// Candidate phrases occur at least this many times (so that their average means something).
    #[serde(default = "default_min_occurrences")]
    pub min_occurrences: usize,
}

/// A query phrase (normalised tokens joined by spaces) and the category it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub category: String,
    pub phrase: String,
}

/// One query per category of the paper's Table 3, whose column headers the spec reads as these.
fn default_queries() -> Vec<Query> {
    [
        ("positive negation", "not bad"),
        ("negative negation", "not entertaining"),
        ("modification", "very funny"),
        ("positive word", "entertaining"),
        ("negative word", "bad"),
    ]
    .into_iter()
    .map(|(category, phrase)| Query {
        category: category.into(),
        phrase: phrase.into(),
    })
    .collect()
}

fn default_neighbours() -> usize {
    5
}

fn default_max_words() -> usize {
    4
}

fn default_min_occurrences() -> usize {
    2
}

impl Stage for SimilarPhrasesStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        let invalid = |option: &str, message: &str| ConfigError::Invalid {
            key: stage.key(option),
            message: message.into(),
        };
        context.input(&stage.key("input"), &self.input)?;
        context.provided_for(
            &stage.key("scores"),
            &self.scores,
            ArtefactKind::Betas,
            &self.input,
        )?;
        if self.queries.is_empty() {
            return Err(invalid("queries", "list at least one query"));
        }
        if self.neighbours == 0 || self.max_words == 0 || self.min_occurrences == 0 {
            return Err(invalid(
                "neighbours",
                "neighbours, max_words and min_occurrences are at least 1",
            ));
        }
        let summary = format!(
            "similar_phrases: the {} nearest phrases (at most {} words, at least {} occurrences) to {} queries by the cosine of averaged beta from {} -> {}.parquet",
            self.neighbours,
            self.max_words,
            self.min_occurrences,
            self.queries.len(),
            self.scores,
            stage.name
        );
        Ok(StagePlan::new(stage, summary, similar_phrases_schema())
            .reading_input(&self.input)
            .reading(&self.scores, ArtefactKind::Betas))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let corpus = context.corpus(&self.input);
        let betas = context.artefacts.betas(&self.scores);
        let phrase = |k: usize, span: crate::attribution::Span| -> String {
            corpus.sentences[k].tokens[span.range()]
                .iter()
                .map(|t| normalize_token(t))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let averages = average_embeddings(
            betas
                .betas
                .iter()
                .filter(|((_, span), _)| span.len() <= self.max_words)
                .map(|(&(k, span), beta)| (phrase(k, span), beta.as_slice())),
        );
        let candidates: Vec<(&str, &[f64])> = averages
            .iter()
            .filter(|(_, (_, count))| *count >= self.min_occurrences)
            .map(|(p, (e, _))| (p.as_str(), e.as_slice()))
            .collect();
        let mut rows = Vec::new();
        for query in &self.queries {
            let Some((embedding, count)) = averages.get(&query.phrase) else {
                tracing::warn!(
                    "stage {}: query `{}` does not occur among the embedded phrases of {}",
                    stage.name,
                    query.phrase,
                    self.input
                );
                continue;
            };
            for (rank, (neighbour, similarity)) in nearest(
                &query.phrase,
                embedding,
                candidates.iter().copied(),
                self.neighbours,
            )
            .into_iter()
            .enumerate()
            {
                rows.push(SimilarRecord {
                    dataset: corpus.name.clone(),
                    variant: betas.variant.clone(),
                    category: query.category.clone(),
                    query: query.phrase.clone(),
                    query_occurrences: *count,
                    rank: rank + 1,
                    neighbour: neighbour.to_string(),
                    neighbour_occurrences: averages[neighbour].1,
                    similarity,
                });
            }
        }
        let batch = similar_phrases_batch(&rows)?;
        context.write_table(stage, similar_phrases_schema(), vec![batch])?;
        Ok(())
    }
}
