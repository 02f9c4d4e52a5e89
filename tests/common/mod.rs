//! Helpers shared by the integration tests: where the shared fixtures are and how to read them.

#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::path::PathBuf;

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
