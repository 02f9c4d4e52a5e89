//! The Airflow 3 example DAG (`examples/airflow/cd_pipeline_dag.py`): it imports without errors
//! and `dag.test()` runs every task (validate, train, two mapped shards, reduce, report) to
//! success on a small pipeline, whose tables then equal a direct run's. Airflow (`apache-airflow`
//! 3.3.2, about 130 packages) is installed once into `target/airflow-venv`, or taken from
//! `CD_PIPELINE_AIRFLOW_PYTHON`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{duckdb, shared_dir, sst_random_model};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The Python of a venv with Airflow, made on first use.
fn airflow_python() -> PathBuf {
    if let Some(python) = std::env::var_os("CD_PIPELINE_AIRFLOW_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(REPO).join("target/airflow-venv");
    let python = venv.join("bin/python");
    if !venv.join("bin/airflow").is_file() {
        let made = Command::new("python3")
            .args(["-m", "venv", venv.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(made.success(), "python3 -m venv");
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "apache-airflow==3.3.2"])
            .status()
            .unwrap();
        assert!(installed.success(), "pip install apache-airflow");
    }
    python
}

/// `python` with Airflow's settings: `home`, no example DAGs, the example DAG's folder.
fn with_airflow(python: &Path, home: &Path) -> Command {
    let mut command = Command::new(python);
    command
        .env("AIRFLOW_HOME", home)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env(
            "AIRFLOW__CORE__DAGS_FOLDER",
            Path::new(REPO).join("examples/airflow"),
        );
    command
}

fn airflow(python: &Path, home: &Path, args: &[&str]) -> String {
    let output = with_airflow(python, home)
        .args(["-m", "airflow"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "airflow {args:?}:\n{text}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_example_dag_imports_and_runs_every_task_to_success() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, vocab) = sst_random_model(dir.path());
    let pipeline = dir.path().join("tiny.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"name: tiny
data_dir: {data}
output_dir: out
inputs:
  sst_dev: {{format: sst_trees, path: sst/dev.txt, split: dev}}
models:
  random: {{weights: {weights}, vocab: {vocab}}}
stages:
  - {{name: lstm, kind: train_lstm, train: sst_dev, dev: sst_dev, glove: glove/glove.6B.50d.sst_yelp.txt.gz, hidden: 8, epochs: 1, batch_size: 50, learning_rate: 0.001, seed: 1, eval_every: 200}}
  - {{name: scores, kind: score, input: sst_dev, model: random, spans: constituents, methods: [cd, leave_one_out]}}
  - {{name: negations, kind: negation, input: sst_dev, scores: scores, words: [not, "n't", never, nothing, no], max_words: 10}}
  - {{name: stats, kind: aggregate, input: negations, value: interaction, group_by: kind, compare: [positive, negative]}}
"#,
            data = shared_dir().join("data").display(),
            weights = weights.display(),
            vocab = vocab.display()
        ),
    )
    .unwrap();
    let python = airflow_python();
    let home = dir.path().join("airflow");
    airflow(&python, &home, &["db", "migrate"]);
    // Airflow 3.1+ runs dag.test() only for DAGs serialised to the metadata database.
    airflow(&python, &home, &["dags", "reserialize"]);
    let out = dir.path().join("dag_out");
    let conf = serde_json::json!({
        "binary": env!("CARGO_BIN_EXE_cd-pipeline"),
        "pipeline": pipeline,
        "output": out,
        "shards": 2,
        "threads": 1,
        "sets": "",
    });
    let output = with_airflow(&python, &home)
        .arg(Path::new(REPO).join("tests/airflow/run_dag.py"))
        .arg(Path::new(REPO).join("examples/airflow"))
        .arg(conf.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["run"], "success", "{result}");
    let tasks = result["tasks"].as_object().unwrap();
    for task in [
        "validate",
        "train",
        "shard_environments",
        "score_shard",
        "reduce",
        "report",
    ] {
        let states = tasks[task].as_array().unwrap();
        assert!(states.iter().all(|s| s == "success"), "{task}: {states:?}");
    }
    assert_eq!(
        tasks["score_shard"].as_array().unwrap().len(),
        2,
        "two mapped shards"
    );
    assert!(out.join("report/index.html").is_file());

    // The DAG's tables are a direct run's.
    let direct = dir.path().join("direct");
    let run = common::cd_pipeline(&[
        "run",
        pipeline.to_str().unwrap(),
        "--output",
        direct.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let count = |sql: String| -> u64 {
        duckdb(&out, &format!("SELECT count(*) AS n FROM ({sql})"))[0]["n"]
            .as_u64()
            .unwrap()
    };
    for (table, sharded) in [("scores", true), ("negations", true), ("stats", false)] {
        let dag = if sharded {
            format!(
                "SELECT * EXCLUDE (shard) FROM read_parquet('{table}/*/*.parquet', hive_partitioning = true)"
            )
        } else {
            format!("SELECT * FROM '{table}.parquet'")
        };
        let reference = format!(
            "SELECT * FROM '{}'",
            direct.join(format!("{table}.parquet")).display()
        );
        assert!(count(reference.clone()) > 0, "{table}");
        assert_eq!(count(dag.clone()), count(reference.clone()), "{table}");
        assert_eq!(
            count(format!("({dag}) EXCEPT ALL ({reference})")),
            0,
            "{table}"
        );
    }
}
