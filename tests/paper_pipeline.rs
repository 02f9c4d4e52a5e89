//! `pipelines/paper.yaml` end to end on small real inputs (SST dev trees standing in for the
//! training trees, one in 40 Yelp sentences, small models trained for one epoch), and every
//! analysis stage's statistic recomputed from its own rows with SQL in DuckDB: Pearson's r with
//! `corr`, the one-sided KS statistic from window-function CDFs, the selection counts from the
//! constituents table, the n-gram scores from the coefficient table, the averaged-beta cosines from
//! the beta table, the hierarchy's partitions, and the reproduction table against its sources.

mod common;

use std::path::Path;

use common::{assert_schema_matches, cd_pipeline, duckdb, shared_dir};
use serde_json::{Map, Value};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

type Row = Map<String, Value>;

fn number(row: &Row, column: &str) -> f64 {
    match &row[column] {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("{column}: {other}"),
    }
}

fn count(output: &Path, sql: &str) -> usize {
    number(&duckdb(output, sql)[0], "n") as usize
}

/// SQL for the words of `column` (tokens joined by spaces) as `normalize_token` writes them.
fn normalized_words(column: &str) -> String {
    format!(
        "list_transform(string_split({column}, ' '), lambda t: CASE lower(t) WHEN '-lrb-' THEN '('
         WHEN '-rrb-' THEN ')' ELSE replace(replace(lower(t), '\\/', '/'), '\\*', '*') END)"
    )
}

/// The largest value of column `worst` over the query's rows (0 for none).
fn worst(output: &Path, sql: &str) -> f64 {
    duckdb(output, sql)
        .iter()
        .map(|r| number(r, "worst"))
        .fold(0.0, f64::max)
}

fn run_paper_pipeline(dir: &Path) -> std::path::PathBuf {
    let output = dir.join("out/paper");
    let pipeline = Path::new(REPO).join("pipelines/paper.yaml");
    let glove = "glove/glove.6B.50d.sst_yelp.txt.gz";
    let sets = [
        format!("data_dir={}", shared_dir().join("data").display()),
        format!("model_cache={}", dir.join("models").display()),
        format!("stages.report.output={}", dir.join("stage_report/index.html").display()),
        format!("stages.lstm.glove={glove}"),
        format!("stages.yelp_lstm.glove={glove}"),
        "inputs.sst_train.path=sst/dev.txt".into(),
        "stages.lstm.epochs=1".into(),
        "stages.lstm.hidden=24".into(),
        "stages.yelp_lstm.epochs=1".into(),
        "stages.yelp_lstm.hidden=24".into(),
        "inputs.yelp_train.sample={every: 40, offset: 0}".into(),
        "inputs.yelp_dev.sample={every: 80, offset: 0}".into(),
        "inputs.yelp_test.sample={every: 80, offset: 1}".into(),
        "stages.yelp_ngrams.l2=[1e-5]".into(),
        "stages.sst_unigram_correlation.resamples=200".into(),
        "stages.sst_similar_phrases.queries=[{category: positive word, phrase: good}, {category: negative word, phrase: bad}, {category: negation, phrase: \"not\"}]".into(),
    ];
    let mut args = vec![
        "run".to_string(),
        pipeline.display().to_string(),
        "--output".into(),
        output.display().to_string(),
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
    output
}

#[test]
fn paper_pipeline_statistics_recomputed_in_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_paper_pipeline(dir.path());
    const METHODS: usize = 6;

    check_unigram_correlation(&output, "sst", "bow");
    check_unigram_correlation(&output, "yelp", "yelp_ngrams");
    check_compositionality(&output, METHODS);
    check_negation(&output);
    for (stage, coefficients) in [
        ("yelp_review_dissenting", "yelp_ngrams"),
        ("yelp_sentence_dissenting", "yelp_ngrams"),
        ("sst_dissenting", "ngrams"),
    ] {
        check_dissenting(&output, stage, coefficients, METHODS);
    }
    check_similar_phrases(&output);
    check_hierarchy(&output);
    check_reproduction(&output);
    check_schemas(&output);
    check_report(&output, dir.path());
}

/// The report of the run, opened in headless Chromium: no console message, no page error, no
/// request but the page; every section and figure present and drawn; each histogram's counts,
/// range and KS statistic and each scatter's r recomputed from the tables in DuckDB. The
/// screenshot goes to `target/report-screenshots/paper.png`, to be looked at.
fn check_report(output: &Path, dir: &Path) {
    let page = dir.join("report/index.html");
    let run = cd_pipeline(&[
        "report",
        output.to_str().unwrap(),
        "--output",
        page.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("stage_report/index.html")).unwrap(),
        html,
        "the report stage and the report command make the same page"
    );
    let chosen = dir.join("chosen/index.html");
    let run = cd_pipeline(&[
        "report",
        output.to_str().unwrap(),
        "--output",
        chosen.to_str().unwrap(),
        "--sentence",
        "sst_dev/dev-2",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let chosen = std::fs::read_to_string(chosen).unwrap();
    assert_eq!(
        chosen.matches("<h4>sst_dev ").count(),
        1,
        "only the chosen SST sentence is coloured"
    );
    assert!(chosen.contains("<h4>sst_dev dev-2</h4>") && chosen.contains("sst_hierarchy: dev-2 "));
    for fetching in [
        "<script", "<link", "<img", "<iframe", "src=", "url(", "@import",
    ] {
        assert!(!html.contains(fetching), "the page holds `{fetching}`");
    }
    let screenshots = Path::new(REPO).join("target/report-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let browser = std::process::Command::new(common::duckdb_python())
        .args([
            Path::new(REPO)
                .join("tests/browser/open_report.py")
                .to_str()
                .unwrap(),
            page.to_str().unwrap(),
            screenshots.join("paper.png").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        browser.status.success(),
        "the browser (Playwright and /usr/bin/chromium):\n{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let found: Value = serde_json::from_slice(&browser.stdout).unwrap();
    for quiet in ["console", "errors", "requests"] {
        assert_eq!(found[quiet], Value::Array(vec![]), "{quiet}");
    }
    let sections: Vec<&str> = found["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        [
            "run",
            "reproduction",
            "negation",
            "dissenting",
            "compositionality",
            "correlations",
            "sentences",
            "phrases",
            "similar",
            "hierarchy",
            "strongest",
            "tables"
        ]
    );
    let figures = found["figures"].as_array().unwrap();
    let ids: Vec<&str> = figures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    // Per dataset and method: 2 training curves, Fig. 1 for the 3 methods with interactions,
    // Figs. 2 (three searches), 3 and 4 (two datasets) for all 6.
    let prefixed = |prefix: &str| ids.iter().filter(|id| id.starts_with(prefix)).count();
    assert_eq!(
        [
            prefixed("training-"),
            prefixed("fig1-"),
            prefixed("fig2-"),
            prefixed("fig3-"),
            prefixed("fig4-")
        ],
        [2, 3, 18, 6, 12],
        "{ids:?}"
    );
    for figure in figures {
        assert!(
            figure["drawn"].as_u64().unwrap() > 20
                && figure["width"].as_f64().unwrap() > 100.0
                && figure["height"].as_f64().unwrap() > 100.0,
            "an empty figure: {figure}"
        );
        let data = &figure["data"];
        let text = |key: &str| data[key].as_str().unwrap().to_string();
        let id = figure["id"].as_str().unwrap();
        if id.starts_with("fig4-") {
            let row = &duckdb(
                output,
                &format!(
                    "SELECT corr(score, coefficient) AS r, count(*) AS n FROM '{}.parquet'
                     WHERE method = '{}' AND coalesce(variant, '') = '{}'",
                    text("table"),
                    text("method"),
                    text("variant")
                ),
            )[0];
            assert_eq!(
                number(row, "n"),
                text("points").parse::<f64>().unwrap(),
                "{id}"
            );
            let r: f64 = text("r").parse().unwrap();
            assert!(
                (number(row, "r") - r).abs() < 1e-9,
                "{id}: r {r} against {row:?}"
            );
        } else if id.starts_with("fig") {
            check_histogram(output, id, data);
        }
    }
}

/// One distribution panel: the range, every bin's count per kind and the KS statistic, from the
/// table's rows (and, for Fig. 1, its reference table's) and the stage's `aggregate` table.
fn check_histogram(output: &Path, id: &str, data: &Value) {
    let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
    let table = text("table");
    let select = format!(
        "SELECT kind, {} AS x FROM '{table}.parquet' WHERE method = '{}' AND coalesce(variant, '') = '{}'",
        text("column"),
        text("method"),
        text("variant")
    );
    let pooled = if data.get("countsAll").is_some() {
        format!(
            "{select} UNION ALL SELECT 'all' AS kind, interaction AS x FROM '{table}_reference.parquet'
             WHERE method = '{}' AND coalesce(variant, '') = '{}'",
            text("method"),
            text("variant")
        )
    } else {
        select
    };
    let edges: Vec<f64> = text("edges")
        .split(' ')
        .map(|e| e.parse().unwrap())
        .collect();
    let bins = edges.len() - 1;
    let rows = duckdb(
        output,
        &format!(
            "WITH v AS ({pooled}), r AS (SELECT min(x) AS lo, max(x) AS hi FROM v)
             SELECT kind, least(floor((x - lo) / ((hi - lo) / {bins})), {bins} - 1)::INTEGER AS bin,
                    count(*) AS n, any_value(lo) AS lo, any_value(hi) AS hi
             FROM v, r GROUP BY ALL"
        ),
    );
    assert!(!rows.is_empty(), "{id}: no rows");
    // serde_json parses floats to within an ulp or two, not exactly.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
    assert!(close(number(&rows[0], "lo"), edges[0]), "{id}: {rows:?}");
    assert!(close(number(&rows[0], "hi"), edges[bins]), "{id}: {rows:?}");
    for (kind, key) in [
        ("positive", "countsPositive"),
        ("negative", "countsNegative"),
        ("all", "countsAll"),
    ] {
        if data.get(key).is_none() {
            continue;
        }
        let mut counts = vec![0usize; bins];
        for row in rows.iter().filter(|r| r["kind"] == kind) {
            counts[number(row, "bin") as usize] = number(row, "n") as usize;
        }
        let shown: Vec<usize> = text(key).split(' ').map(|c| c.parse().unwrap()).collect();
        assert_eq!(shown, counts, "{id}: {kind} counts");
    }
    let stats = duckdb(
        output,
        &format!(
            "SELECT ks_statistic FROM '{table}_stats.parquet'
             WHERE method = '{}' AND coalesce(variant, '') = '{}' AND \"group\" = 'positive'",
            text("method"),
            text("variant")
        ),
    );
    let ks: f64 = text("ks").parse().unwrap();
    assert!(
        (number(&stats[0], "ks_statistic") - ks).abs() < 1e-12,
        "{id}: KS {ks} against {stats:?}"
    );
}

/// r per token with `corr` over the points, per type over the points' per-term means; the point
/// and missing counts from the sentences table; each point's coefficient from the coefficients.
fn check_unigram_correlation(output: &Path, dataset: &str, coefficients: &str) {
    let stage = format!("{dataset}_unigram_correlation");
    let summary = duckdb(
        output,
        &format!("SELECT * FROM '{stage}.parquet' ORDER BY method, variant, unit"),
    );
    assert_eq!(summary.len(), 2 * 6, "{stage}: 6 methods, token and type");
    let worst_r = worst(
        output,
        &format!(
            "WITH p AS (SELECT * FROM '{stage}_points.parquet'),
                  tokens AS (SELECT method, variant, 'token' AS unit, corr(coefficient, score) AS r,
                                    count(*) AS n FROM p GROUP BY ALL),
                  terms AS (SELECT method, variant, term, any_value(coefficient) AS c, avg(score) AS s
                            FROM p GROUP BY ALL),
                  types AS (SELECT method, variant, 'type' AS unit, corr(c, s) AS r, count(*) AS n
                            FROM terms GROUP BY ALL),
                  sql AS (SELECT * FROM tokens UNION ALL SELECT * FROM types)
             SELECT greatest(abs(u.pearson_r - sql.r), abs(u.points - sql.n)) AS worst
             FROM '{stage}.parquet' u JOIN sql ON u.method = sql.method
                  AND u.variant IS NOT DISTINCT FROM sql.variant AND u.unit = sql.unit"
        ),
    );
    assert!(worst_r < 1e-9, "{stage}: r or points differ by {worst_r}");
    // Every token of the labelled sentences is a point or missing.
    let input = if dataset == "sst" {
        "sst_dev"
    } else {
        "yelp_dev"
    };
    let tokens = count(
        output,
        &format!(
            "SELECT sum(n_tokens) AS n FROM '{input}_sentences.parquet' WHERE label IS NOT NULL"
        ),
    );
    for row in summary.iter().filter(|r| r["unit"] == "token") {
        assert_eq!(
            number(row, "points") as usize + number(row, "missing") as usize,
            tokens,
            "{stage}"
        );
        if dataset == "sst" {
            let (low, high) = (number(row, "ci_low"), number(row, "ci_high"));
            assert!(low < number(row, "pearson_r") && number(row, "pearson_r") < high);
        }
    }
    let joined = count(
        output,
        &format!(
            "SELECT count(*) AS n FROM '{stage}_points.parquet' p JOIN '{coefficients}.parquet' c
             ON c.term = p.term AND c.coefficient = p.coefficient"
        ),
    );
    let points = count(
        output,
        &format!("SELECT count(*) AS n FROM '{stage}_points.parquet'"),
    );
    assert_eq!(joined, points, "{stage}: coefficients from {coefficients}");
}

/// The selection re-derived from the constituents and sentences tables; the scores from the
/// scoring stage; the one-sided KS statistic from the rows' empirical CDFs.
fn check_compositionality(output: &Path, methods: usize) {
    let selected = count(
        output,
        "SELECT count(*) AS n FROM 'sst_train_constituents.parquet' c
         JOIN 'sst_train_sentences.parquet' s USING (sentence_id)
         WHERE s.label IS NOT NULL AND c.polarity IN ('positive', 'negative')
           AND (c.polarity = 'positive') <> (s.label = 1)
           AND 3 * (c.span_end - c.span_start) >= s.n_tokens
           AND 3 * (c.span_end - c.span_start) <= 2 * s.n_tokens",
    );
    assert!(selected > 50, "{selected} opposing constituents");
    let rows = count(
        output,
        "SELECT count(*) AS n FROM 'sst_compositionality.parquet'",
    );
    assert_eq!(rows, methods * selected);
    let score_gap = worst(
        output,
        "SELECT max(abs(c.score - s.score)) AS worst FROM 'sst_compositionality.parquet' c
         JOIN 'sst_constituent_scores.parquet' s ON s.sentence_id = c.sentence_id
              AND s.span_start = c.span_start AND s.span_end = c.span_end AND s.method = c.method
              AND s.variant IS NOT DISTINCT FROM c.variant",
    );
    // `scores` holds float32.
    assert!(
        score_gap < 1e-6,
        "compositionality scores vs scores: {score_gap}"
    );
    let ks_gap = worst(
        output,
        &one_sided_ks_sql(
            "sst_compositionality",
            "score",
            "sst_compositionality_stats",
        ),
    );
    assert!(ks_gap < 1e-12, "one-sided KS: {ks_gap}");
}

/// D⁺ = max(0, sup_x [F_negative(x) − F_positive(x)]) per method from the rows of `table`
/// (RANGE frames count ties together), against the `aggregate` stage's statistic.
fn one_sided_ks_sql(table: &str, value: &str, stats: &str) -> String {
    format!(
        "WITH v AS (SELECT method, variant, kind, {value} AS x FROM '{table}.parquet'),
              n AS (SELECT method, variant, count(*) FILTER (kind = 'positive') AS np,
                           count(*) FILTER (kind = 'negative') AS nn FROM v GROUP BY ALL),
              f AS (SELECT method, variant, x,
                           count(*) FILTER (kind = 'negative') OVER w AS cn,
                           count(*) FILTER (kind = 'positive') OVER w AS cp
                    FROM v WINDOW w AS (PARTITION BY method, variant ORDER BY x
                                        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
              d AS (SELECT method, variant, greatest(0, max(cn / nn - cp / np)) AS d
                    FROM f JOIN n USING (method, variant) GROUP BY ALL)
         SELECT abs(s.ks_statistic - d.d) AS worst FROM '{stats}.parquet' s
         JOIN d ON s.method = d.method AND s.variant IS NOT DISTINCT FROM d.variant
         WHERE s.ks_alternative = 'greater'"
    )
}

/// Negation keeps the methods with interactions; its reference distribution holds every
/// constituent with two children of fewer than 5 words, each interaction the scores' difference.
fn check_negation(output: &Path) {
    let methods = duckdb(
        output,
        "SELECT DISTINCT method, variant FROM 'sst_negation.parquet' ORDER BY ALL",
    );
    let names: Vec<String> = methods
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["variant"]))
        .collect();
    assert_eq!(
        names,
        ["cd \"murdoch2018\"", "cd \"paper\"", "leave_one_out null"]
    );
    let nodes = count(
        output,
        "SELECT count(*) AS n FROM 'sst_train_constituents.parquet'
         WHERE left_child_id IS NOT NULL AND span_end - span_start < 5",
    );
    let reference = count(
        output,
        "SELECT count(*) AS n FROM 'sst_negation_reference.parquet'",
    );
    assert_eq!(reference, 3 * nodes);
    let gap = worst(
        output,
        "SELECT max(greatest(abs(r.phrase_score - w.score), abs(r.left_score - a.score),
                             abs(r.right_score - b.score),
                             abs(r.interaction - (r.phrase_score - r.left_score - r.right_score)))) AS worst
         FROM 'sst_negation_reference.parquet' r
         JOIN 'sst_constituent_scores.parquet' w ON w.sentence_id = r.sentence_id AND w.method = r.method
              AND w.variant IS NOT DISTINCT FROM r.variant AND w.span_start = r.phrase_start AND w.span_end = r.phrase_end
         JOIN 'sst_constituent_scores.parquet' a ON a.sentence_id = r.sentence_id AND a.method = r.method
              AND a.variant IS NOT DISTINCT FROM r.variant AND a.span_start = r.phrase_start AND a.span_end = r.split_at
         JOIN 'sst_constituent_scores.parquet' b ON b.sentence_id = r.sentence_id AND b.method = r.method
              AND b.variant IS NOT DISTINCT FROM r.variant AND b.span_start = r.split_at AND b.span_end = r.phrase_end",
    );
    assert!(gap < 1e-6, "reference interactions: {gap}");
}

/// Every pair obeys the rule (lengths, containment, thresholds, signs); each phrase's linear score
/// is the sum of the coefficients of its distinct n-grams, recomputed from the coefficient table;
/// the subphrase scores come from the scoring stage; the statistics from the rows.
fn check_dissenting(output: &Path, stage: &str, coefficients: &str, methods: usize) {
    let pairs = count(
        output,
        &format!("SELECT count(*) AS n FROM '{stage}.parquet'"),
    );
    assert!(
        pairs > 0 && pairs.is_multiple_of(methods),
        "{stage}: {pairs} rows"
    );
    let broken = count(
        output,
        &format!(
            "SELECT count(*) AS n FROM '{stage}.parquet'
             WHERE NOT (phrase_end - phrase_start <= 5 AND phrase_start <= subphrase_start
                        AND subphrase_end <= phrase_end
                        AND subphrase_end - subphrase_start < phrase_end - phrase_start
                        AND abs(phrase_lr) > 1.5 AND abs(subphrase_lr) > 1.5
                        AND sign(phrase_lr) <> sign(subphrase_lr)
                        AND kind = CASE WHEN subphrase_lr > 0 THEN 'positive' ELSE 'negative' END)"
        ),
    );
    assert_eq!(broken, 0, "{stage}: rows breaking the selection rule");
    let lr_gap = worst(
        output,
        &format!(
            "WITH p AS (SELECT DISTINCT sentence_id, phrase_start AS s, phrase_end AS e, phrase_lr AS lr,
                               {} AS w FROM '{stage}.parquet'
                        UNION
                        SELECT DISTINCT sentence_id, subphrase_start, subphrase_end, subphrase_lr,
                               {} FROM '{stage}.parquet'),
                  g AS (SELECT DISTINCT sentence_id, s, e, lr, array_to_string(w[i:i + n - 1], ' ') AS term
                        FROM p, range(1, 4) AS a(n), range(1, 6) AS b(i) WHERE i + n - 1 <= len(w)),
                  t AS (SELECT sentence_id, s, e, lr, coalesce(sum(c.coefficient), 0) AS total
                        FROM g LEFT JOIN '{coefficients}.parquet' c USING (term) GROUP BY ALL)
             SELECT max(abs(total - lr)) AS worst FROM t",
            normalized_words("phrase"),
            normalized_words("subphrase"),
        ),
    );
    assert!(lr_gap < 1e-9, "{stage}: n-gram scores differ by {lr_gap}");
    let scores = stage.replace("_dissenting", "_span_scores");
    let score_gap = worst(
        output,
        &format!(
            "SELECT max(greatest(abs(d.subphrase_score - s.score), abs(d.phrase_score - p.score))) AS worst
             FROM '{stage}.parquet' d
             JOIN '{scores}.parquet' s ON s.sentence_id = d.sentence_id AND s.method = d.method
                  AND s.variant IS NOT DISTINCT FROM d.variant
                  AND s.span_start = d.subphrase_start AND s.span_end = d.subphrase_end
             JOIN '{scores}.parquet' p ON p.sentence_id = d.sentence_id AND p.method = d.method
                  AND p.variant IS NOT DISTINCT FROM d.variant
                  AND p.span_start = d.phrase_start AND p.span_end = d.phrase_end"
        ),
    );
    assert!(score_gap < 1e-6, "{stage}: scores differ by {score_gap}");
    let stats = format!("{stage}_stats");
    let mean_gap = worst(
        output,
        &format!(
            "SELECT abs(s.mean - d.m) + abs(s.count - d.n) AS worst FROM '{stats}.parquet' s
             JOIN (SELECT method, variant, kind, avg(subphrase_score) AS m, count(*) AS n
                   FROM '{stage}.parquet' GROUP BY ALL) d
               ON s.method = d.method AND s.variant IS NOT DISTINCT FROM d.variant AND s.\"group\" = d.kind"
        ),
    );
    assert!(mean_gap < 1e-12, "{stats}: means {mean_gap}");
    let ks_gap = worst(output, &one_sided_ks_sql(stage, "subphrase_score", &stats));
    assert!(ks_gap < 1e-12, "{stats}: one-sided KS {ks_gap}");
}

/// Each neighbour's similarity is the cosine of the averaged betas (averaged here from the beta
/// table), and the neighbours are the most similar phrases of at most 4 words seen twice or more,
/// in order.
fn check_similar_phrases(output: &Path) {
    let rows = duckdb(
        output,
        "SELECT * FROM 'sst_similar_phrases.parquet' ORDER BY query, rank",
    );
    assert_eq!(rows.len(), 3 * 5, "3 queries, 5 neighbours each");
    let averaged = format!(
        "WITH e AS (SELECT array_to_string({}, ' ') AS p, generate_subscripts(beta, 1) AS i,
                                     unnest(beta) AS v, span_end - span_start AS words
                              FROM 'sst_phrase_betas_beta.parquet'),
                         m AS (SELECT p, i, avg(v) AS v, count(*) AS k, any_value(words) AS words
                               FROM e GROUP BY p, i),
                         a AS (SELECT p, list(v ORDER BY i) AS beta, any_value(k) AS k,
                                      any_value(words) AS words FROM m GROUP BY p)",
        normalized_words("phrase")
    );
    let gap = worst(
        output,
        &format!(
            "{averaged}
             SELECT greatest(abs(s.similarity - list_cosine_similarity(q.beta, n.beta)),
                             abs(s.query_occurrences - q.k), abs(s.neighbour_occurrences - n.k)) AS worst
             FROM 'sst_similar_phrases.parquet' s JOIN a q ON q.p = s.query JOIN a n ON n.p = s.neighbour"
        ),
    );
    assert!(gap < 1e-6, "similarities or occurrences differ by {gap}");
    let expected = duckdb(
        output,
        &format!(
            "{averaged},
             r AS (SELECT q.p AS query, n.p AS neighbour,
                          row_number() OVER (PARTITION BY q.p
                                             ORDER BY list_cosine_similarity(q.beta, n.beta) DESC) AS rank
                   FROM a q JOIN a n ON n.p <> q.p AND n.k >= 2 AND n.words <= 4
                   WHERE q.p IN ('good', 'bad', 'not'))
             SELECT query, neighbour FROM r WHERE rank <= 5 ORDER BY query, rank"
        ),
    );
    let pairs = |rows: &[Row]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| {
                (
                    r["query"].as_str().unwrap().to_string(),
                    r["neighbour"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(pairs(&rows), pairs(&expected));
}

/// Every level of every sentence is a partition into contiguous spans, level 0 the words, the last
/// level the whole sentence; each span's score is the scoring stage's CD score of it.
fn check_hierarchy(output: &Path) {
    let broken = count(
        output,
        "WITH h AS (SELECT *, lag(span_end, 1, 0) OVER (PARTITION BY sentence_id, level ORDER BY span_start) AS previous_end
                    FROM 'sst_hierarchy.parquet'),
              l AS (SELECT sentence_id, level, sum(span_end - span_start) AS covered,
                           bool_and(span_start = previous_end) AS contiguous, max(span_end) AS last_end
                    FROM h GROUP BY ALL)
         SELECT count(*) AS n FROM l JOIN 'sst_dev_sentences.parquet' s USING (sentence_id)
         WHERE NOT (contiguous AND covered = s.n_tokens AND last_end = s.n_tokens)",
    );
    assert_eq!(broken, 0, "levels that are not partitions");
    let sentences = count(
        output,
        "SELECT count(*) AS n FROM 'sst_dev_sentences.parquet'",
    );
    let ends = duckdb(
        output,
        "WITH last AS (SELECT sentence_id, max(level) AS level FROM 'sst_hierarchy.parquet' GROUP BY ALL)
         SELECT count(*) FILTER (h.span_start = 0 AND h.span_end = s.n_tokens AND h.component) AS whole,
                count(*) AS n
         FROM 'sst_hierarchy.parquet' h JOIN last USING (sentence_id, level)
         JOIN 'sst_dev_sentences.parquet' s USING (sentence_id)",
    );
    assert_eq!(number(&ends[0], "whole") as usize, sentences);
    assert_eq!(number(&ends[0], "n") as usize, sentences);
    let words = count(
        output,
        "SELECT count(*) AS n FROM 'sst_hierarchy.parquet'
         WHERE level = 0 AND span_end - span_start = 1 AND NOT component",
    );
    let tokens = count(
        output,
        "SELECT sum(n_tokens) AS n FROM 'sst_dev_sentences.parquet'",
    );
    assert_eq!(words, tokens);
    let gap = worst(
        output,
        "SELECT max(abs(h.score - s.score)) AS worst FROM 'sst_hierarchy.parquet' h
         JOIN 'sst_dev_span_scores.parquet' s ON s.sentence_id = h.sentence_id
              AND s.span_start = h.span_start AND s.span_end = h.span_end AND s.method = h.method
              AND s.variant IS NOT DISTINCT FROM h.variant",
    );
    assert!(gap < 1e-6, "hierarchy scores: {gap}");
}

/// Each reproduction row's number is its source table's, and the paper's column holds the paper's
/// Table 4 and Fig. 3 values.
fn check_reproduction(output: &Path) {
    let gap = worst(
        output,
        "SELECT abs(r.ours - u.pearson_r) AS worst FROM 'reproduction.parquet' r
         JOIN (SELECT *, 'sst_unigram_correlation' AS source FROM 'sst_unigram_correlation.parquet'
               UNION ALL BY NAME
               SELECT *, 'yelp_unigram_correlation' AS source FROM 'yelp_unigram_correlation.parquet') u
           ON u.source = r.source AND u.method = r.method AND u.variant IS NOT DISTINCT FROM r.variant
              AND r.metric = 'pearson_r per ' || u.unit",
    );
    assert!(gap < 1e-12, "correlations: {gap}");
    let rows = count(
        output,
        "SELECT count(*) AS n FROM 'reproduction.parquet' WHERE analysis = 'unigram_correlation'",
    );
    assert_eq!(rows, 2 * 12);
    let ks = duckdb(
        output,
        "SELECT r.method, r.variant, r.ours, r.paper, s.ks_statistic FROM 'reproduction.parquet' r
         JOIN 'sst_compositionality_stats.parquet' s ON s.method = r.method
              AND s.variant IS NOT DISTINCT FROM r.variant AND s.\"group\" = 'positive'
         WHERE r.analysis = 'compositionality' AND r.metric LIKE 'ks_statistic%'",
    );
    assert_eq!(ks.len(), 6);
    for row in &ks {
        assert_eq!(number(row, "ours"), number(row, "ks_statistic"));
        let paper = match row["method"].as_str().unwrap() {
            "cd" => 0.74,
            "gradient_x_input" => 0.61,
            "leave_one_out" => 0.58,
            "integrated_gradients" => 0.33,
            "cell_decomposition" => 0.0,
            other => panic!("{other}"),
        };
        assert_eq!(number(row, "paper"), paper);
    }
    let cd = duckdb(
        output,
        "SELECT paper FROM 'reproduction.parquet' WHERE analysis = 'unigram_correlation'
         AND dataset = 'SST' AND method = 'cd' AND metric = 'pearson_r per token'",
    );
    assert!(cd.iter().all(|r| number(r, "paper") == 0.758) && cd.len() == 2);
}

fn check_schemas(output: &Path) {
    let tables = [
        ("sst_unigram_correlation", "unigram_correlations"),
        ("sst_unigram_correlation_points", "word_points"),
        ("sst_compositionality", "compositionality"),
        ("sst_compositionality_stats", "aggregate_stats"),
        ("sst_negation", "negation_interactions"),
        ("sst_negation_reference", "interactions"),
        ("yelp_review_dissenting", "dissenting_subphrases"),
        ("sst_phrase_betas_beta", "phrase_embeddings"),
        ("sst_similar_phrases", "similar_phrases"),
        ("sst_hierarchy", "hierarchy"),
        ("reproduction", "reproduction"),
        ("bow", "coefficients"),
    ];
    for (file, table) in tables {
        assert_schema_matches(&output.join(format!("{file}.parquet")), table);
    }
}
