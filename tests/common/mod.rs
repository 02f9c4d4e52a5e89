//! Helpers shared by the integration tests: where the shared fixtures are and how to read them.

#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::path::PathBuf;

use cd_pipeline::attribution::{Convention, Span};
use serde::de::DeserializeOwned;

/// `../shared` beside the repository (CI lays it there), or `CD_PIPELINE_SHARED`.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("CD_PIPELINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("fixtures").is_dir(),
        "shared fixtures not found at {}; set CD_PIPELINE_SHARED",
        dir.display()
    );
    dir
}

pub fn fixture(path: &str) -> PathBuf {
    shared_dir().join("fixtures").join(path)
}

pub fn read_jsonl<T: DeserializeOwned>(path: &std::path::Path) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Rel and irrel of one span under one convention, as the fixtures store them.
#[derive(Debug, serde::Deserialize)]
pub struct Decomposition {
    pub rel: Vec<f64>,
    pub irrel: Vec<f64>,
}

/// Largest absolute element-wise difference.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// A line of a `cd_reference` model's `sentences.jsonl`.
#[derive(Debug, serde::Deserialize)]
pub struct FixtureSentence {
    pub sentence: usize,
    pub ids: Vec<usize>,
    pub tokens: Vec<String>,
    pub logits: Vec<f64>,
    pub logits_f32: Vec<f64>,
}

/// A line of a `cd_reference` model's `cases.jsonl` or of `torch_sst/cd_cases.jsonl` (which names
/// the sentence `index`).
#[derive(Debug, serde::Deserialize)]
pub struct FixtureCase {
    #[serde(alias = "index")]
    pub sentence: usize,
    pub start: usize,
    /// Inclusive, as in the authors' code; converted to a half-open end by [`FixtureCase::span`].
    pub stop: usize,
    pub murdoch2018: Decomposition,
    pub acd: Decomposition,
    pub paper: Decomposition,
}

impl FixtureCase {
    pub fn span(&self) -> Span {
        Span::new(self.start, self.stop + 1)
    }

    pub fn expected(&self, convention: Convention) -> &Decomposition {
        match convention {
            Convention::Paper => &self.paper,
            Convention::Murdoch2018 => &self.murdoch2018,
            Convention::Acd => &self.acd,
        }
    }
}

/// Runs the `cd-pipeline` binary.
pub fn cd_pipeline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cd-pipeline"))
        .args(args)
        .output()
        .expect("cd-pipeline runs")
}

/// A Parquet file's record batches and key-value metadata.
pub fn read_parquet(
    path: &std::path::Path,
) -> (Vec<arrow_array::RecordBatch>, Vec<(String, String)>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    (
        builder.build().unwrap().map(|b| b.unwrap()).collect(),
        metadata,
    )
}

/// The Python with the `duckdb` package: `CD_PIPELINE_PYTHON`, else `.venv/bin/python` in the
/// repository (README: `python3 -m venv .venv && .venv/bin/pip install duckdb`).
pub fn duckdb_python() -> PathBuf {
    let python = std::env::var_os("CD_PIPELINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        python.exists(),
        "DuckDB tests need Python with duckdb at {}: run `python3 -m venv .venv && .venv/bin/pip install duckdb`, or set CD_PIPELINE_PYTHON",
        python.display()
    );
    python
}

/// Runs one SQL statement in DuckDB from `cwd`; rows come back as JSON objects.
pub fn duckdb(cwd: &std::path::Path, sql: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    // No progress bar: DuckDB draws one on stdout for queries of more than two seconds.
    const SCRIPT: &str = "import duckdb, json, sys\n\
        duckdb.sql('SET enable_progress_bar = false')\n\
        r = duckdb.sql(sys.argv[1])\n\
        cols = r.columns\n\
        print(json.dumps([dict(zip(cols, row)) for row in r.fetchall()], default=str))\n";
    let output = std::process::Command::new(duckdb_python())
        .current_dir(cwd)
        .args(["-c", SCRIPT, sql])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "DuckDB failed on\n{sql}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON rows")
}

/// A Parquet file's Arrow schema and `schema_version` equal `schemas/<table>.yaml`.
pub fn assert_schema_matches(file: &std::path::Path, table: &str) {
    #[derive(serde::Deserialize)]
    struct SchemaFile {
        table: String,
        schema_version: String,
        columns: Vec<Column>,
    }
    #[derive(serde::Deserialize)]
    struct Column {
        name: String,
        #[serde(rename = "type")]
        data_type: String,
        nullable: bool,
        #[allow(dead_code)] // documentation for readers; checked to exist
        description: String,
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{table}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let expected: SchemaFile = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(expected.table, table);
    let (batches, metadata) = read_parquet(file);
    let schema = batches[0].schema();
    let actual: Vec<(String, String, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), type_name(f.data_type()), f.is_nullable()))
        .collect();
    let documented: Vec<(String, String, bool)> = expected
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.data_type.clone(), c.nullable))
        .collect();
    assert_eq!(actual, documented, "schemas/{table}.yaml");
    let version = metadata
        .iter()
        .find(|(k, _)| k == "schema_version")
        .map(|(_, v)| v.clone());
    assert_eq!(version, Some(expected.schema_version), "{table}");
}

/// The type names `schemas/` uses.
fn type_name(data_type: &arrow_schema::DataType) -> String {
    use arrow_schema::DataType as T;
    match data_type {
        T::Utf8 => "string".into(),
        T::Boolean => "bool".into(),
        T::Int8 => "int8".into(),
        T::Int32 => "int32".into(),
        T::Int64 => "int64".into(),
        T::Float32 => "float32".into(),
        T::Float64 => "float64".into(),
        T::List(item) => format!("list<{}>", type_name(item.data_type())),
        other => panic!("no schema name for {other}"),
    }
}

/// A seeded random model over every normalised SST token (plus `<unk>`), saved as safetensors.
pub fn sst_random_model(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let mut tokens = std::collections::BTreeSet::new();
    for split in ["train", "dev", "test"] {
        for tree in
            cd_pipeline::data::read_sst_trees(&shared_dir().join(format!("data/sst/{split}.txt")))
                .unwrap()
        {
            tokens.extend(
                tree.tokens
                    .iter()
                    .map(|t| cd_pipeline::model::normalize_token(t)),
            );
        }
    }
    let mut vocab = vec!["<unk>".to_string()];
    vocab.extend(tokens);
    let model =
        cd_pipeline::model::LstmClassifier::<f32>::seeded_random(vocab.len(), 16, 24, 2, 20181);
    let weights = dir.join("model.safetensors");
    model.save(&weights).unwrap();
    let vocab_path = dir.join("vocab.json");
    std::fs::write(&vocab_path, serde_json::to_string(&vocab).unwrap()).unwrap();
    (weights, vocab_path)
}
