//! `cd-pipeline score` end to end: the Parquet it writes holds the authors' CD values, and bad
//! input exits with code 2, a message naming the problem, and no output file.

mod common;

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type};
use common::{
    FixtureCase as Case, FixtureSentence as Sentence, cd_pipeline, fixture, read_jsonl,
    read_parquet,
};

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes the small fixture's sentences as a token JSONL file.
fn write_input(dir: &Path) -> PathBuf {
    write_fixture_input(dir, "cd_reference/small")
}

/// Writes a fixture folder's sentences as a token JSONL file.
fn write_fixture_input(dir: &Path, fixture_dir: &str) -> PathBuf {
    let sentences: Vec<Sentence> = read_jsonl(&fixture(&format!("{fixture_dir}/sentences.jsonl")));
    let lines: Vec<String> = sentences
        .iter()
        .map(|s| {
            serde_json::json!({"id": format!("s{}", s.sentence), "tokens": s.tokens}).to_string()
        })
        .collect();
    let path = dir.join("sentences.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn score_writes_the_authors_cd_values_to_parquet() {
    check_cd_scores("cd_reference/small", "logit_diff");
}

/// Stacked, bidirectional LSTMs and GRUs (the architectures fixtures, an independent
/// implementation of the spec) through the command line: every span's rel and irrel.
#[test]
fn score_writes_cd_of_every_architecture_to_parquet() {
    for model in [
        "lstm_2layer",
        "bilstm",
        "bilstm_2layer",
        "gru_2layer",
        "bigru",
    ] {
        check_cd_scores(&format!("cd_architectures/{model}"), "logit_diff");
    }
    check_cd_scores("cd_architectures/gru", "logit:2");
}

/// `cd-pipeline score` of every span of a fixture folder's sentences under two conventions,
/// against its cases.
fn check_cd_scores(fixture_dir: &str, target: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = write_fixture_input(dir.path(), fixture_dir);
    let output = dir.path().join("out/scores.parquet");
    let model = fixture(&format!("{fixture_dir}/model.safetensors"));
    let vocab = fixture(&format!("{fixture_dir}/vocab.json"));
    let mut args = score_args(
        path_str(&model),
        path_str(&vocab),
        path_str(&input),
        path_str(&output),
    );
    args.extend([
        "--spans",
        "all",
        "--convention",
        "paper",
        "--convention",
        "murdoch2018",
        "--threads",
        "2",
        "--target",
        target,
    ]);
    let run = cd_pipeline(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let sentences: Vec<Sentence> = read_jsonl(&fixture(&format!("{fixture_dir}/sentences.jsonl")));
    let cases: Vec<Case> = read_jsonl(&fixture(&format!("{fixture_dir}/cases.jsonl")));
    let expected: std::collections::HashMap<(String, i32, i32), &Case> = cases
        .iter()
        .map(|c| {
            (
                (
                    format!("s{}", c.sentence),
                    c.start as i32,
                    c.stop as i32 + 1,
                ),
                c,
            )
        })
        .collect();
    let output_bias = cd_pipeline::model::RnnClassifier::<f32>::load(&model)
        .unwrap()
        .b_out()
        .to_vec();
    let (batches, metadata) = read_parquet(&output);
    assert!(metadata.contains(&("schema_version".to_string(), "2".to_string())));
    let mut rows = 0;
    for batch in &batches {
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let strings = |name: &str| column(name).as_string::<i32>().clone();
        let floats = |name: &str| column(name).as_primitive::<Float32Type>().clone();
        let positions = |name: &str| column(name).as_primitive::<Int32Type>().clone();
        let lists = |name: &str| column(name).as_list::<i32>().clone();
        let (ids, variants, phrases) = (
            strings("sentence_id"),
            strings("variant"),
            strings("phrase"),
        );
        let (methods, targets) = (strings("method"), strings("target"));
        let (starts, ends) = (positions("span_start"), positions("span_end"));
        let (scores, deltas) = (floats("score"), floats("delta"));
        let (rel, irrel) = (lists("rel"), lists("irrel"));
        for row in 0..batch.num_rows() {
            let key = (
                ids.value(row).to_string(),
                starts.value(row),
                ends.value(row),
            );
            let case = expected[&key];
            assert_eq!((methods.value(row), targets.value(row)), ("cd", target));
            let want = case.expected(variants.value(row).parse().unwrap());
            let values = |list: &arrow_array::ListArray| -> Vec<f64> {
                list.value(row)
                    .as_primitive::<Float32Type>()
                    .values()
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect()
            };
            let (got_rel, got_irrel) = (values(&rel), values(&irrel));
            assert!(common::max_abs_diff(&got_rel, &want.rel) <= 1e-5, "{key:?}");
            assert!(
                common::max_abs_diff(&got_irrel, &want.irrel) <= 1e-5,
                "{key:?}"
            );
            let score = f64::from(scores.value(row));
            let want_score = match target {
                "logit_diff" => got_rel[1] - got_rel[0],
                _ => got_rel[2],
            };
            assert!((score - want_score).abs() <= 1e-6);
            let sentence = &sentences[case.sentence];
            for class in 0..got_rel.len() {
                let logit_without_bias = sentence.logits_f32[class] - f64::from(output_bias[class]);
                assert!(
                    (got_rel[class] + got_irrel[class] - logit_without_bias).abs() <= 1e-5,
                    "{key:?}"
                );
            }
            assert!(f64::from(deltas.value(row)).abs() <= 1e-5);
            let words = &sentence.tokens[case.start..=case.stop];
            assert_eq!(phrases.value(row), words.join(" "));
            rows += 1;
        }
    }
    assert_eq!(rows, 2 * cases.len());
}

/// A line of `baselines.jsonl` (Captum's attributions; fields this test reads).
#[derive(Debug, serde::Deserialize)]
struct Captum {
    sentence: usize,
    target: String,
    ig_gausslegendre: Vec<f64>,
    ig_riemann_trapezoid: Vec<f64>,
    input_x_gradient: Vec<f64>,
    leave_one_out: Vec<f64>,
}

/// The baselines through the command line, each with the methods' syntax of `--method` and the
/// target Captum's fixture used: the word scores of the table equal Captum's.
#[test]
fn score_writes_captums_baselines_to_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let model = fixture("cd_reference/small/model.safetensors");
    let vocab = fixture("cd_reference/small/vocab.json");
    let cases: Vec<Captum> = read_jsonl(&fixture("cd_reference/small/baselines.jsonl"));
    for (target, fixture_target) in [("predicted", "pred"), ("logit_diff", "diff")] {
        let output = dir.path().join(format!("{target}.parquet"));
        let mut args = score_args(
            path_str(&model),
            path_str(&vocab),
            path_str(&input),
            path_str(&output),
        );
        args.extend([
            "--spans",
            "unigrams",
            "--target",
            target,
            "--method",
            "leave_one_out",
            "--method",
            "gradient_x_input",
            "--method",
            "integrated_gradients",
            "--method",
            "integrated_gradients:quadrature=riemann_trapezoid,steps=50",
        ]);
        let run = cd_pipeline(&args);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let (batches, _) = read_parquet(&output);
        let mut rows = 0;
        for batch in &batches {
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let (ids, methods, variants, targets) = (
                column("sentence_id"),
                column("method"),
                column("variant"),
                column("target"),
            );
            let (starts, scores, rel) = (column("span_start"), column("score"), column("rel"));
            for row in 0..batch.num_rows() {
                let sentence: usize = ids.as_string::<i32>().value(row)[1..].parse().unwrap();
                let case = cases
                    .iter()
                    .find(|c| c.sentence == sentence && c.target == fixture_target)
                    .unwrap();
                let variant = variants.as_string::<i32>();
                let want = match methods.as_string::<i32>().value(row) {
                    "leave_one_out" => &case.leave_one_out,
                    "gradient_x_input" => &case.input_x_gradient,
                    "integrated_gradients" if variant.value(row).contains("riemann_trapezoid") => {
                        &case.ig_riemann_trapezoid
                    }
                    "integrated_gradients" => &case.ig_gausslegendre,
                    other => panic!("method {other}"),
                };
                assert_eq!(targets.as_string::<i32>().value(row), target);
                assert!(rel.is_null(row));
                let word = starts.as_primitive::<Int32Type>().value(row) as usize;
                let got = f64::from(scores.as_primitive::<Float32Type>().value(row));
                assert!(
                    (got - want[word]).abs() <= 1e-5,
                    "{target} row {row}: {got} vs {}",
                    want[word]
                );
                rows += 1;
            }
        }
        let words: usize = cases
            .iter()
            .filter(|c| c.target == fixture_target)
            .map(|c| c.leave_one_out.len())
            .sum();
        assert_eq!(rows, 4 * words);
    }
}

/// `score` over `input` with the given model and vocabulary, writing `output`.
fn score_args<'a>(model: &'a str, vocab: &'a str, input: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "score", "--model", model, "--vocab", vocab, "--input", input, "--output", output,
    ]
}

fn assert_rejected(args: &[&str], output: &Path, expected: &[&str]) {
    let run = cd_pipeline(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "stderr lacks `{fragment}`: {stderr}"
        );
    }
    assert!(!output.exists(), "no output after an error");
    let leftovers: Vec<_> = std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_exits_2_with_a_precise_message_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let output = dir.path().join("scores.parquet");
    let small_model = fixture("cd_reference/small/model.safetensors");
    let small_vocab = fixture("cd_reference/small/vocab.json");
    let medium_vocab = fixture("cd_reference/medium/vocab.json");
    let (model, vocab, out) = (
        path_str(&small_model),
        path_str(&small_vocab),
        path_str(&output),
    );

    let bad_json = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad_json,
        "{\"id\": \"a\", \"tokens\": [\"good\"]}\n{\"id\": \"b\", \"tokens\": \"good\"}\n",
    )
    .unwrap();
    assert_rejected(
        &score_args(model, vocab, path_str(&bad_json), out),
        &output,
        &["bad.jsonl:2: tokens"],
    );

    let missing = dir.path().join("missing.jsonl");
    assert_rejected(
        &score_args(model, vocab, path_str(&missing), out),
        &output,
        &["missing.jsonl", "cannot read"],
    );

    assert_rejected(
        &score_args(model, path_str(&medium_vocab), path_str(&input), out),
        &output,
        &["vocabulary", "200 tokens", "embed.weight", "40 rows"],
    );

    let truncated = dir.path().join("truncated.safetensors");
    let mut bytes = std::fs::read(&small_model).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&truncated, bytes).unwrap();
    assert_rejected(
        &score_args(path_str(&truncated), vocab, path_str(&input), out),
        &output,
        &["truncated.safetensors", "not a safetensors file"],
    );

    // The output is checked before anything is read: a folder that cannot be created (exit 1),
    // named, with the model missing too.
    let unwritable = score_args(
        path_str(&missing),
        vocab,
        path_str(&input),
        "/proc/cd-pipeline-test/scores.parquet",
    );
    let run = cd_pipeline(&unwritable);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: /proc/cd-pipeline-test: cannot create the folder for /proc/cd-pipeline-test/scores.parquet: No such file or directory (os error 2)\n"),
        "{stderr}"
    );
    std::fs::create_dir(&output).unwrap();
    let run = cd_pipeline(&score_args(model, vocab, path_str(&input), out));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{out}: cannot write: is a folder")),
        "{stderr}"
    );
    std::fs::remove_dir(&output).unwrap();

    // Bad methods, targets and options exit 2 before anything is read, naming the problem.
    for (extra, message) in [
        (
            &["--convention", "bogus"][..],
            "invalid value 'bogus' for '--convention",
        ),
        (
            &["--method", "saliency"],
            "unknown method `saliency`; expected one of cd, leave_one_out",
        ),
        (
            &["--method", "integrated_gradients:stepz=3"],
            "unknown field `stepz`",
        ),
        (&["--target", "prob"], "unknown target `prob`"),
        (
            &["--threads", "0"],
            "must be at least 1 (leave --threads out to use every core)",
        ),
    ] {
        let mut bad = score_args(model, vocab, path_str(&input), out);
        bad.extend(extra);
        assert_rejected(&bad, &output, &[message]);
    }
    let mut bad = score_args(model, vocab, path_str(&input), out);
    bad.extend(["--method", "cd", "--target", "prob:1"]);
    assert_rejected(
        &bad,
        &output,
        &[
            "--method: cd: cd decomposes the logits, so its target is logit_diff, logit:K or predicted, not prob:1",
        ],
    );
    let mut bad = score_args(model, vocab, path_str(&input), out);
    bad.extend(["--method", "integrated_gradients:baseline=token:zebra"]);
    assert_rejected(&bad, &output, &["baseline: token `zebra`"]);
    let mut bad = score_args(model, vocab, path_str(&input), out);
    bad.extend(["--target", "logit:2"]);
    assert_rejected(
        &bad,
        &output,
        &["class 2 does not exist; the model has classes 0 to 1"],
    );
}

/// `--max-len` keeps the spans of at most that many tokens; unknown tokens are counted in the
/// file's metadata and the log.
#[test]
fn max_len_and_unknown_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("s.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"tokens\": [\"zebra\", \"yak\", \"zebra\", \"Zebra\"]}\n",
    )
    .unwrap();
    let output = dir.path().join("scores.parquet");
    let model = fixture("cd_reference/small/model.safetensors");
    let vocab = fixture("cd_reference/small/vocab.json");
    let mut args = score_args(
        path_str(&model),
        path_str(&vocab),
        path_str(&input),
        path_str(&output),
    );
    args.extend(["--max-len", "2"]);
    let run = cd_pipeline(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "4 of 4 tokens (100.00 %, 2 distinct) mapped to <unk>; most frequent: zebra yak"
        ),
        "{stderr}"
    );
    let (batches, metadata) = read_parquet(&output);
    assert!(metadata.contains(&("unknown_tokens".to_string(), "4".to_string())));
    let lengths: Vec<i32> = batches
        .iter()
        .flat_map(|b| {
            let (s, e) = (
                b.column_by_name("span_start").unwrap(),
                b.column_by_name("span_end").unwrap(),
            );
            (0..b.num_rows())
                .map(|r| {
                    e.as_primitive::<Int32Type>().value(r) - s.as_primitive::<Int32Type>().value(r)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // 4 unigrams and 3 bigrams of the 10 spans.
    assert_eq!(lengths.len(), 7);
    assert!(lengths.iter().all(|&l| l <= 2));
    let mut zero = score_args(
        path_str(&model),
        path_str(&vocab),
        path_str(&input),
        path_str(&output),
    );
    zero.extend(["--max-len", "0"]);
    let run = cd_pipeline(&zero);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--max-len: must be at least 1"));
}
