//! Streamed inputs: a pipeline whose scores no later stage reads scores its input in bounded
//! batches, and writes exactly the tables of the same stage over the input read whole (the run
//! reads it whole when a later stage reads the scores); sharded and resumed streamed runs too.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use std::collections::HashSet;

use cd_pipeline::data::read_sst_trees;
use common::{cd_pipeline, duckdb, shared_dir, sst_random_model};

/// SST train (8,544 trees) less the dev sentences, every other one (two batches), every constituent
/// by CD and leave-one-out; Yelp reviews' unigrams by CD. With `read_back`, an `aggregate` stage
/// reads each scores table, so that both inputs are read whole.
fn write_pipeline(dir: &Path, name: &str, read_back: bool) -> PathBuf {
    let (weights, vocab) = sst_random_model(dir);
    let mut yaml = format!(
        r#"name: {name}
data_dir: {data}
output_dir: out
inputs:
  sst_train:
    format: sst_trees
    path: sst/train.txt
    split: train
    exclude_in: sst/dev.txt
    sample: {{every: 2, offset: 1}}
  reviews: {{format: yelp_polarity, path: yelp/shen2017_yelp_sentences_dev.csv, split: dev}}
models:
  random: {{weights: {weights}, vocab: {vocab}}}
stages:
  - name: sst_scores
    kind: score
    input: sst_train
    model: random
    spans: constituents
    methods: [cd, leave_one_out]
  - name: review_scores
    kind: score
    input: reviews
    model: random
    spans: unigrams
    methods: [cd]
"#,
        data = shared_dir().join("data").display(),
        weights = weights.display(),
        vocab = vocab.display(),
    );
    if read_back {
        for table in ["sst_scores", "review_scores"] {
            yaml += &format!(
                "  - {{name: {table}_stats, kind: aggregate, input: {table}, value: score, group_by: method}}\n"
            );
        }
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn run(args: &[&str]) -> String {
    let output = cd_pipeline(args);
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?} failed:\n{log}");
    log
}

/// Rows of `a` not in `b` and of `b` not in `a` (with multiplicity), both zero when equal.
fn differences(cwd: &Path, a: &str, b: &str) -> (i64, i64) {
    let count = |x: &str, y: &str| {
        duckdb(
            cwd,
            &format!(
                "SELECT count(*) AS n FROM (SELECT * FROM read_parquet('{x}', hive_partitioning = false) EXCEPT ALL SELECT * FROM read_parquet('{y}', hive_partitioning = false))"
            ),
        )[0]["n"]
            .as_i64()
            .unwrap()
    };
    (count(a, b), count(b, a))
}

fn rows(cwd: &Path, table: &str) -> i64 {
    duckdb(
        cwd,
        &format!("SELECT count(*) AS n FROM read_parquet('{table}')"),
    )[0]["n"]
        .as_i64()
        .unwrap()
}

#[test]
fn streamed_runs_write_the_tables_of_whole_reads() {
    let dir = tempfile::tempdir().unwrap();
    let streamed = write_pipeline(dir.path(), "streamed", false);
    let whole = write_pipeline(dir.path(), "whole", true);
    let out = |name: &str| dir.path().join(name).display().to_string();

    let log = run(&[
        "run",
        streamed.to_str().unwrap(),
        "--output",
        &out("streamed"),
    ]);
    for input in ["sst_train", "reviews"] {
        assert!(
            log.contains(&format!("input {input} (")) && log.contains("streamed in batches"),
            "{input} was not streamed:\n{log}"
        );
    }
    assert!(
        log.contains("stage sst_scores: part 2 (sentences 4097-")
            && log.contains("stage review_scores: part 3 (sentences 8193-"),
        "{log}"
    );
    let log = run(&["run", whole.to_str().unwrap(), "--output", &out("whole")]);
    assert!(!log.contains("streamed in batches"), "{log}");

    for table in [
        "sst_scores",
        "review_scores",
        "sst_train_sentences",
        "sst_train_constituents",
        "reviews_sentences",
        "vocabulary_coverage",
    ] {
        let (a, b) = (
            format!("streamed/{table}.parquet"),
            format!("whole/{table}.parquet"),
        );
        assert!(rows(dir.path(), &a) > 0, "{table} is empty");
        assert_eq!(differences(dir.path(), &a, &b), (0, 0), "{table} differs");
    }
    // exclude_in then sample, as the whole read: a third of train less its dev sentences.
    let manifest = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.path().join(name).join("manifest.json")).unwrap())
            .unwrap()
    };
    assert_eq!(manifest("streamed")["inputs"], manifest("whole")["inputs"]);
    let read =
        |split: &str| read_sst_trees(&shared_dir().join(format!("data/sst/{split}.txt"))).unwrap();
    let dev: HashSet<Vec<String>> = read("dev").into_iter().map(|t| t.tokens).collect();
    let kept = read("train")
        .into_iter()
        .filter(|t| !dev.contains(&t.tokens))
        .skip(1)
        .step_by(2)
        .count();
    assert_eq!(
        rows(dir.path(), "streamed/sst_train_sentences.parquet"),
        kept as i64
    );

    // Two shards and their reduce give the same rows; so does a rerun that restores the
    // checkpointed parts of a stage whose completion record is gone.
    let sharded = out("sharded");
    let path = streamed.to_str().unwrap();
    run(&["run", path, "--output", &sharded, "--prepare"]);
    for shard in ["0/2", "1/2"] {
        run(&["run", path, "--output", &sharded, "--shard", shard]);
    }
    run(&["run", path, "--output", &sharded, "--reduce"]);
    for table in ["sst_scores", "review_scores"] {
        let (a, b) = (
            format!("sharded/{table}/*/*.parquet"),
            format!("streamed/{table}.parquet"),
        );
        assert_eq!(differences(dir.path(), &a, &b), (0, 0), "{table} differs");
    }
    let killed = out("killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cd-pipeline"))
        .args(["run", path, "--output", &killed])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line
            .unwrap()
            .contains("stage review_scores: part 1 (sentences 1-4096) checkpointed")
        {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = run(&["run", path, "--output", &killed]);
    assert!(
        log.contains("stage review_scores: part 1 (sentences 1-4096) restored"),
        "{log}"
    );
    assert_eq!(
        differences(
            dir.path(),
            "killed/review_scores.parquet",
            "whole/review_scores.parquet"
        ),
        (0, 0)
    );
}
