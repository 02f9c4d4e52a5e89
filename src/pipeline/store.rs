//! The stage store, `<output_dir>/.cd-pipeline/`: each stage's files and artefacts under a key that
//! hashes what it computes from, kept across runs so that a rerun skips every stage whose key is
//! complete; and the lock files that keep two runs off one output folder.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::Coverage;

/// The store's folder inside an output folder.
pub const STORE_DIR: &str = ".cd-pipeline";

/// Marks a stage folder complete; written last, renamed into place.
const COMPLETE: &str = "complete.json";

/// Where a long stage keeps its completed parts until the stage completes.
const PARTS: &str = "parts";

/// Another run holds the output folder.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is in use by another run (lock {}: {holder}); wait for it or give this run another output folder",
    output.display(),
    lock.display()
)]
pub struct LockError {
    pub output: PathBuf,
    pub lock: PathBuf,
    /// What the lock file says of the run holding it.
    pub holder: String,
}

/// A completed stage, as its folder's `complete.json` records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageOutcome {
    pub name: String,
    pub kind: String,
    pub key: String,
    pub seconds: f64,
    /// The files it wrote (names inside its folder) with their rows, for tables.
    pub files: Vec<StoredFile>,
    /// What each model's vocabulary made of each input the stage encoded.
    pub coverage: Vec<CoverageEntry>,
    /// SHA-256 of every file in its folder, checked before it is reused: a file changed or cut
    /// since (a disk error, an edit of a published hard link) makes the stage run again.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredFile {
    pub name: String,
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CoverageEntry {
    pub input: String,
    pub model: String,
    pub coverage: Coverage,
}

/// A held lock; released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// The store of one output folder.
#[derive(Debug, Clone)]
pub struct Store {
    output: PathBuf,
    root: PathBuf,
}

impl Store {
    pub fn new(output_dir: &Path) -> Self {
        Self {
            output: output_dir.to_path_buf(),
            root: output_dir.join(STORE_DIR),
        }
    }

    /// `<store>/stages/<name>-<first 16 hex digits of key>`.
    pub fn stage_folder(&self, name: &str, key: &str) -> PathBuf {
        self.root
            .join("stages")
            .join(format!("{name}-{}", &key[..16]))
    }

    /// Where a run holding lock `lock` makes its own files (manifest, input tables) before
    /// publishing them.
    pub fn run_files(&self, lock: &str) -> PathBuf {
        self.root.join(format!("{lock}.files"))
    }

    /// The record of a stage folder that is complete for `key`.
    pub fn completed(folder: &Path, key: &str) -> Option<StageOutcome> {
        let text = std::fs::read_to_string(folder.join(COMPLETE)).ok()?;
        let outcome: StageOutcome = serde_json::from_str(&text).ok()?;
        let files_present = outcome.files.iter().all(|f| folder.join(&f.name).is_file());
        (outcome.key == key && files_present).then_some(outcome)
    }

    /// SHA-256 of every file under a stage folder but its completion record and parts, by path
    /// inside it.
    pub fn checksums(folder: &Path) -> std::io::Result<BTreeMap<String, String>> {
        let mut checksums = BTreeMap::new();
        let mut pending = vec![folder.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let name = path.strip_prefix(folder).expect("inside the folder");
                if name == Path::new(COMPLETE) || name == Path::new(PARTS) {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let (hash, _) = super::manifest::sha256_file(&path)?;
                    checksums.insert(name.display().to_string(), hash);
                }
            }
        }
        Ok(checksums)
    }

    /// Checks a complete folder's files against the checksums its record holds; the error names
    /// the first that differs.
    pub fn verify(folder: &Path, outcome: &StageOutcome) -> Result<(), String> {
        if outcome.checksums.is_empty() {
            return Err(format!("{}: no checksums recorded", folder.display()));
        }
        let found = Self::checksums(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        for (name, recorded) in &outcome.checksums {
            match found.get(name) {
                Some(hash) if hash == recorded => {}
                Some(hash) => {
                    return Err(format!(
                        "{} changed since it was computed (SHA-256 {} recorded, {} found)",
                        folder.join(name).display(),
                        short(recorded),
                        short(hash)
                    ));
                }
                None => return Err(format!("{} is missing", folder.join(name).display())),
            }
        }
        Ok(())
    }

    /// Empties a stage folder for a new computation, keeping the parts a killed run completed.
    pub fn prepare(folder: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(folder)?;
        for entry in std::fs::read_dir(folder)? {
            let entry = entry?;
            if entry.file_name() == PARTS {
                continue;
            }
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Marks a stage folder complete (its parts are then no longer needed).
    pub fn complete(folder: &Path, outcome: &StageOutcome) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(outcome).expect("a stage outcome serialises");
        let temporary = folder.join(format!("{COMPLETE}.tmp-{}", std::process::id()));
        let mut file = File::create(&temporary)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&temporary, folder.join(COMPLETE))?;
        match std::fs::remove_dir_all(folder.join(PARTS)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Where a stage computing into `folder` checkpoints its parts.
    pub fn parts(folder: &Path) -> PathBuf {
        folder.join(PARTS)
    }

    /// Takes the run lock `<store>/<name>.lock` or fails at once, naming it and its holder.
    pub fn lock_run(&self, name: &str, holder: &str) -> Result<Lock, crate::Error> {
        let path = self.root.join(format!("{name}.lock"));
        let error = |holder: String| LockError {
            output: self.output.clone(),
            lock: path.clone(),
            holder,
        };
        let cannot = |source| crate::io::OutputError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(cannot)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(error(text.trim().to_string()).into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(cannot(e).into());
            }
        }
        // Who holds it, for the message of a run refused while this one works.
        let written = file
            .set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            tracing::warn!("cannot record this run in {}: {e}", path.display());
        }
        Ok(Lock { _file: file })
    }

    /// After a failed run that holds lock `lock`: when no stage has a folder yet, removes its
    /// lock file and the store folder if nothing else (another shard's lock) is in it, so that a
    /// refused run leaves the output folder as it was.
    pub fn release_unused(&self, lock: &str) {
        let stages = self.root.join("stages");
        let entries = |folder: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(folder)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        // A stage folder holds results, complete or resumable: the store stays.
        if entries(&stages).iter().any(|p| p.is_dir()) {
            return;
        }
        // So it does while another run's lock is there: that run may be using it.
        let own = format!("{lock}.lock");
        if entries(&self.root).iter().any(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.ends_with(".lock") && n != own
            })
        }) {
            return;
        }
        // Best effort: what could be left is empty lock files, harmless. The folder itself goes
        // only while empty, so that a stage another run starts meanwhile keeps its folder.
        for lock_file in entries(&stages) {
            let _ = std::fs::remove_file(lock_file);
        }
        let _ = std::fs::remove_dir(&stages);
        let _ = std::fs::remove_file(self.root.join(own));
        self.remove_if_empty();
    }

    /// Whether a stage folder holds a part a rerun would resume from.
    pub fn holds_parts(folder: &Path) -> bool {
        std::fs::read_dir(Self::parts(folder)).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
        })
    }

    /// Removes the store folder when it is empty (made only by the output check).
    pub fn remove_if_empty(&self) {
        let _ = std::fs::remove_dir(&self.root);
    }

    /// Waits for the lock of one stage folder, which runs of several shards may share (they
    /// then compute a shared stage once, the others reusing it).
    pub fn lock_stage(folder: &Path) -> std::io::Result<Lock> {
        let mut path = folder.as_os_str().to_owned();
        path.push(".lock");
        if let Some(parent) = folder.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(PathBuf::from(path))?;
        file.lock()?;
        Ok(Lock { _file: file })
    }
}

/// The first 12 digits of a hash, for messages (the whole text when a record holds less).
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let first = store.lock_run("run", "pid 1").unwrap();
        let refused = store.lock_run("run", "pid 2").unwrap_err();
        assert_eq!(refused.exit_code(), crate::EXIT_LOCKED);
        assert!(refused.to_string().contains("run.lock: pid 1"), "{refused}");
        assert!(store.lock_run("shard-0", "pid 3").is_ok());
        drop(first);
        assert!(store.lock_run("run", "pid 2").is_ok());
    }
}
