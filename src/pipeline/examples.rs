//! What the training stages share: their inputs, labelled texts and evaluation table.

use arrow_schema::SchemaRef;

use super::{PlanContext, RunContext, StagePlan, StageRef};
use crate::Error;
use crate::config::ConfigError;
use crate::data::{Corpus, binary_label};
use crate::io::{EvalRecord, model_eval_batch, model_eval_schema};

/// Checks a training stage's `train`, `dev` and `test` inputs; returns the inputs it reads besides
/// `train`.
pub fn plan_inputs(
    stage: &StageRef<'_>,
    context: &PlanContext<'_>,
    train: &str,
    dev: &str,
    test: &[String],
) -> Result<Vec<String>, ConfigError> {
    context.input(&stage.key("train"), train)?;
    context.input(&stage.key("dev"), dev)?;
    for (k, input) in test.iter().enumerate() {
        context.input(&stage.key(&format!("test[{k}]")), input)?;
    }
    Ok(std::iter::once(dev.to_string())
        .chain(test.iter().cloned())
        .collect())
}

/// The plan of a training stage: about `train`, reading `reads`, writing `table` and its
/// `<stage>_eval` table.
pub fn training_plan(
    summary: String,
    train: &str,
    reads: Vec<String>,
    table: SchemaRef,
    trains_model: bool,
) -> StagePlan {
    StagePlan {
        summary,
        input: Some(train.to_string()),
        reads_inputs: reads,
        model: None,
        reads_tables: Vec::new(),
        table,
        extra_tables: vec![("eval".into(), model_eval_schema())],
        files: Vec::new(),
        trains_model,
        scores: None,
        phrases: false,
    }
}

/// Writes a training stage's `<stage>_eval` table.
pub fn write_evaluations(
    stage: &StageRef<'_>,
    context: &mut RunContext,
    rows: &[EvalRecord],
) -> Result<(), Error> {
    let mut writer = context.extra_table_writer(stage, "eval", model_eval_schema())?;
    writer.write(&model_eval_batch(rows)?)?;
    context.finish_extra_table(writer)?;
    Ok(())
}

/// A labelled token sequence and the line of the input it comes from.
#[derive(Debug, Clone, Copy)]
pub struct LabelledText<'a> {
    pub line: usize,
    pub tokens: &'a [String],
    /// 0 negative, 1 positive.
    pub label: usize,
}

/// Training texts: for SST trees every non-neutral constituent (the authors' `train_subtrees`),
/// otherwise every labelled sentence.
pub fn training_texts(corpus: &Corpus) -> Vec<LabelledText<'_>> {
    let Some(trees) = &corpus.trees else {
        return sentence_texts(corpus);
    };
    let mut texts = Vec::new();
    for (sentence, tree) in corpus.sentences.iter().zip(trees) {
        for node in &tree.nodes {
            if let Some(label) = binary_label(node.label) {
                texts.push(LabelledText {
                    line: sentence.line,
                    tokens: &tree.tokens[node.start..node.end],
                    label: usize::from(label == 1),
                });
            }
        }
    }
    texts
}

/// Keeps the first of every identical (tokens, label) pair, as GLUE's SST-2 phrase set does.
pub fn distinct(mut texts: Vec<LabelledText<'_>>) -> Vec<LabelledText<'_>> {
    let mut seen = std::collections::HashSet::new();
    texts.retain(|t| seen.insert((t.tokens, t.label)));
    texts
}

/// Every labelled sentence (for SST, the non-neutral roots: SST-2).
pub fn sentence_texts(corpus: &Corpus) -> Vec<LabelledText<'_>> {
    corpus
        .sentences
        .iter()
        .filter_map(|s| {
            s.label.map(|label| LabelledText {
                line: s.line,
                tokens: &s.tokens,
                label: usize::from(label == 1),
            })
        })
        .collect()
}
