//! The `train_log` and `model_eval` tables of training stages.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
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
        Field::new("cache_key", DataType::Utf8, false),
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
    pub cache_key: String,
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
        strings(&|r| &r.cache_key),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.reused)))),
    ];
    RecordBatch::try_new(model_eval_schema(), columns).map_err(arrow_error("model_eval"))
}
