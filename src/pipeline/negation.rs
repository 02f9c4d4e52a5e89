//! `negation`: negation constituents of SST trees (paper §4.5) and their interaction scores,
//! score(whole phrase) − score(negated child) − score(negation child), each score taken from an
//! earlier scoring stage, that is, in the context of the full sentence.

use arrow_array::RecordBatch;
use serde::Deserialize;

use super::{
    Artefact, ArtefactKind, PlanContext, Provides, RunContext, Scope, ScoreIndex, Stage, StagePlan,
    StageRef,
};
use crate::Error;
use crate::analysis::negation::{MAX_WORDS, NEGATION_WORDS, NegationKind, NegationRule};
use crate::attribution::Span;
use crate::config::ConfigError;
use crate::data::Corpus;
use crate::io::{
    InteractionRecord, InteractionsRecord, OutputError, SentenceRef, interactions_batch,
    interactions_schema, negation_interactions_batch, negation_interactions_schema,
};

/// Options of a `negation` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegationStage {
    /// An `sst_trees` input.
    pub input: String,
    /// An earlier `score` stage over the same input that scored every constituent shorter than
    /// `max_words` (spans `constituents` or `all_spans`); interactions are computed for each of its
    /// methods with interactions (CD and leave-one-out), the others skipped.
    pub scores: String,
    /// Negation words, matched after lower-casing; the paper's list by default.
    #[serde(default = "default_words")]
    pub words: Vec<String>,
    /// Negation phrases have fewer than this many words (the paper: 10).
    #[serde(default = "default_max_words")]
    pub max_words: usize,
    /// The reference distribution the paper shows beside the negations: the interactions of every
    /// constituent of fewer than this many words with two children, written to
    /// `<stage>_reference.parquet` (the paper: 5; `null` for none).
    #[serde(default = "default_reference_words")]
    pub reference_words: Option<usize>,
}

fn default_reference_words() -> Option<usize> {
    Some(5)
}

fn default_words() -> Vec<String> {
    NEGATION_WORDS.iter().map(|w| w.to_string()).collect()
}

fn default_max_words() -> usize {
    MAX_WORDS
}

impl Stage for NegationStage {
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
            return Err(stage.invalid(
                "input",
                format!("`{}` is not an sst_trees input", self.input),
            ));
        }
        if self.words.is_empty() {
            return Err(stage.invalid("words", "list at least one negation word".into()));
        }
        if self.max_words < 3 {
            return Err(stage.invalid(
                "max_words",
                "a negation phrase has at least 2 words, so use 3 or more".into(),
            ));
        }
        let (coverage, methods) =
            context.scores_for(&stage.key("scores"), &self.scores, &self.input)?;
        if !coverage.covers_constituents(self.max_words - 1) {
            return Err(stage.invalid(
                "scores",
                format!(
                    "stage `{}` must score every constituent of up to {} words (spans constituents or all_spans)",
                    self.scores,
                    self.max_words - 1
                ),
            ));
        }
        if !methods.iter().any(|m| m.interactions) {
            return Err(stage.invalid(
                "scores",
                format!(
                    "stage `{}` has no method with interactions (cd, leave_one_out): the others' phrase scores are sums of word scores",
                    self.scores
                ),
            ));
        }
        if let Some(words) = self.reference_words
            && !(3..=self.max_words).contains(&words)
        {
            return Err(stage.invalid(
                "reference_words",
                format!(
                    "a constituent with two children has 2 words or more, so use 3 to max_words ({})",
                    self.max_words
                ),
            ));
        }
        let summary = format!(
            "negation: negation phrases of fewer than {} words in {} ({} negation words), interactions from {} -> {}.parquet",
            self.max_words,
            self.input,
            self.words.len(),
            self.scores,
            stage.name
        );
        let mut plan = StagePlan::new(stage, summary, negation_interactions_schema());
        if self.reference_words.is_some() {
            plan = plan.with_table(stage, "reference", interactions_schema());
        }
        Ok(plan
            .reading_input(&self.input)
            .reading(&self.scores, ArtefactKind::Scores)
            .providing(Provides::Phrases {
                input: self.input.clone(),
            }))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let rule = NegationRule::new(self.words.iter().cloned(), self.max_words);
        let corpus = context.corpus(&self.input);
        let trees = corpus.trees.as_ref().expect("planned: input has trees");
        let index = context.artefacts.scores(&self.scores);
        let mut rows = Vec::new();
        let mut phrases = Vec::with_capacity(trees.len());
        let (mut positive, mut negative) = (0, 0);
        for (k, (sentence, tree)) in corpus.sentences.iter().zip(trees).enumerate() {
            let mut spans = Vec::new();
            for negation in rule.find(tree) {
                let node_span = |id: usize| Span::new(tree.nodes[id].start, tree.nodes[id].end);
                let (whole, negation_child, negated) = (
                    node_span(negation.phrase),
                    node_span(negation.negation),
                    node_span(negation.negated),
                );
                spans.extend([whole, negation_child, negated]);
                match negation.kind {
                    NegationKind::Positive => positive += 1,
                    NegationKind::Negative => negative += 1,
                }
                let score = |span: Span, method: usize| -> f64 {
                    index
                        .get(k, span)
                        .expect("planned: every constituent is scored")[method]
                };
                for (m, scored) in index.with_interactions() {
                    let (phrase_score, negation_score, negated_score) =
                        (score(whole, m), score(negation_child, m), score(negated, m));
                    rows.push(InteractionRecord {
                        dataset: corpus.name.clone(),
                        sentence_id: sentence.id.clone(),
                        split: corpus.split.clone(),
                        phrase: whole,
                        negation: negation_child,
                        negated,
                        phrase_text: tree.tokens[whole.start..whole.end].join(" "),
                        negation_word: negation.word.clone(),
                        kind: negation.kind.name(),
                        method: scored.method.clone(),
                        variant: scored.variant.clone(),
                        target: scored.target.clone(),
                        phrase_score,
                        negation_score,
                        negated_score,
                        interaction: phrase_score - negated_score - negation_score,
                        fine_labels: [negation.phrase, negation.negation, negation.negated]
                            .map(|id| tree.nodes[id].label),
                        sentence_label: sentence.label,
                    });
                }
            }
            phrases.push(spans);
        }
        tracing::info!(
            positive,
            negative,
            "stage {}: {} negation phrases in {} sentences",
            stage.name,
            positive + negative,
            phrases.iter().filter(|p| !p.is_empty()).count()
        );
        let reference = self
            .reference_words
            .map(|words| reference_interactions(corpus, index, words))
            .transpose()?;
        context
            .artefacts
            .insert(stage.name, Artefact::Phrases(phrases));
        let batch = negation_interactions_batch(&rows)?;
        context.write_table(stage, negation_interactions_schema(), vec![batch])?;
        if let Some(reference) = reference {
            let mut writer =
                context.extra_table_writer(stage, "reference", interactions_schema())?;
            writer.write(&reference)?;
            context.finish_extra_table(writer)?;
        }
        Ok(())
    }
}

/// score(phrase) − score(left child) − score(right child) of every constituent of fewer than
/// `words` words with two children, for every method of the scores.
fn reference_interactions(
    corpus: &Corpus,
    index: &ScoreIndex,
    words: usize,
) -> Result<RecordBatch, OutputError> {
    let trees = corpus.trees.as_ref().expect("planned: input has trees");
    let sentences = SentenceRef::every_sentence_of(corpus);
    let mut records = Vec::new();
    for (k, tree) in trees.iter().enumerate() {
        let span = |id: usize| Span::new(tree.nodes[id].start, tree.nodes[id].end);
        let score = |s: Span| {
            index
                .get(k, s)
                .expect("planned: every constituent is scored")
        };
        for (id, node) in tree.nodes.iter().enumerate() {
            let (&[left, right], true) = (node.children.as_slice(), node.end - node.start < words)
            else {
                continue;
            };
            let (phrase, left, right) = (span(id), span(left), span(right));
            let (whole, l, r) = (score(phrase), score(left), score(right));
            for (m, method) in index.with_interactions() {
                records.push(InteractionsRecord {
                    sentence: &sentences[k],
                    phrase,
                    split_at: left.end,
                    phrase_text: tree.tokens[phrase.range()].join(" "),
                    fine_label: node.label,
                    method,
                    phrase_score: whole[m],
                    left_score: l[m],
                    right_score: r[m],
                });
            }
        }
    }
    interactions_batch(&records)
}
