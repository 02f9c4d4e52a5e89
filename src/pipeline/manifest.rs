//! `manifest.json`: what a run computed its tables from (tool version and commit, the pipeline
//! after `--set`, the SHA-256 of every file read, seeds, threads, shard) and what each stage did
//! (key, ran or reused, rows, wall time).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Shard;
use crate::data::InputError;

/// The manifest's file name in an output folder (a shard's is under `shards/shard=<i>/`).
pub const MANIFEST: &str = "manifest.json";

/// The commit the binary was built from (`build.rs`), or `unknown` outside a git checkout.
pub const GIT_COMMIT: &str = env!("CD_PIPELINE_GIT_COMMIT");

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub pipeline: String,
    pub description: Option<String>,
    pub pipeline_file: String,
    pub overrides: Vec<String>,
    /// The pipeline file as the run read it, after `--set` overrides.
    pub config: serde_json::Value,
    pub cd_pipeline_version: String,
    pub git_commit: String,
    /// `whole`, `prepare`, `shard` or `reduce`.
    pub mode: String,
    pub shard: Option<Shard>,
    /// For a reduce, the number of shards it read.
    pub shards: Option<usize>,
    pub threads: usize,
    /// Every `seed` option of the stages, by key (`stages.<name>.seed`).
    pub seeds: BTreeMap<String, serde_json::Value>,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub finished_at: u64,
    pub seconds: f64,
    pub files_read: Vec<FileRecord>,
    pub inputs: Vec<InputRecord>,
    pub stages: Vec<StageRecord>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileRecord {
    pub path: PathBuf,
    /// What the file is to the run (`inputs.sst_train.path`, `models.m.weights`, ...).
    pub role: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InputRecord {
    pub name: String,
    pub path: String,
    pub sentences: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub kind: String,
    /// `per_sentence` or `all_sentences`.
    pub scope: String,
    pub key: String,
    /// `ran`, `reused` (complete under its key from an earlier run), `merged` (a reduce's
    /// per-sentence stage, from every shard), `not run` (the other side of a sharded run).
    pub status: String,
    /// Rows of each table it wrote, by file name (a merged stage: of all its shards).
    pub rows: BTreeMap<String, u64>,
    pub seconds: f64,
}

/// SHA-256 of files, each read once per run.
#[derive(Debug, Default)]
pub struct FileHashes {
    hashes: HashMap<PathBuf, String>,
    /// In the order first hashed.
    pub records: Vec<FileRecord>,
}

impl FileHashes {
    /// The file's SHA-256 (hex), recorded under `role` the first time.
    pub fn hash(&mut self, path: &Path, role: &str) -> Result<String, InputError> {
        if let Some(hash) = self.hashes.get(path) {
            return Ok(hash.clone());
        }
        let (hash, bytes) = sha256_file(path).map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.hashes.insert(path.to_path_buf(), hash.clone());
        self.records.push(FileRecord {
            path: path.to_path_buf(),
            role: role.to_string(),
            bytes,
            sha256: hash.clone(),
        });
        Ok(hash)
    }
}

/// A file's SHA-256 (hex) and size, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((hex(&hasher.finalize()), bytes))
}

/// Lower-case hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) of text.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// `2026-12-03 14:05:09 UTC` from seconds since the Unix epoch.
pub fn utc(seconds: u64) -> String {
    // Days to civil date: Howard Hinnant's algorithm.
    let days = (seconds / 86_400) as i64;
    let secs = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl Manifest {
    /// The manifest as text for `cd-pipeline manifest`.
    pub fn describe(&self) -> String {
        let mut text = format!("pipeline {} ({})\n", self.pipeline, self.pipeline_file);
        if let Some(description) = &self.description {
            text += &format!("  {description}\n");
        }
        text += &format!(
            "cd-pipeline {} (commit {})\n",
            self.cd_pipeline_version, self.git_commit
        );
        let mode = match (&self.shard, self.shards) {
            (Some(shard), _) => format!("shard {shard}"),
            (None, Some(n)) => format!("reduce of {n} shards"),
            _ => self.mode.clone(),
        };
        text += &format!(
            "run: {mode}, {} threads, {} to {} ({:.1} s)\n",
            self.threads,
            utc(self.started_at),
            utc(self.finished_at),
            self.seconds
        );
        for assignment in &self.overrides {
            text += &format!("  --set {assignment}\n");
        }
        for (key, seed) in &self.seeds {
            text += &format!("  {key} = {seed}\n");
        }
        text += "files read:\n";
        for file in &self.files_read {
            text += &format!(
                "  {}  {} ({}, {} bytes)\n",
                file.sha256,
                file.path.display(),
                file.role,
                file.bytes
            );
        }
        text += "inputs:\n";
        for input in &self.inputs {
            text += &format!(
                "  {}: {} sentences ({})\n",
                input.name, input.sentences, input.path
            );
        }
        text += "stages:\n";
        for stage in &self.stages {
            let took = if stage.status == "not run" {
                String::new()
            } else {
                format!(" in {:.2} s", stage.seconds)
            };
            text += &format!(
                "  {} ({}, {}): {}{took}, key {}\n",
                stage.name,
                stage.kind,
                stage.scope.replace('_', " "),
                stage.status,
                &stage.key[..stage.key.len().min(16)]
            );
            for (file, rows) in &stage.rows {
                text += &format!("    {file}: {rows} rows\n");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_310_309), "2026-12-03 15:05:09 UTC");
    }

    #[test]
    fn sha256_of_the_empty_text_is_the_standard_one() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
