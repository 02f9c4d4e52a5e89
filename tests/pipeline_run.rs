//! `cd-pipeline run` end to end: the shipped `pipelines/sst_negation.yaml`, pointed by `--set` at
//! the real SST dev trees and (for scoring) a seeded random model whose vocabulary covers SST, its
//! training stage cut to one epoch, checked through
//! DuckDB (row counts, completeness against the model's own logits, interactions against the
//! scores they combine), the README's queries run verbatim, and every written schema against
//! `schemas/`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use cd_pipeline::analysis::negation::NegationRule;
use cd_pipeline::data::read_sst_trees;
use cd_pipeline::model::{LstmClassifier, Vocabulary};
use common::{assert_schema_matches, cd_pipeline, duckdb, shared_dir, sst_random_model};
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn number(row: &serde_json::Map<String, Value>, column: &str) -> f64 {
    match &row[column] {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("{column}: {other}"),
    }
}

/// The fenced `sql` blocks of the README's "Querying the pipeline's tables" section.
fn readme_queries() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Querying the pipeline's tables"))
        .expect("README has the DuckDB section");
    section
        .split("```sql\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_string())
        .collect()
}

#[test]
fn sst_negation_pipeline_over_dev_trees() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, vocab) = sst_random_model(dir.path());
    let output = dir.path().join("out/sst_negation");
    let data = shared_dir().join("data");
    let pipeline = Path::new(REPO).join("pipelines/sst_negation.yaml");
    let sets = [
        format!("data_dir={}", data.display()),
        // The shared folder's name of the GloVe file `data/setup.sh` links.
        "stages.lstm.glove=glove/glove.6B.50d.sst_yelp.txt.gz".to_string(),
        "inputs.sst_train.path=sst/dev.txt".to_string(),
        "inputs.sst_train.split=dev".to_string(),
        format!("models.random.weights={}", weights.display()),
        format!("models.random.vocab={}", vocab.display()),
        "stages.scores.model=random".to_string(),
        // The training stage runs too, briefly (on the dev trees the input now points at).
        "stages.lstm.epochs=1".to_string(),
        format!("model_cache={}", dir.path().join("models").display()),
    ];
    let mut args = vec![
        "run".to_string(),
        pipeline.display().to_string(),
        "--output".into(),
        output.display().to_string(),
        "--threads".into(),
        "2".into(),
    ];
    for set in &sets {
        args.extend(["--set".to_string(), set.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cd_pipeline(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Independent counts: 1101 dev trees of 21,274 leaves, so 2 * 21,274 - 1101 nodes.
    let trees = read_sst_trees(&data.join("sst/dev.txt")).unwrap();
    let nodes = 2 * 21_274 - 1101;
    let negations: usize = trees
        .iter()
        .map(|t| NegationRule::default().find(t).len())
        .sum();
    assert!(negations > 0);
    let count = |table: &str| {
        let rows = duckdb(
            &output,
            &format!("SELECT count(*) AS n FROM '{table}.parquet'"),
        );
        number(&rows[0], "n") as usize
    };
    assert_eq!(count("sst_train_sentences"), 1101);
    assert_eq!(count("sst_train_constituents"), nodes);
    assert_eq!(
        count("scores"),
        3 * nodes,
        "CD in two conventions and leave-one-out"
    );
    assert_eq!(count("negation_interactions"), 3 * negations);
    let rows = duckdb(
        &output,
        "SELECT method, variant, target, sum(count) AS n, count(*) AS groups FROM 'aggregate_stats.parquet' GROUP BY ALL ORDER BY ALL",
    );
    let text = |row: &serde_json::Map<String, Value>, column: &str| -> String {
        row[column].as_str().unwrap_or("null").to_string()
    };
    let methods: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                text(r, "method"),
                text(r, "variant"),
                text(r, "target")
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            "cd murdoch2018 logit_diff",
            "cd paper logit_diff",
            "leave_one_out null log_prob:1"
        ]
    );
    for row in &rows {
        assert_eq!(number(row, "n") as usize, negations);
        assert_eq!(number(row, "groups") as usize, 2);
    }

    // Completeness: rel + irrel of every span equals the model's logits minus the output bias,
    // the logits computed here in f64 from the saved weights.
    let model = LstmClassifier::<f64>::load(&weights).unwrap();
    let vocabulary = Vocabulary::load(&vocab).unwrap();
    let bias = model.b_out().to_vec();
    let expected: HashMap<String, Vec<f64>> = trees
        .iter()
        .map(|t| {
            let ids: Vec<usize> = t
                .tokens
                .iter()
                .map(|w| vocabulary.lookup(w).unwrap())
                .collect();
            let logits = model.forward(&ids).unwrap().logits;
            let target = logits.iter().zip(&bias).map(|(l, b)| l - b).collect();
            (format!("dev-{}", t.line), target)
        })
        .collect();
    let rows = duckdb(
        &output,
        "SELECT sentence_id, rel[1] + irrel[1] AS total0, rel[2] + irrel[2] AS total1 FROM 'scores.parquet' WHERE method = 'cd'",
    );
    assert_eq!(rows.len(), 2 * nodes);
    let mut worst = 0.0_f64;
    for row in &rows {
        let target = &expected[row["sentence_id"].as_str().unwrap()];
        worst = worst
            .max((number(row, "total0") - target[0]).abs())
            .max((number(row, "total1") - target[1]).abs());
    }
    assert!(worst < 1e-5, "rel + irrel vs logits - bias: {worst}");

    // Interactions: each of the three scores is the `scores` row of that span, and the interaction
    // is whole - negated - negation.
    let rows = duckdb(
        &output,
        "SELECT count(*) AS n,
                max(abs(n.phrase_score - w.score)) AS whole,
                max(abs(n.negation_score - a.score)) AS negation,
                max(abs(n.negated_score - b.score)) AS negated,
                max(abs(n.interaction - (w.score - b.score - a.score))) AS interaction
         FROM 'negation_interactions.parquet' n
         JOIN 'scores.parquet' w ON w.sentence_id = n.sentence_id AND w.method = n.method
              AND w.variant IS NOT DISTINCT FROM n.variant
              AND w.span_start = n.phrase_start AND w.span_end = n.phrase_end
         JOIN 'scores.parquet' a ON a.sentence_id = n.sentence_id AND a.method = n.method
              AND a.variant IS NOT DISTINCT FROM n.variant
              AND a.span_start = n.negation_start AND a.span_end = n.negation_end
         JOIN 'scores.parquet' b ON b.sentence_id = n.sentence_id AND b.method = n.method
              AND b.variant IS NOT DISTINCT FROM n.variant
              AND b.span_start = n.negated_start AND b.span_end = n.negated_end",
    );
    assert_eq!(number(&rows[0], "n") as usize, 3 * negations);
    for column in ["whole", "negation", "negated", "interaction"] {
        // `scores` stores float32, the interactions float64.
        assert!(number(&rows[0], column) < 1e-6, "{column}: {:?}", rows[0]);
    }

    // The statistics agree with DuckDB's own aggregates of the interactions.
    let rows = duckdb(
        &output,
        "SELECT max(abs(s.mean - d.mean)) AS mean, max(abs(s.std - d.std)) AS std,
                max(abs(s.median - d.median)) AS median, max(abs(s.q25 - d.q25)) AS q25
         FROM 'aggregate_stats.parquet' s
         JOIN (SELECT method, variant, kind, avg(interaction) AS mean, stddev_samp(interaction) AS std,
                      quantile_cont(interaction, 0.5) AS median, quantile_cont(interaction, 0.25) AS q25
               FROM 'negation_interactions.parquet' GROUP BY method, variant, kind) d
           ON s.method = d.method AND s.variant IS NOT DISTINCT FROM d.variant AND s.\"group\" = d.kind",
    );
    for column in ["mean", "std", "median", "q25"] {
        assert!(number(&rows[0], column) < 1e-12, "{column}: {:?}", rows[0]);
    }

    // The README's queries, verbatim, from the folder above `out/`.
    let queries = readme_queries();
    assert!(queries.len() >= 3);
    for query in &queries {
        let rows = duckdb(dir.path(), query);
        assert!(!rows.is_empty(), "no rows from the README query\n{query}");
    }

    check_schemas(&output);
}

/// Every table's Arrow schema and `schema_version` equal its file in `schemas/`.
fn check_schemas(output: &Path) {
    let tables = [
        ("sst_train_sentences", "sentences"),
        ("sst_train_constituents", "constituents"),
        ("scores", "scores"),
        ("negation_interactions", "negation_interactions"),
        ("aggregate_stats", "aggregate_stats"),
        ("lstm", "train_log"),
        ("lstm_eval", "model_eval"),
    ];
    for (file, table) in tables {
        assert_schema_matches(&output.join(format!("{file}.parquet")), table);
    }
}
