//! Output files that appear whole or not at all, and together: each is written under a temporary
//! name beside its destination, and a run's files are renamed into place as one unit once all of
//! them are complete.

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

/// `<destination>.<tag>-<pid>`: a name beside the destination, on the same file system, that no
/// other process uses.
fn beside(destination: &Path, tag: &str) -> PathBuf {
    let mut name = destination.as_os_str().to_owned();
    name.push(format!(".{tag}-{}", std::process::id()));
    PathBuf::from(name)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the folder a destination goes in, when it has one.
fn create_folder(destination: &Path) -> Result<(), OutputError> {
    match destination.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|source| OutputError::Folder {
            path: parent.to_path_buf(),
            file: destination.to_path_buf(),
            source,
        }),
        None => Ok(()),
    }
}

/// Checks that each destination can be written: its folder exists or can be created, a file can
/// be created in it, and the destination itself is not a folder. Run before any work, so that an
/// output that cannot be written fails at once, naming the destination.
pub fn check_writable(destinations: &[PathBuf]) -> Result<(), OutputError> {
    for destination in destinations {
        create_folder(destination)?;
        check_not_folder(destination)?;
        let probe = beside(destination, "tmp");
        File::create(&probe).map_err(io_error(destination))?;
        // The probe is empty and ours; failing to remove it is reported like any write failure.
        std::fs::remove_file(&probe).map_err(io_error(destination))?;
        tracing::debug!("{} can be written", destination.display());
    }
    Ok(())
}

fn check_not_folder(destination: &Path) -> Result<(), OutputError> {
    if destination.is_dir() {
        return Err(OutputError::Io {
            path: destination.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a folder, not a file",
            ),
        });
    }
    Ok(())
}

/// Streams record batches into a temporary file beside the destination; [`finish`](Self::finish)
/// completes it as a [`PendingFile`]. Dropped unfinished (an error, a panic), it removes the
/// temporary file.
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
        create_folder(destination)?;
        let temporary = beside(destination, "tmp");
        let file = File::create(&temporary).map_err(io_error(destination))?;
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
                    path: destination.to_path_buf(),
                    source,
                })
            }
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        self.writer
            .as_mut()
            .expect("writer is present until finished")
            .write(batch)
            .map_err(|source| OutputError::Parquet {
                path: self.destination.clone(),
                source,
            })
    }

    /// Adds a key-value pair to the file's metadata, for what is known only once every row is
    /// written.
    pub fn add_metadata(&mut self, key: &str, value: String) {
        self.writer
            .as_mut()
            .expect("writer is present until finished")
            .append_key_value_metadata(KeyValue::new(key.to_string(), value));
    }

    /// Finishes the file and renames it into place.
    pub fn commit(self) -> Result<(), OutputError> {
        publish_all(vec![self.finish()?]).map(|_| ())
    }

    /// Finishes the file and flushes it to disk under its temporary name, to be published with
    /// the others of its run by [`publish_all`].
    pub fn finish(mut self) -> Result<PendingFile, OutputError> {
        let writer = self
            .writer
            .take()
            .expect("writer is present until finished");
        let pending = PendingFile {
            destination: std::mem::take(&mut self.destination),
            temporary: std::mem::take(&mut self.temporary),
        };
        let file = writer.into_inner().map_err(|source| OutputError::Parquet {
            path: pending.destination.clone(),
            source,
        })?;
        file.sync_all().map_err(io_error(&pending.destination))?;
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

/// A complete file under its temporary name; dropped unpublished, it is removed.
#[derive(Debug)]
pub struct PendingFile {
    destination: PathBuf,
    temporary: PathBuf,
}

impl PendingFile {
    /// Writes `bytes` under a temporary name beside `destination`, flushed to disk.
    pub fn write(destination: &Path, bytes: &[u8]) -> Result<Self, OutputError> {
        use std::io::Write;
        create_folder(destination)?;
        let pending = Self {
            destination: destination.to_path_buf(),
            temporary: beside(destination, "tmp"),
        };
        let mut file = File::create(&pending.temporary).map_err(io_error(destination))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_error(destination))?;
        Ok(pending)
    }

    /// A complete file to be published at `destination`: a temporary hard link beside `source`
    /// (no copy, no extra space, and nothing half-made beside the destination), or a copy where
    /// hard links cannot be made. `source` must be on the destination's file system.
    pub fn link(source: &Path, destination: &Path) -> Result<Self, OutputError> {
        create_folder(destination)?;
        let pending = Self {
            destination: destination.to_path_buf(),
            temporary: beside(source, "publish"),
        };
        if std::fs::hard_link(source, &pending.temporary).is_err() {
            std::fs::copy(source, &pending.temporary)
                .and_then(|_| File::open(&pending.temporary)?.sync_all())
                .map_err(io_error(destination))?;
        }
        Ok(pending)
    }

    pub fn destination(&self) -> &Path {
        &self.destination
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.temporary.as_os_str().is_empty() {
            // Best effort, as for an unfinished writer.
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Publishes complete files as one unit and returns their destinations. Every destination is
/// checked first; then each file is renamed into place, the previous file of that name kept
/// aside until all are in. If a rename fails, the files already published are taken back and the
/// previous ones restored, so the destinations hold either all new files or all old ones; every
/// temporary file is removed on every path.
pub fn publish_all(files: Vec<PendingFile>) -> Result<Vec<PathBuf>, OutputError> {
    publish_all_with(files, &|from, to| std::fs::rename(from, to))
}

/// [`publish_all`] with the rename given, so that tests can make one fail.
fn publish_all_with(
    mut files: Vec<PendingFile>,
    rename: &dyn Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<Vec<PathBuf>, OutputError> {
    for file in &files {
        check_not_folder(&file.destination)?;
    }
    // (destination, where its previous file was put aside) of each file renamed into place.
    let mut published: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut failure = None;
    for file in &files {
        let destination = &file.destination;
        let previous = beside(destination, "previous");
        let set_aside = match destination.symlink_metadata() {
            Ok(_) => match rename(destination, &previous) {
                Ok(()) => Some(previous),
                Err(source) => {
                    failure = Some((destination.clone(), source));
                    break;
                }
            },
            Err(_) => None,
        };
        match rename(&file.temporary, destination) {
            Ok(()) => published.push((destination.clone(), set_aside)),
            Err(source) => {
                if let Some(previous) = set_aside {
                    restore(&previous, destination, rename);
                }
                failure = Some((destination.clone(), source));
                break;
            }
        }
    }
    if let Some((path, source)) = failure {
        for (destination, set_aside) in published.iter().rev() {
            // Best effort, reported: the run fails either way.
            if let Err(e) = std::fs::remove_file(destination) {
                tracing::error!("cannot take back {}: {e}", destination.display());
            }
            if let Some(previous) = set_aside {
                restore(previous, destination, rename);
            }
        }
        // The temporaries not renamed are removed when `files` is dropped.
        return Err(OutputError::Io { path, source });
    }
    for (_, set_aside) in &published {
        if let Some(previous) = set_aside {
            // Best effort: a leftover `.previous-<pid>` file is harmless and named in the log.
            if let Err(e) = std::fs::remove_file(previous) {
                tracing::warn!("cannot remove {}: {e}", previous.display());
            }
        }
    }
    for file in &mut files {
        tracing::debug!("published {}", file.destination.display());
        file.temporary = PathBuf::new();
    }
    Ok(files.iter().map(|f| f.destination.clone()).collect())
}

/// Puts a previous file back in place after a failed publication.
fn restore(
    previous: &Path,
    destination: &Path,
    rename: &dyn Fn(&Path, &Path) -> std::io::Result<()>,
) {
    if let Err(e) = rename(previous, destination) {
        tracing::error!(
            "cannot restore {} from {}: {e}",
            destination.display(),
            previous.display()
        );
    }
}

/// Writes whole record batches as one table, left pending until published.
pub fn write_table(
    destination: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
    metadata: &[(&str, String)],
) -> Result<PendingFile, OutputError> {
    let mut writer = ParquetTableWriter::create(destination, schema, metadata)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let contents = std::fs::read(e.path()).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), contents)
            })
            .collect();
        files.sort();
        files
    }

    /// Three new files over two previous ones (and one new name).
    fn pending(dir: &Path) -> Vec<PendingFile> {
        std::fs::write(dir.join("a.parquet"), "old a").unwrap();
        std::fs::write(dir.join("b.parquet"), "old b").unwrap();
        ["a", "b", "c"]
            .iter()
            .map(|name| {
                PendingFile::write(&dir.join(format!("{name}.parquet")), name.as_bytes()).unwrap()
            })
            .collect()
    }

    #[test]
    fn files_are_published_together() {
        let dir = tempfile::tempdir().unwrap();
        let published = publish_all(pending(dir.path())).unwrap();
        assert_eq!(published.len(), 3);
        let expected: Vec<(String, Vec<u8>)> = ["a", "b", "c"]
            .iter()
            .map(|n| (format!("{n}.parquet"), n.as_bytes().to_vec()))
            .collect();
        assert_eq!(files_in(dir.path()), expected);
    }

    /// A rename that fails half-way (here the second file's) leaves the previous files in place,
    /// the new name unused, and no temporary or set-aside file behind.
    #[test]
    fn a_failed_rename_restores_the_previous_files() {
        for failing_call in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let files = pending(dir.path());
            assert_eq!(
                files_in(dir.path()).len(),
                5,
                "two previous files, three temporaries"
            );
            let calls = std::cell::Cell::new(0);
            let rename = |from: &Path, to: &Path| {
                calls.set(calls.get() + 1);
                if calls.get() == failing_call + 1 {
                    Err(std::io::Error::other("injected failure"))
                } else {
                    std::fs::rename(from, to)
                }
            };
            let error = publish_all_with(files, &rename).unwrap_err();
            assert!(error.to_string().contains("injected failure"), "{error}");
            assert_eq!(
                files_in(dir.path()),
                vec![
                    ("a.parquet".to_string(), b"old a".to_vec()),
                    ("b.parquet".to_string(), b"old b".to_vec()),
                ],
                "failure at rename {failing_call}"
            );
        }
    }

    #[test]
    fn a_folder_in_the_way_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let files = pending(dir.path());
        std::fs::create_dir(dir.path().join("c.parquet")).unwrap();
        let error = publish_all(files).unwrap_err().to_string();
        assert!(
            error.contains("c.parquet: cannot write: is a folder"),
            "{error}"
        );
        let names: Vec<String> = files_in(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a.parquet", "b.parquet", "c.parquet"]);
        assert_eq!(
            std::fs::read(dir.path().join("a.parquet")).unwrap(),
            b"old a"
        );
        assert!(check_writable(&[dir.path().join("c.parquet")]).is_err());
        assert!(check_writable(&[dir.path().join("new/d.parquet")]).is_ok());
        assert!(dir.path().join("new").is_dir());
        assert_eq!(files_in(&dir.path().join("new")), Vec::new());
    }
}
