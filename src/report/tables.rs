//! The run folder's tables as the report reads them: each Parquet file's stage and stage kind
//! (from its key-value metadata) and schema first, then only the columns a figure needs.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int8Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ReportError;

/// One Parquet file of the run folder, not yet read.
#[derive(Debug, Clone)]
pub struct TableFile {
    pub path: PathBuf,
    /// The other files of a table a sharded run wrote as hive partitions
    /// (`<stem>/shard=<i>/part-0.parquet`; `path` is the first).
    pub partitions: Vec<PathBuf>,
    /// The file name without `.parquet`.
    pub stem: String,
    pub stage: Option<String>,
    pub stage_kind: Option<String>,
    pub rows: usize,
    schema: SchemaRef,
}

impl TableFile {
    /// The stage that wrote it, or its file stem when its metadata does not say.
    pub fn stage_name(&self) -> String {
        self.stage.clone().unwrap_or_else(|| self.stem.clone())
    }

    /// Whether the file has exactly the columns of `schema` (the table kind, whatever its name).
    pub fn is(&self, schema: &SchemaRef) -> bool {
        self.schema.fields().len() == schema.fields().len()
            && self
                .schema
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
    }

    /// Reads the named columns (all rows, of every partition).
    pub fn read(&self, columns: &[&str]) -> Result<Columns, ReportError> {
        let mut all = self.read_file(&self.path, columns)?;
        for path in &self.partitions {
            let more = self.read_file(path, columns)?;
            all.rows += more.rows;
            for (name, values) in more.values {
                all.values.entry(name).or_default().extend(values);
            }
        }
        Ok(all)
    }

    fn read_file(&self, path: &Path, columns: &[&str]) -> Result<Columns, ReportError> {
        let error = |message: String| ReportError::Table {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|e| error(e.to_string()))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(e.to_string()))?;
        let mut indices = Vec::new();
        for name in columns {
            let index = self
                .schema
                .index_of(name)
                .map_err(|_| error(format!("no column `{name}`")))?;
            indices.push(index);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| error(e.to_string()))?;
        let batches = reader
            .collect::<Result<Vec<RecordBatch>, _>>()
            .map_err(|e| error(e.to_string()))?;
        let mut values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for batch in &batches {
            for name in columns {
                let column = batch
                    .column_by_name(name)
                    .ok_or_else(|| error(format!("no column `{name}`")))?;
                let target = values.entry((*name).to_string()).or_default();
                append(column.as_ref(), target).map_err(error)?;
            }
        }
        Ok(Columns {
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
            values,
        })
    }
}

/// A cell as the report uses it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Number(f64),
    Flag(bool),
    Texts(Vec<String>),
}

fn append(column: &dyn Array, out: &mut Vec<Value>) -> Result<(), String> {
    for row in 0..column.len() {
        out.push(if column.is_null(row) {
            Value::Null
        } else {
            match column.data_type() {
                DataType::Utf8 => Value::Text(column.as_string::<i32>().value(row).to_string()),
                DataType::Float64 => Value::Number(column.as_primitive::<Float64Type>().value(row)),
                DataType::Int64 => {
                    Value::Number(column.as_primitive::<Int64Type>().value(row) as f64)
                }
                DataType::Int32 => {
                    Value::Number(f64::from(column.as_primitive::<Int32Type>().value(row)))
                }
                DataType::Int8 => {
                    Value::Number(f64::from(column.as_primitive::<Int8Type>().value(row)))
                }
                DataType::Boolean => Value::Flag(column.as_boolean().value(row)),
                DataType::List(_) => {
                    let items = column.as_list::<i32>().value(row);
                    let texts = items
                        .as_string_opt::<i32>()
                        .ok_or("a list column of other than text")?;
                    Value::Texts(texts.iter().map(|t| t.unwrap_or("").to_string()).collect())
                }
                other => return Err(format!("a column of type {other} the report does not read")),
            }
        });
    }
    Ok(())
}

/// Columns read from one table, by name.
#[derive(Debug, Default)]
pub struct Columns {
    pub rows: usize,
    values: BTreeMap<String, Vec<Value>>,
}

impl Columns {
    fn column(&self, name: &str) -> &[Value] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn text(&self, name: &str, row: usize) -> Option<&str> {
        match self.column(name).get(row) {
            Some(Value::Text(text)) => Some(text),
            _ => None,
        }
    }

    /// The distinct texts of a column, in the order they first appear.
    pub fn distinct_texts(&self, name: &str) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        (0..self.rows)
            .filter_map(|r| self.text(name, r))
            .filter(|t| seen.insert(*t))
            .collect()
    }

    pub fn number(&self, name: &str, row: usize) -> Option<f64> {
        match self.column(name).get(row) {
            Some(Value::Number(x)) => Some(*x),
            _ => None,
        }
    }

    pub fn texts(&self, name: &str, row: usize) -> Option<&[String]> {
        match self.column(name).get(row) {
            Some(Value::Texts(texts)) => Some(texts),
            _ => None,
        }
    }

    pub fn flag(&self, name: &str, row: usize) -> Option<bool> {
        match self.column(name).get(row) {
            Some(Value::Flag(x)) => Some(*x),
            _ => None,
        }
    }
}

/// The partitions of a table a sharded run wrote into folder `dir`, in shard order.
fn partitions(dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let index = name.to_str()?.strip_prefix("shard=")?.parse().ok()?;
            let part = entry.path().join("part-0.parquet");
            part.is_file().then_some((index, part))
        })
        .collect();
    parts.sort();
    parts.into_iter().map(|(_, path)| path).collect()
}

/// Every Parquet file directly in `dir`, and every table partitioned by shard in a folder of
/// `dir` (when no file of that name is there too), by name, with its metadata and schema.
pub fn list(dir: &Path) -> Result<Vec<TableFile>, ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReportError::Folder {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| ReportError::Folder {
                path: dir.to_path_buf(),
                source: e,
            })?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let (stem, path, partitions) = match name.strip_suffix(".parquet") {
            Some(stem) => (stem.to_string(), path.clone(), Vec::new()),
            None if path.is_dir() && !dir.join(format!("{name}.parquet")).exists() => {
                let mut parts = partitions(&path).into_iter();
                match parts.next() {
                    Some(first) => (name.to_string(), first, parts.collect()),
                    None => continue,
                }
            }
            None => continue,
        };
        let error = |message: String| ReportError::Table {
            path: path.clone(),
            message,
        };
        let file = File::open(&path).map_err(|e| error(e.to_string()))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(e.to_string()))?;
        let metadata = builder.metadata().file_metadata();
        let key = |wanted: &str| {
            metadata.key_value_metadata().and_then(|kv| {
                kv.iter()
                    .find(|k| k.key == wanted)
                    .and_then(|k| k.value.clone())
            })
        };
        let mut rows = usize::try_from(metadata.num_rows()).unwrap_or(0);
        for part in &partitions {
            let file = File::open(part).map_err(|e| error(e.to_string()))?;
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(e.to_string()))?;
            rows += usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
        }
        files.push(TableFile {
            stage: key("stage"),
            stage_kind: key("stage_kind"),
            rows,
            schema: builder.schema().clone(),
            path: path.clone(),
            partitions,
            stem,
        });
    }
    files.sort_by(|a, b| a.stem.cmp(&b.stem));
    Ok(files)
}
