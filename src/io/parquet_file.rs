//! Parquet files that appear whole or not at all.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{OutputError, SCHEMA_VERSION};

/// DuckDB's own row-group size: it reads row groups in parallel and prunes them by statistics.
const ROW_GROUP_ROWS: usize = 122_880;

/// Streams record batches into `<name>.tmp-<pid>` beside the destination and renames it into
/// place on [`commit`](Self::commit); dropped without commit (an error, a panic), it removes the
/// temporary file, so a failed run never leaves a partial table.
pub struct ParquetTableWriter {
    destination: PathBuf,
    temporary: PathBuf,
    writer: Option<ArrowWriter<File>>,
}

impl ParquetTableWriter {
    /// Starts a zstd-compressed table; `metadata` is added to the file's key-value metadata next
    /// to `schema_version` and the tool version.
    pub fn create(
        destination: &Path,
        schema: SchemaRef,
        metadata: &[(&str, String)],
    ) -> Result<Self, OutputError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OutputError::Io { path, source }
        };
        if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let mut temporary = destination.as_os_str().to_owned();
        temporary.push(format!(".tmp-{}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let file = File::create(&temporary).map_err(io_error(&temporary))?;
        let mut key_values = vec![
            KeyValue::new("schema_version".to_string(), SCHEMA_VERSION.to_string()),
            KeyValue::new(
                "cd_pipeline_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ];
        key_values.extend(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.clone())),
        );
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid zstd level"),
            ))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("cd-pipeline {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(key_values))
            .build();
        match ArrowWriter::try_new(file, schema, Some(properties)) {
            Ok(writer) => Ok(Self {
                destination: destination.to_path_buf(),
                temporary,
                writer: Some(writer),
            }),
            Err(source) => {
                // Best effort: the error about the writer is the one worth reporting.
                let _ = std::fs::remove_file(&temporary);
                Err(OutputError::Parquet {
                    path: temporary,
                    source,
                })
            }
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        self.writer
            .as_mut()
            .expect("writer is present until commit")
            .write(batch)
            .map_err(|source| OutputError::Parquet {
                path: self.temporary.clone(),
                source,
            })
    }

    /// Finishes the file, flushes it to disk and renames it to its destination.
    pub fn commit(self) -> Result<(), OutputError> {
        self.finish()?.publish()
    }

    /// Finishes the file and flushes it to disk under its temporary name, so that several tables
    /// can be published together once all of them are complete.
    pub fn finish(mut self) -> Result<PendingTable, OutputError> {
        let writer = self
            .writer
            .take()
            .expect("writer is present until finished");
        let file = writer.into_inner().map_err(|source| OutputError::Parquet {
            path: self.temporary.clone(),
            source,
        })?;
        let pending = PendingTable {
            destination: std::mem::take(&mut self.destination),
            temporary: std::mem::take(&mut self.temporary),
        };
        file.sync_all().map_err(|source| OutputError::Io {
            path: pending.temporary.clone(),
            source,
        })?;
        Ok(pending)
    }
}

impl Drop for ParquetTableWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            drop(self.writer.take());
            // Best effort: the file may already be gone; nothing else can be done while dropping.
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// A complete table under its temporary name; dropped without [`publish`](Self::publish), it is
/// removed.
#[derive(Debug)]
pub struct PendingTable {
    destination: PathBuf,
    temporary: PathBuf,
}

impl PendingTable {
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Renames the table into place.
    pub fn publish(mut self) -> Result<(), OutputError> {
        let temporary = std::mem::take(&mut self.temporary);
        std::fs::rename(&temporary, &self.destination).map_err(|source| OutputError::Io {
            path: self.destination.clone(),
            source,
        })
    }
}

impl Drop for PendingTable {
    fn drop(&mut self) {
        if !self.temporary.as_os_str().is_empty() {
            // Best effort, as for an unfinished writer.
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Writes whole record batches as one table, left pending until published.
pub fn write_table(
    destination: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
    metadata: &[(&str, String)],
) -> Result<PendingTable, OutputError> {
    let mut writer = ParquetTableWriter::create(destination, schema, metadata)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()
}
