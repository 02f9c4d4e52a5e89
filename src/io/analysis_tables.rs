//! The `negation_interactions` and `aggregate_stats` tables.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{OutputError, arrow_error, to_i32};
use crate::attribution::Span;

/// Column layout of `negation_interactions` (documented in `schemas/negation_interactions.yaml`).
pub fn negation_interactions_schema() -> SchemaRef {
    let int32 = |name: &str| Field::new(name, DataType::Int32, false);
    let float64 = |name: &str| Field::new(name, DataType::Float64, false);
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8("dataset"),
        utf8("sentence_id"),
        Field::new("split", DataType::Utf8, true),
        int32("phrase_start"),
        int32("phrase_end"),
        int32("negation_start"),
        int32("negation_end"),
        int32("negated_start"),
        int32("negated_end"),
        utf8("phrase"),
        utf8("negation_word"),
        utf8("kind"),
        utf8("method"),
        Field::new("variant", DataType::Utf8, true),
        utf8("target"),
        float64("phrase_score"),
        float64("negation_score"),
        float64("negated_score"),
        float64("interaction"),
        Field::new("phrase_fine_label", DataType::Int8, false),
        Field::new("negation_fine_label", DataType::Int8, false),
        Field::new("negated_fine_label", DataType::Int8, false),
        Field::new("sentence_label", DataType::Int8, true),
    ]))
}

/// One row of `negation_interactions`.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRecord {
    pub dataset: String,
    pub sentence_id: String,
    pub split: Option<String>,
    pub phrase: Span,
    pub negation: Span,
    pub negated: Span,
    pub phrase_text: String,
    pub negation_word: String,
    pub kind: &'static str,
    pub method: String,
    pub variant: Option<String>,
    pub target: String,
    pub phrase_score: f64,
    pub negation_score: f64,
    pub negated_score: f64,
    pub interaction: f64,
    /// Fine labels 0-4 of the whole phrase, the negation child and the negated child.
    pub fine_labels: [u8; 3],
    /// Binary class of the sentence (0 negative, 1 positive), none when neutral.
    pub sentence_label: Option<i64>,
}

pub fn negation_interactions_batch(rows: &[InteractionRecord]) -> Result<RecordBatch, OutputError> {
    let strings = |f: &dyn Fn(&InteractionRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let ints = |f: &dyn Fn(&InteractionRecord) -> usize| -> ArrayRef {
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| to_i32(f(r))),
        ))
    };
    let floats = |f: &dyn Fn(&InteractionRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let label = |k: usize| -> ArrayRef {
        Arc::new(Int8Array::from_iter_values(rows.iter().map(|r| {
            i8::try_from(r.fine_labels[k]).expect("labels are 0-4")
        })))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.dataset),
        strings(&|r| &r.sentence_id),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.split.as_deref()),
        )),
        ints(&|r| r.phrase.start),
        ints(&|r| r.phrase.end),
        ints(&|r| r.negation.start),
        ints(&|r| r.negation.end),
        ints(&|r| r.negated.start),
        ints(&|r| r.negated.end),
        strings(&|r| &r.phrase_text),
        strings(&|r| &r.negation_word),
        strings(&|r| r.kind),
        strings(&|r| &r.method),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.variant.as_deref()),
        )),
        strings(&|r| &r.target),
        floats(&|r| r.phrase_score),
        floats(&|r| r.negation_score),
        floats(&|r| r.negated_score),
        floats(&|r| r.interaction),
        label(0),
        label(1),
        label(2),
        Arc::new(Int8Array::from_iter(rows.iter().map(|r| {
            r.sentence_label
                .map(|l| i8::try_from(l).expect("binary labels are 0 or 1"))
        }))),
    ];
    RecordBatch::try_new(negation_interactions_schema(), columns)
        .map_err(arrow_error("negation_interactions"))
}

/// Column layout of `aggregate_stats` (documented in `schemas/aggregate_stats.yaml`).
pub fn aggregate_stats_schema() -> SchemaRef {
    let float64 = |name: &str| Field::new(name, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("method", DataType::Utf8, false),
        Field::new("variant", DataType::Utf8, true),
        Field::new("target", DataType::Utf8, false),
        Field::new("group_by", DataType::Utf8, false),
        Field::new("group", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
        float64("mean"),
        float64("std"),
        float64("min"),
        float64("q05"),
        float64("q25"),
        float64("median"),
        float64("q75"),
        float64("q95"),
        float64("max"),
        Field::new("compared_with", DataType::Utf8, true),
        Field::new("ks_alternative", DataType::Utf8, true),
        Field::new("ks_statistic", DataType::Float64, true),
        Field::new("ks_p_value", DataType::Float64, true),
    ]))
}

/// One row of `aggregate_stats`: the distribution of one value for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRecord {
    pub source: String,
    pub value: String,
    pub method: String,
    pub variant: Option<String>,
    pub target: String,
    pub group_by: String,
    pub group: String,
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); NaN for a single value.
    pub std: f64,
    /// min, q05, q25, median, q75, q95, max.
    pub quantiles: [f64; 7],
    /// The two-sample Kolmogorov-Smirnov comparison with another group, when configured.
    pub compared_with: Option<String>,
    /// `two_sided`, or `greater` for the one-sided D⁺ = sup [F_second − F_first] of the compared
    /// groups in their configured order.
    pub ks_alternative: Option<&'static str>,
    pub ks_statistic: Option<f64>,
    pub ks_p_value: Option<f64>,
}

pub fn aggregate_stats_batch(rows: &[StatsRecord]) -> Result<RecordBatch, OutputError> {
    let strings = |f: &dyn Fn(&StatsRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let quantile = |k: usize| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.quantiles[k]),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.source),
        strings(&|r| &r.value),
        strings(&|r| &r.method),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.variant.as_deref()),
        )),
        strings(&|r| &r.target),
        strings(&|r| &r.group_by),
        strings(&|r| &r.group),
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|r| i64::try_from(r.count).expect("counts fit in i64")),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.mean))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.std))),
        quantile(0),
        quantile(1),
        quantile(2),
        quantile(3),
        quantile(4),
        quantile(5),
        quantile(6),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.compared_with.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.ks_alternative),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.ks_statistic))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.ks_p_value))),
    ];
    RecordBatch::try_new(aggregate_stats_schema(), columns).map_err(arrow_error("aggregate_stats"))
}
