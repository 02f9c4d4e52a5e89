//! The `scores` table: one row per sentence, span, method (with its variant) and target.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Float32Builder, Int8Builder, Int32Builder, ListBuilder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{OutputError, arrow_error, to_i32};
use crate::attribution::SpanScore;

fn per_class_field() -> Field {
    Field::new("item", DataType::Float32, false)
}

/// Column layout of `scores` (documented column by column in `schemas/scores.yaml`).
pub fn scores_schema() -> SchemaRef {
    let per_class = DataType::List(Arc::new(per_class_field()));
    Arc::new(Schema::new(vec![
        Field::new("sentence_id", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, true),
        Field::new("span_start", DataType::Int32, false),
        Field::new("span_end", DataType::Int32, false),
        Field::new("phrase", DataType::Utf8, false),
        Field::new("fine_label", DataType::Int8, true),
        Field::new("polarity", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, false),
        Field::new("variant", DataType::Utf8, true),
        Field::new("target", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
        Field::new("rel", per_class.clone(), true),
        Field::new("irrel", per_class, true),
        Field::new("delta", DataType::Float32, true),
    ]))
}

/// One row of `scores`, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRecord<'a> {
    pub sentence_id: &'a str,
    pub dataset: &'a str,
    pub split: Option<&'a str>,
    /// The sentence's tokens; the phrase is the span's tokens joined by single spaces.
    pub tokens: &'a [String],
    pub fine_label: Option<i8>,
    pub polarity: Option<&'a str>,
    pub method: &'a str,
    pub variant: Option<&'a str>,
    pub target: &'a str,
    pub score: &'a SpanScore,
}

/// Accumulates rows of `scores` into record batches.
pub struct ScoresBuilder {
    sentence_id: StringBuilder,
    dataset: StringBuilder,
    split: StringBuilder,
    span_start: Int32Builder,
    span_end: Int32Builder,
    phrase: StringBuilder,
    fine_label: Int8Builder,
    polarity: StringBuilder,
    method: StringBuilder,
    variant: StringBuilder,
    target: StringBuilder,
    score: Float32Builder,
    rel: ListBuilder<Float32Builder>,
    irrel: ListBuilder<Float32Builder>,
    delta: Float32Builder,
}

impl Default for ScoresBuilder {
    fn default() -> Self {
        let per_class = || ListBuilder::new(Float32Builder::new()).with_field(per_class_field());
        Self {
            sentence_id: StringBuilder::new(),
            dataset: StringBuilder::new(),
            split: StringBuilder::new(),
            span_start: Int32Builder::new(),
            span_end: Int32Builder::new(),
            phrase: StringBuilder::new(),
            fine_label: Int8Builder::new(),
            polarity: StringBuilder::new(),
            method: StringBuilder::new(),
            variant: StringBuilder::new(),
            target: StringBuilder::new(),
            score: Float32Builder::new(),
            rel: per_class(),
            irrel: per_class(),
            delta: Float32Builder::new(),
        }
    }
}

impl ScoresBuilder {
    pub fn len(&self) -> usize {
        self.score.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn append(&mut self, row: ScoreRecord<'_>) {
        let a = row.score;
        self.sentence_id.append_value(row.sentence_id);
        self.dataset.append_value(row.dataset);
        self.split.append_option(row.split);
        self.span_start.append_value(to_i32(a.span.start));
        self.span_end.append_value(to_i32(a.span.end));
        self.phrase
            .append_value(row.tokens[a.span.start..a.span.end].join(" "));
        self.fine_label.append_option(row.fine_label);
        self.polarity.append_option(row.polarity);
        self.method.append_value(row.method);
        self.variant.append_option(row.variant);
        self.target.append_value(row.target);
        self.score.append_value(a.score as f32);
        let per_class = |values: &Option<Vec<f64>>| {
            values
                .as_ref()
                .map(|v| v.iter().map(|&x| Some(x as f32)).collect::<Vec<_>>())
        };
        self.rel.append_option(per_class(&a.rel));
        self.irrel.append_option(per_class(&a.irrel));
        self.delta.append_option(a.delta.map(|d| d as f32));
    }

    /// Takes the rows appended so far as one record batch and starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, OutputError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.sentence_id.finish()),
            Arc::new(self.dataset.finish()),
            Arc::new(self.split.finish()),
            Arc::new(self.span_start.finish()),
            Arc::new(self.span_end.finish()),
            Arc::new(self.phrase.finish()),
            Arc::new(self.fine_label.finish()),
            Arc::new(self.polarity.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.variant.finish()),
            Arc::new(self.target.finish()),
            Arc::new(self.score.finish()),
            Arc::new(self.rel.finish()),
            Arc::new(self.irrel.finish()),
            Arc::new(self.delta.finish()),
        ];
        RecordBatch::try_new(scores_schema(), columns).map_err(arrow_error("scores"))
    }
}
