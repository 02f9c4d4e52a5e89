//! The README, run as a new user would: every fenced `sh` block in order, in a fresh folder laid
//! out like a checkout (with `../shared` linked by `data/setup.sh`, the binary this test was built
//! with standing in for `cargo run --release --`), then every fenced `sql` block against what they
//! wrote; the negation table the README quotes must be what this run computes. The README's test
//! command is the one block not run here: `.ci/run` runs it, and this test checks that it does,
//! verbatim. The README's Rust example compiles as a doctest (`src/lib.rs`).
//!
//! It trains the SST model and scores every constituent of SST train, as the quick start does
//! (about a minute on 2 cores).

mod common;

use std::path::Path;
use std::process::Command;

use common::{duckdb, shared_dir};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The fenced blocks of `language` in `text`, in order.
fn blocks(text: &str, language: &str) -> Vec<String> {
    text.split(&format!("```{language}\n"))
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_string())
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// `value` with as many decimals as `shown` has, in `shown`'s notation (`0.370` or `9e-44`).
fn printed(value: f64, shown: &str) -> String {
    let (mantissa, scientific) = match shown.split_once('e') {
        Some((mantissa, _)) => (mantissa, true),
        None => (shown, false),
    };
    let digits = mantissa.split('.').nth(1).map_or(0, str::len);
    if scientific {
        format!("{value:.digits$e}")
    } else {
        format!("{value:.digits$}")
    }
}

#[test]
fn readme_commands_and_queries_run_as_written() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for folder in ["pipelines", "examples"] {
        copy_tree(&Path::new(REPO).join(folder), &root.join(folder));
    }
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("data/setup.sh"),
        root.join("data/setup.sh"),
    )
    .unwrap();

    let ci = std::fs::read_to_string(Path::new(REPO).join(".ci/run")).unwrap();
    let binary = env!("CARGO_BIN_EXE_cd-pipeline");
    let commands = blocks(&readme, "sh");
    assert!(commands.len() >= 4, "{commands:?}");
    let mut ran = 0;
    for block in &commands {
        if block.contains("cargo test") {
            assert!(
                ci.contains(block.trim()),
                ".ci/run does not run the README's test command verbatim:\n{block}"
            );
            continue;
        }
        let script = block.replace("cargo run --release --", binary);
        let run = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(root)
            .env("CD_PIPELINE_SHARED", shared_dir())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "README command failed:\n{block}\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 3);

    for query in blocks(&readme, "sql") {
        let rows = duckdb(root, &query);
        assert!(!rows.is_empty(), "no rows from the README query\n{query}");
    }

    // The negation table: every row as the README prints it, from this run's aggregate_stats.
    let rows = duckdb(
        root,
        "SELECT method, coalesce(variant, '') AS variant, \"group\" AS kind, count, mean, median,
                ks_statistic, ks_p_value
         FROM 'out/sst_negation/aggregate_stats.parquet' ORDER BY method, variant, kind",
    );
    let table: Vec<Vec<String>> = readme
        .split("\n## ")
        .find(|s| s.starts_with("Querying the pipeline's tables"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| cd ") || l.starts_with("| leave_one_out "))
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        table.len(),
        rows.len(),
        "one README row per method, variant and kind"
    );
    let number = |v: &serde_json::Value| {
        v.as_f64()
            .unwrap_or_else(|| v.as_str().unwrap().parse().unwrap())
    };
    for (row, shown) in rows.iter().zip(&table) {
        let text = |c: &str| row[c].as_str().unwrap().to_string();
        let variant = if text("variant").is_empty() {
            "-".to_string()
        } else {
            text("variant")
        };
        let computed = [
            text("method"),
            variant,
            text("kind"),
            number(&row["count"]).to_string(),
            printed(number(&row["mean"]), &shown[4]),
            printed(number(&row["median"]), &shown[5]),
            printed(number(&row["ks_statistic"]), &shown[6]),
            printed(number(&row["ks_p_value"]), &shown[7]),
        ];
        assert_eq!(&computed[..], &shown[..8], "README negation row");
    }
}
