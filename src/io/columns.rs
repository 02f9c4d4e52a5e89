//! Arrow columns built from rows, one function per column type, so that a table's batch is its
//! rows mapped column by column.

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int8Array, Int32Array, Int64Array, StringArray,
};
use arrow_schema::{DataType, Field};

use super::to_i32;

pub fn utf8<T>(rows: &[T], f: impl Fn(&T) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

pub fn utf8_or_null<T>(rows: &[T], f: impl Fn(&T) -> Option<&str>) -> ArrayRef {
    Arc::new(StringArray::from_iter(rows.iter().map(f)))
}

/// Token positions, lengths, levels: bounded by file sizes far below `i32::MAX`.
pub fn int32<T>(rows: &[T], f: impl Fn(&T) -> usize) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(
        rows.iter().map(|r| to_i32(f(r))),
    ))
}

pub fn int64<T>(rows: &[T], f: impl Fn(&T) -> usize) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        rows.iter()
            .map(|r| i64::try_from(f(r)).expect("counts fit in i64")),
    ))
}

/// Fine labels 0-4 and binary labels.
pub fn int8_or_null<T>(rows: &[T], f: impl Fn(&T) -> Option<i64>) -> ArrayRef {
    Arc::new(Int8Array::from_iter(rows.iter().map(|r| {
        f(r).map(|v| i8::try_from(v).expect("labels fit in i8"))
    })))
}

pub fn float64<T>(rows: &[T], f: impl Fn(&T) -> f64) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
}

pub fn float64_or_null<T>(rows: &[T], f: impl Fn(&T) -> Option<f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(rows.iter().map(f)))
}

pub fn boolean<T>(rows: &[T], f: impl Fn(&T) -> bool) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(f(r)))))
}

/// The element field of float lists.
pub fn float32_item() -> Field {
    Field::new("item", DataType::Float32, false)
}

pub fn float32_lists<T>(rows: &[T], f: impl Fn(&T) -> &[f32]) -> ArrayRef {
    let mut lists = ListBuilder::new(Float32Builder::new()).with_field(float32_item());
    for row in rows {
        lists.append_value(f(row).iter().map(|&v| Some(v)));
    }
    Arc::new(lists.finish())
}
