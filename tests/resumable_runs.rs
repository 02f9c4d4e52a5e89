//! Runs that survive and scale out, end to end through the binary: a run killed with SIGKILL
//! while reading, training, scoring and writing, then rerun, gives the tables of an uninterrupted
//! run (compared row for row in DuckDB), reusing what was complete; sharded runs (N = 1, 2, 3)
//! whose partitions add up to the single run's tables and whose reduce gives its statistics; a
//! second run on a busy output folder refused; the manifest's hashes against `sha256sum`; JSON
//! log lines.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{duckdb, shared_dir, sst_random_model};
use serde_json::Value;

/// SST train (every constituent, CD and leave-one-out, with a small random model: three
/// checkpointed parts) with negation interactions and their statistics; a small LSTM trained on
/// the dev trees.
fn write_pipeline(dir: &Path) -> PathBuf {
    let (weights, vocab) = sst_random_model(dir);
    let yaml = format!(
        r#"name: resumable
data_dir: {data}
output_dir: out
inputs:
  sst_train: {{format: sst_trees, path: sst/train.txt, split: train}}
  sst_dev: {{format: sst_trees, path: sst/dev.txt, split: dev}}
models:
  random: {{weights: {weights}, vocab: {vocab}}}
stages:
  - name: lstm
    kind: train_lstm
    train: sst_dev
    dev: sst_dev
    glove: glove/glove.6B.50d.sst_yelp.txt.gz
    hidden: 16
    epochs: 2
    batch_size: 50
    learning_rate: 0.001
    seed: 3
    eval_every: 50
  - name: scores
    kind: score
    input: sst_train
    model: random
    spans: constituents
    methods: [cd, leave_one_out]
  - name: negation_interactions
    kind: negation
    input: sst_train
    scores: scores
    words: [not, "n't", never, nothing, none, nobody, neither, nor, nowhere, lacks]
    max_words: 10
  - name: aggregate_stats
    kind: aggregate
    input: negation_interactions
    value: interaction
    group_by: kind
    compare: [positive, negative]
"#,
        data = shared_dir().join("data").display(),
        weights = weights.display(),
        vocab = vocab.display(),
    );
    let path = dir.join("resumable.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cd-pipeline"))
}

/// `cd-pipeline run PIPELINE --output OUT`.
fn run_command(pipeline: &Path, out: &Path) -> Command {
    let mut command = binary();
    command.args([
        "run",
        pipeline.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    command
}

/// Runs the pipeline into `out` to the end; returns its stderr.
fn run(pipeline: &Path, out: &Path, extra: &[&str]) -> String {
    let output = run_command(pipeline, out).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "run {extra:?} failed:\n{stderr}");
    stderr
}

/// Starts a run and kills it with SIGKILL once a log line contains `marker`; returns whether
/// the marker came before the run ended by itself.
fn run_and_kill(pipeline: &Path, out: &Path, marker: &str) -> bool {
    let mut child = run_command(pipeline, out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = false;
    for line in stderr.lines() {
        if line.unwrap().contains(marker) {
            seen = true;
            child.kill().unwrap(); // SIGKILL on Unix
            break;
        }
    }
    child.wait().unwrap();
    seen
}

/// Every file of the output folder outside the store, relative to it.
fn visible_files(out: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name() == ".cd-pipeline" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out, files);
            } else {
                files.push(path.strip_prefix(out).unwrap().to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(out, out, &mut files);
    files.sort();
    files
}

/// No half-written file is visible: no temporary names, and every Parquet file reads whole.
fn assert_nothing_partial(out: &Path) {
    for file in visible_files(out) {
        let name = file.to_string_lossy();
        assert!(
            !name.contains(".tmp-") && !name.contains(".publish-"),
            "{name} is visible"
        );
        if name.ends_with(".parquet") {
            let rows = duckdb(out, &format!("SELECT count(*) AS n FROM '{name}'"));
            assert_eq!(rows.len(), 1, "{name}");
        }
    }
}

fn count(cwd: &Path, sql: &str) -> u64 {
    duckdb(cwd, &format!("SELECT count(*) AS n FROM ({sql})"))[0]["n"]
        .as_u64()
        .unwrap()
}

/// The two queries hold the same rows, as multisets.
fn assert_same_rows(cwd: &Path, a: &str, b: &str, what: &str) {
    let n = count(cwd, a);
    assert_eq!(n, count(cwd, b), "{what}: row counts");
    assert_eq!(
        count(cwd, &format!("({a}) EXCEPT ALL ({b})")),
        0,
        "{what}: rows differ"
    );
    assert_eq!(
        count(cwd, &format!("({b}) EXCEPT ALL ({a})")),
        0,
        "{what}: rows differ"
    );
}

fn manifest(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn statuses(manifest: &Value) -> Vec<(String, String)> {
    manifest["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The columns of a table that two runs share: all but the training log's wall times and the
/// evaluation's `reused` (whether the model came from the model cache).
fn comparable_columns(stem: &str) -> &'static str {
    match stem {
        "lstm" => "* EXCLUDE (seconds)",
        "lstm_eval" => "* EXCLUDE (reused)",
        _ => "*",
    }
}

/// Every table of the reference run equals the other run's.
fn assert_same_tables(reference: &Path, other: &Path) {
    for file in visible_files(reference) {
        let name = file.to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".parquet") else {
            continue;
        };
        let columns = comparable_columns(stem);
        assert_same_rows(
            reference,
            &format!("SELECT {columns} FROM '{name}'"),
            &format!("SELECT {columns} FROM '{}'", other.join(&name).display()),
            &name,
        );
    }
}

#[test]
fn killed_runs_resume_and_sharded_runs_add_up_to_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = write_pipeline(dir.path());
    let reference = dir.path().join("reference");
    let log = run(&pipeline, &reference, &["--log-format", "json"]);

    // JSON logs: every line of stderr is one JSON object with a level and a message.
    for line in log.lines().filter(|l| !l.is_empty()) {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["fields"]["message"].is_string(),
            "{line}"
        );
    }
    // The manifest's hashes are sha256sum's.
    let record = manifest(&reference.join("manifest.json"));
    let files = record["files_read"].as_array().unwrap();
    let roles: Vec<&str> = files.iter().map(|f| f["role"].as_str().unwrap()).collect();
    for role in [
        "inputs.sst_train.path",
        "models.random.weights",
        "models.random.vocab",
        "stages.lstm",
    ] {
        assert!(roles.contains(&role), "{role} not in {roles:?}");
    }
    assert!(
        roles.iter().any(|r| r.contains("trained model weights")),
        "{roles:?}"
    );
    for file in files {
        let path = file["path"].as_str().unwrap();
        let sum = Command::new("sha256sum").arg(path).output().unwrap();
        let sum = String::from_utf8(sum.stdout).unwrap();
        assert_eq!(
            sum.split_whitespace().next(),
            file["sha256"].as_str(),
            "{path}"
        );
    }
    assert_eq!(record["seeds"]["stages.lstm.seed"], 3);
    assert!(statuses(&record).iter().all(|(_, s)| s == "ran"));
    let scores_table = duckdb(
        &reference,
        "SELECT value FROM parquet_kv_metadata('scores.parquet') WHERE key = 'stage_key'",
    );
    assert_eq!(
        scores_table.len(),
        1,
        "the scores table names its stage key"
    );

    // Kills while reading, training, scoring (after the first of three parts) and writing.
    let points = [
        ("reading", "read input sst_dev", "ran"),
        ("training", "dev_accuracy", "ran"),
        (
            "scoring",
            "part 1 of 3 (sentences 1-4096) checkpointed",
            "restored",
        ),
        ("writing", "stage aggregate_stats (aggregate) ran", "reused"),
    ];
    for (point, marker, expected) in points {
        let out = dir.path().join(format!("killed-{point}"));
        let killed = run_and_kill(&pipeline, &out, marker);
        assert!(killed, "{point}: the run ended before `{marker}`");
        assert_nothing_partial(&out);
        let log = run(&pipeline, &out, &[]);
        assert_nothing_partial(&out);
        assert_same_tables(&reference, &out);
        let rerun = statuses(&manifest(&out.join("manifest.json")));
        match expected {
            "ran" if point == "reading" => {
                assert!(rerun.iter().all(|(_, s)| s == "ran"), "{rerun:?}")
            }
            "ran" => assert!(log.contains("dev_accuracy"), "{point}: training ran again"),
            "restored" => {
                assert_eq!(rerun[0], ("lstm".into(), "reused".into()), "{rerun:?}");
                assert_eq!(rerun[1], ("scores".into(), "ran".into()), "{rerun:?}");
                assert!(
                    log.contains("part 1 of 3 (sentences 1-4096) restored"),
                    "{log}"
                );
                assert!(
                    log.contains("part 2 of 3 (sentences 4097-8192) checkpointed"),
                    "{log}"
                );
            }
            _ => {
                assert!(rerun.iter().all(|(_, s)| s == "reused"), "{rerun:?}");
                assert!(log.contains("stage scores: reusing its results"), "{log}");
            }
        }
    }

    // Shards: the partitions' union is the single run's table; the reduce's statistics are its.
    // One folder for 3, then 2, then 1 shards (their manifests removed in between, as the
    // reduce's message asks): each reduce removes the partitions of the shards beyond its count.
    let out = dir.path().join("shards");
    for count_of_shards in [3usize, 2, 1] {
        let _ = std::fs::remove_dir_all(out.join("shards"));
        run(&pipeline, &out, &["--prepare"]);
        for index in 0..count_of_shards {
            run(
                &pipeline,
                &out,
                &["--shard", &format!("{index}/{count_of_shards}")],
            );
        }
        let log = run(&pipeline, &out, &["--reduce"]);
        assert!(!log.contains("part 1 of"), "the reduce scores nothing");
        for table in [
            "scores",
            "negation_interactions",
            "negation_interactions_reference",
        ] {
            let shards = count(
                &out,
                &format!(
                    "SELECT DISTINCT shard FROM read_parquet('{table}/*/*.parquet', hive_partitioning = true)"
                ),
            );
            assert_eq!(shards, count_of_shards as u64, "{table}");
            assert_same_rows(
                &out,
                &format!(
                    "SELECT * EXCLUDE (shard) FROM read_parquet('{table}/*/*.parquet', hive_partitioning = true)"
                ),
                &format!(
                    "SELECT * FROM '{}'",
                    reference.join(format!("{table}.parquet")).display()
                ),
                &format!("{table} of {count_of_shards} shards"),
            );
        }
        for table in ["sst_train_sentences", "vocabulary_coverage", "lstm"] {
            let columns = comparable_columns(table);
            assert_same_rows(
                &out,
                &format!("SELECT {columns} FROM '{table}.parquet'"),
                &format!(
                    "SELECT {columns} FROM '{}'",
                    reference.join(format!("{table}.parquet")).display()
                ),
                &format!("{table} of {count_of_shards} shards"),
            );
        }
        assert_same_statistics(&reference, &out);
        let reduce = manifest(&out.join("manifest.json"));
        assert_eq!(reduce["shards"], count_of_shards);
        let statuses = statuses(&reduce);
        assert_eq!(statuses[1], ("scores".into(), "merged".into()));
        assert_eq!(
            reduce["stages"][1]["rows"]["scores.parquet"],
            record["stages"][1]["rows"]["scores.parquet"],
            "the shards' rows add up to the single run's"
        );
        assert_eq!(statuses[3], ("aggregate_stats".into(), "ran".into()));
    }
}

/// `aggregate_stats` of two runs: counts and texts equal, floating point within 1e-12.
fn assert_same_statistics(reference: &Path, other: &Path) {
    let query = |dir: &Path| {
        duckdb(
            dir,
            "SELECT * FROM 'aggregate_stats.parquet' ORDER BY method, variant NULLS FIRST, target, \"group\"",
        )
    };
    let (expected, actual) = (query(reference), query(other));
    assert_eq!(expected.len(), actual.len());
    assert!(!expected.is_empty());
    for (e, a) in expected.iter().zip(&actual) {
        for (column, value) in e {
            match (value.as_f64(), a[column].as_f64()) {
                (Some(x), Some(y)) if value.is_f64() => {
                    assert!((x - y).abs() <= 1e-12, "{column}: {x} vs {y}")
                }
                _ => assert_eq!(value, &a[column], "{column}"),
            }
        }
    }
}

#[test]
fn a_second_run_on_a_busy_output_folder_is_refused_naming_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = write_pipeline(dir.path());
    let out = dir.path().join("busy");
    let mut first = run_command(&pipeline, &out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("read input")));
    let refused = || run_command(&pipeline, &out).output().unwrap();
    let second = refused();
    // The refused run left the holder's lock alone: a third is refused too.
    let third = refused();
    first.kill().unwrap();
    assert_eq!(third.status.code(), Some(cd_pipeline::EXIT_LOCKED));
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(cd_pipeline::EXIT_LOCKED));
    let message = String::from_utf8_lossy(&second.stderr);
    let lock = out.join(".cd-pipeline/run.lock");
    assert!(message.contains(&lock.display().to_string()), "{message}");
    assert!(message.contains("in use by another run"), "{message}");
    assert!(
        visible_files(&out).is_empty(),
        "the refused run wrote nothing"
    );
}
