//! The `train_log`, `model_eval` and `coefficients` tables of training stages.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{OutputError, arrow_error};
use crate::model::TrainRecord;

/// Column layout of `train_log` (documented in `schemas/train_log.yaml`).
pub fn train_log_schema() -> SchemaRef {
    let float64 = |name: &str| Field::new(name, DataType::Float64, false);
    let int64 = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        int64("epoch"),
        int64("iteration"),
        float64("loss"),
        float64("train_accuracy"),
        float64("dev_accuracy"),
        float64("seconds"),
        Field::new("kept", DataType::Boolean, false),
    ]))
}

pub fn train_log_batch(
    model: &str,
    log: &[TrainRecord],
    kept_iteration: usize,
) -> Result<RecordBatch, OutputError> {
    let int = |f: &dyn Fn(&TrainRecord) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            log.iter()
                .map(|r| i64::try_from(f(r)).expect("counts fit in i64")),
        ))
    };
    let float = |f: &dyn Fn(&TrainRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(log.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(log.iter().map(|_| model))),
        int(&|r| r.epoch),
        int(&|r| r.iteration),
        float(&|r| r.loss),
        float(&|r| r.train_accuracy),
        float(&|r| r.dev_accuracy),
        float(&|r| r.seconds),
        Arc::new(BooleanArray::from_iter(
            log.iter().map(|r| Some(r.iteration == kept_iteration)),
        )),
    ];
    RecordBatch::try_new(train_log_schema(), columns).map_err(arrow_error("train_log"))
}

/// Column layout of `model_eval` (documented in `schemas/model_eval.yaml`).
pub fn model_eval_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, true),
        Field::new("examples", DataType::Int64, false),
        Field::new("accuracy", DataType::Float64, false),
        Field::new("l2", DataType::Float64, true),
        Field::new("cache_key", DataType::Utf8, true),
        Field::new("reused", DataType::Boolean, false),
    ]))
}

/// One row of `model_eval`: a model's accuracy on one labelled input.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRecord {
    pub model: String,
    pub dataset: String,
    pub split: Option<String>,
    pub examples: usize,
    pub accuracy: f64,
    /// The regularisation strength chosen on dev (logistic regression).
    pub l2: Option<f64>,
    /// The model cache key (trained LSTMs).
    pub cache_key: Option<String>,
    pub reused: bool,
}

pub fn model_eval_batch(rows: &[EvalRecord]) -> Result<RecordBatch, OutputError> {
    let strings = |f: &dyn Fn(&EvalRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.model),
        strings(&|r| &r.dataset),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.split.as_deref()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|r| i64::try_from(r.examples).expect("counts fit in i64")),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.accuracy),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.l2))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.cache_key.as_deref()),
        )),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.reused)))),
    ];
    RecordBatch::try_new(model_eval_schema(), columns).map_err(arrow_error("model_eval"))
}

/// Column layout of `coefficients` (documented in `schemas/coefficients.yaml`).
pub fn coefficients_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("term", DataType::Utf8, false),
        Field::new("n", DataType::Int32, false),
        Field::new("coefficient", DataType::Float64, false),
    ]))
}

/// One feature of a linear model: an n-gram of normalised tokens (n = 0, empty term: intercept).
#[derive(Debug, Clone, PartialEq)]
pub struct CoefficientRecord {
    pub term: String,
    pub n: usize,
    pub coefficient: f64,
}

pub fn coefficients_batch(rows: &[CoefficientRecord]) -> Result<RecordBatch, OutputError> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.term))),
        Arc::new(Int32Array::from_iter_values(
            rows.iter()
                .map(|r| i32::try_from(r.n).expect("n-gram lengths are small")),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.coefficient),
        )),
    ];
    RecordBatch::try_new(coefficients_schema(), columns).map_err(arrow_error("coefficients"))
}
