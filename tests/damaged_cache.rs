//! A cached model or a stored stage whose files changed after they were written (one byte
//! flipped, a file cut short) is detected by its SHA-256 on the next run, and computed again
//! instead of used: training is deterministic, so the model trained anew is byte for byte the one
//! that was damaged, and the recomputed table has the undamaged run's rows.

mod common;

use std::path::{Path, PathBuf};

use common::{cd_pipeline, read_parquet, shared_dir};

fn write_pipeline(dir: &Path) -> PathBuf {
    let yaml = format!(
        r#"name: damaged
data_dir: {data}
output_dir: out
model_cache: cache
inputs:
  sst_dev: {{format: sst_trees, path: sst/dev.txt, split: dev}}
stages:
  - name: lstm
    kind: train_lstm
    train: sst_dev
    dev: sst_dev
    glove: glove/glove.6B.50d.sst_yelp.txt.gz
    hidden: 8
    epochs: 1
    batch_size: 50
    seed: 3
    eval_every: 100
  - name: scores
    kind: score
    input: sst_dev
    model: lstm
    spans: unigrams
"#,
        data = shared_dir().join("data").display()
    );
    let path = dir.join("damaged.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn run(pipeline: &Path, output: &Path) -> String {
    let output = cd_pipeline(&[
        "run",
        pipeline.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{log}");
    log
}

fn only_entry(folder: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_cached_models_and_stored_stages_are_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = write_pipeline(dir.path());
    let out = dir.path().join("out");
    let log = run(&pipeline, &out);
    assert!(log.contains("stage lstm (train_lstm) ran"), "{log}");
    let cached = only_entry(&dir.path().join("cache"), "lstm-");
    let weights = cached.join("model.safetensors");
    let trained = std::fs::read(&weights).unwrap();
    let (scores, _) = read_parquet(&out.join("scores.parquet"));
    let size = std::fs::metadata(out.join("scores.parquet")).unwrap().len() as usize;

    // A new output folder reuses the intact cache.
    let log = run(&pipeline, &dir.path().join("out2"));
    assert!(log.contains("stage lstm: reusing the model in"), "{log}");

    // One byte of a weight flipped: the file still loads, but is not the model trained.
    flip_byte(&weights, trained.len() - 5);
    let log = run(&pipeline, &dir.path().join("out3"));
    assert!(
        log.contains("stage lstm: not reusing the cached model (")
            && log.contains("model.safetensors changed since it was trained (SHA-256 ")
            && log.contains("training it again"),
        "{log}"
    );
    assert!(
        std::fs::read(&weights).unwrap() == trained,
        "retrained weights differ"
    );

    // A vocabulary cut short likewise.
    let vocab = cached.join("vocab.json");
    let text = std::fs::read(&vocab).unwrap();
    std::fs::write(&vocab, &text[..text.len() / 2]).unwrap();
    let log = run(&pipeline, &dir.path().join("out4"));
    assert!(
        log.contains("vocab.json changed since it was trained"),
        "{log}"
    );
    assert!(
        std::fs::read(&vocab).unwrap() == text,
        "rebuilt vocabulary differs"
    );

    // A stored stage's table changed in place (here through its published hard link): the
    // rerun computes the stage again and publishes the undamaged table.
    let table = out.join("scores.parquet");
    flip_byte(&table, size / 2);
    let log = run(&pipeline, &out);
    assert!(
        log.contains("stage scores: cannot reuse ")
            && log.contains("scores.parquet changed since it was computed (SHA-256 ")
            && log.contains("stage scores (score) ran"),
        "{log}"
    );
    // The rows, not the bytes: the file's metadata has the run's start time.
    assert!(
        read_parquet(&table).0 == scores,
        "the recomputed rows differ"
    );

    // The cached weights damaged again, rerun into the same folder: the training stage's stored
    // results point at them, so it is not reused either, and the model is trained again.
    flip_byte(&weights, trained.len() - 5);
    let log = run(&pipeline, &out);
    assert!(
        log.contains("stage lstm: cannot reuse its model in the model cache is missing or damaged")
            && log.contains("stage lstm: not reusing the cached model (")
            && log.contains("stage lstm (train_lstm) ran"),
        "{log}"
    );
    assert!(
        std::fs::read(&weights).unwrap() == trained,
        "retrained weights differ"
    );
}
