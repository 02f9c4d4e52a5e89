//! The `sentences` and `constituents` tables: a corpus as Arrow record batches, so that tree
//! structure and labels can be joined to scores in SQL.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{OutputError, arrow_error, to_i32};
use crate::data::{Corpus, Polarity};

/// Column layout of `sentences` (documented in `schemas/sentences.yaml`).
pub fn sentences_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("sentence_id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, true),
        Field::new("line", DataType::Int32, false),
        Field::new(
            "tokens",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        Field::new("n_tokens", DataType::Int32, false),
        Field::new("label", DataType::Int8, true),
        Field::new("fine_label", DataType::Int8, true),
    ]))
}

/// Column layout of `constituents` (documented in `schemas/constituents.yaml`).
pub fn constituents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("sentence_id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, true),
        Field::new("node_id", DataType::Int32, false),
        Field::new("parent_id", DataType::Int32, true),
        Field::new("left_child_id", DataType::Int32, true),
        Field::new("right_child_id", DataType::Int32, true),
        Field::new("depth", DataType::Int32, false),
        Field::new("span_start", DataType::Int32, false),
        Field::new("span_end", DataType::Int32, false),
        Field::new("phrase", DataType::Utf8, false),
        Field::new("fine_label", DataType::Int8, false),
        Field::new("polarity", DataType::Utf8, false),
    ]))
}

/// Every sentence of a corpus as one record batch.
pub fn sentences_batch(corpus: &Corpus) -> Result<RecordBatch, OutputError> {
    let n = corpus.sentences.len();
    let mut tokens = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
        "item",
        DataType::Utf8,
        false,
    ));
    for sentence in &corpus.sentences {
        tokens.append_value(sentence.tokens.iter().map(Some));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            &corpus.name,
            n,
        ))),
        Arc::new(StringArray::from_iter_values(
            corpus.sentences.iter().map(|s| &s.id),
        )),
        Arc::new(StringArray::from(vec![corpus.split.as_deref(); n])),
        Arc::new(Int32Array::from_iter_values(
            corpus.sentences.iter().map(|s| to_i32(s.line)),
        )),
        Arc::new(tokens.finish()),
        Arc::new(Int32Array::from_iter_values(
            corpus.sentences.iter().map(|s| to_i32(s.tokens.len())),
        )),
        Arc::new(Int8Array::from_iter(corpus.sentences.iter().map(|s| {
            s.label
                .map(|l| i8::try_from(l).expect("binary labels are 0 or 1"))
        }))),
        Arc::new(Int8Array::from_iter(
            corpus.sentences.iter().map(|s| s.fine_label.map(fine_i8)),
        )),
    ];
    RecordBatch::try_new(sentences_schema(), columns).map_err(arrow_error("sentences"))
}

/// Every node of every tree as one record batch; `None` when the corpus has no trees.
pub fn constituents_batch(corpus: &Corpus) -> Result<Option<RecordBatch>, OutputError> {
    let Some(trees) = &corpus.trees else {
        return Ok(None);
    };
    let mut sentence_id = Vec::new();
    let mut node_id = Vec::new();
    let mut parent_id = Vec::new();
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut depth = Vec::new();
    let mut start = Vec::new();
    let mut end = Vec::new();
    let mut phrase = Vec::new();
    let mut fine = Vec::new();
    let mut polarity = Vec::new();
    for (sentence, tree) in corpus.sentences.iter().zip(trees) {
        for (id, node) in tree.nodes.iter().enumerate() {
            sentence_id.push(sentence.id.as_str());
            node_id.push(to_i32(id));
            parent_id.push(node.parent.map(to_i32));
            left.push(node.children.first().copied().map(to_i32));
            right.push(node.children.get(1).copied().map(to_i32));
            depth.push(to_i32(node.depth));
            start.push(to_i32(node.start));
            end.push(to_i32(node.end));
            phrase.push(tree.tokens[node.start..node.end].join(" "));
            fine.push(fine_i8(node.label));
            polarity.push(Polarity::of(node.label).name());
        }
    }
    let n = node_id.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            &corpus.name,
            n,
        ))),
        Arc::new(StringArray::from(sentence_id)),
        Arc::new(StringArray::from(vec![corpus.split.as_deref(); n])),
        Arc::new(Int32Array::from(node_id)),
        Arc::new(Int32Array::from(parent_id)),
        Arc::new(Int32Array::from(left)),
        Arc::new(Int32Array::from(right)),
        Arc::new(Int32Array::from(depth)),
        Arc::new(Int32Array::from(start)),
        Arc::new(Int32Array::from(end)),
        Arc::new(StringArray::from(phrase)),
        Arc::new(Int8Array::from(fine)),
        Arc::new(StringArray::from(polarity)),
    ];
    RecordBatch::try_new(constituents_schema(), columns)
        .map(Some)
        .map_err(arrow_error("constituents"))
}

/// SST fine labels are 0-4.
fn fine_i8(label: u8) -> i8 {
    i8::try_from(label).expect("fine labels are 0-4")
}

/// Column layout of `vocabulary_coverage` (documented in `schemas/vocabulary_coverage.yaml`).
pub fn vocabulary_coverage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("vocabulary", DataType::Utf8, false),
        Field::new("sentences", DataType::Int64, false),
        Field::new("tokens", DataType::Int64, false),
        Field::new("unknown_tokens", DataType::Int64, false),
        Field::new("unknown_types", DataType::Int64, false),
        Field::new(
            "most_frequent_unknown",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
    ]))
}

/// One row of `vocabulary_coverage`: an input encoded with a model's vocabulary.
#[derive(Debug, Clone)]
pub struct CoverageRecord<'a> {
    pub dataset: &'a str,
    pub model: &'a str,
    pub vocabulary: &'a std::path::Path,
    pub coverage: &'a crate::model::Coverage,
}

/// The unknown tokens listed per row of `vocabulary_coverage`.
const LISTED_UNKNOWN: usize = 20;

pub fn vocabulary_coverage_batch(rows: &[CoverageRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let count = |f: &dyn Fn(&CoverageRecord<'_>) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|r| i64::try_from(f(r)).expect("counts fit in i64")),
        ))
    };
    let mut listed = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
        "item",
        DataType::Utf8,
        false,
    ));
    for row in rows {
        listed.append_value(
            row.coverage
                .most_frequent_unknown(LISTED_UNKNOWN)
                .into_iter()
                .map(Some),
        );
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.dataset),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.model))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.vocabulary.display().to_string()),
        )),
        count(&|r| r.coverage.sentences),
        count(&|r| r.coverage.tokens),
        count(&|r| r.coverage.unknown_tokens()),
        count(&|r| r.coverage.unknown.len()),
        Arc::new(listed.finish()),
    ];
    RecordBatch::try_new(vocabulary_coverage_schema(), columns)
        .map_err(arrow_error("vocabulary_coverage"))
}
