//! What the training stages share: their inputs, labelled texts and evaluation table.

use arrow_schema::SchemaRef;

use super::{PlanContext, Provides, RunContext, StagePlan, StageRef};
use crate::Error;
use crate::config::ConfigError;
use crate::data::{Corpus, binary_label};
use crate::io::{EvalRecord, model_eval_batch, model_eval_schema};

/// The plan of a training stage: checks its `train`, `dev` and `test` inputs, which it reads, and
/// writes its table and `<stage>_eval`; it provides `provides`.
pub fn training_plan(
    stage: &StageRef<'_>,
    context: &PlanContext<'_>,
    inputs: (&str, &str, &[String]),
    summary: String,
    table: SchemaRef,
    provides: Provides,
) -> Result<StagePlan, ConfigError> {
    let (train, dev, test) = inputs;
    context.input(&stage.key("train"), train)?;
    context.input(&stage.key("dev"), dev)?;
    for (k, input) in test.iter().enumerate() {
        context.input(&stage.key(&format!("test[{k}]")), input)?;
    }
    let mut plan = StagePlan::new(stage, summary, table)
        .with_table(stage, "eval", model_eval_schema())
        .providing(provides)
        .reading_input(train)
        .reading_input(dev);
    for input in test {
        plan = plan.reading_input(input);
    }
    Ok(plan)
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
