//! Pipelines from the command line on small files: every stage kind and input format runs, and bad
//! pipelines and bad data exit with code 2, name the file and line (or the key, or the tensor), and
//! leave no output file behind.

mod common;

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type};
use cd_pipeline::model::{Architecture, CellKind, LstmClassifier, RnnClassifier};
use common::{assert_schema_matches, cd_pipeline, read_parquet};

const VOCAB: [&str; 6] = ["<unk>", "it", "good", "not", "bad", "film"];

/// A folder with a small model, its vocabulary, good SST trees and good Yelp reviews.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = LstmClassifier::<f32>::seeded_random(VOCAB.len(), 8, 6, 2, 3);
        model.save(&dir.path().join("model.safetensors")).unwrap();
        std::fs::write(
            dir.path().join("vocab.json"),
            serde_json::to_string(&VOCAB).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("trees.txt"),
            "(3 (2 It) (4 good))\n(1 (2 (2 It) (2 's)) (1 (2 not) (3 good)))\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("reviews.csv"),
            "\"2\",\"Good film.\"\n\"1\",\"Not good, bad.\"\n",
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), contents).unwrap();
    }

    /// A pipeline over `trees.txt` and `reviews.csv` with every stage kind.
    fn pipeline(&self) -> String {
        "name: errors\n\
         data_dir: .\n\
         output_dir: out\n\
         inputs:\n\
         \x20 trees:\n\
         \x20   format: sst_trees\n\
         \x20   path: trees.txt\n\
         \x20 reviews:\n\
         \x20   format: yelp_polarity\n\
         \x20   path: reviews.csv\n\
         \x20   max_tokens: 40\n\
         models:\n\
         \x20 lstm:\n\
         \x20   weights: model.safetensors\n\
         \x20   vocab: vocab.json\n\
         stages:\n\
         \x20 - name: scores\n\
         \x20   kind: cd_score\n\
         \x20   input: trees\n\
         \x20   model: lstm\n\
         \x20   spans: constituents\n\
         \x20 - name: review_scores\n\
         \x20   kind: cd_score\n\
         \x20   input: reviews\n\
         \x20   model: lstm\n\
         \x20   spans: unigrams\n\
         \x20 - name: negations\n\
         \x20   kind: negation\n\
         \x20   input: trees\n\
         \x20   scores: scores\n\
         \x20   max_words: 10\n\
         \x20 - name: stats\n\
         \x20   kind: aggregate\n\
         \x20   input: negations\n\
         \x20   compare: [positive, negative]\n\
         \x20 - name: negation_phrase_scores\n\
         \x20   kind: cd_score\n\
         \x20   input: trees\n\
         \x20   model: lstm\n\
         \x20   spans: {phrases: negations}\n"
            .to_string()
    }

    /// Runs `cd-pipeline run` on `yaml` (plus `--set` overrides) and checks the rejection.
    fn assert_rejected(&self, yaml: &str, sets: &[&str], expected: &[&str]) {
        self.write("pipeline.yaml", yaml);
        let pipeline = self.path("pipeline.yaml");
        let mut args = vec!["run", pipeline.to_str().unwrap()];
        for set in sets {
            args.extend(["--set", set]);
        }
        let run = cd_pipeline(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        for fragment in expected {
            assert!(
                stderr.contains(fragment),
                "stderr lacks `{fragment}`:\n{stderr}"
            );
        }
        assert_no_output(&self.path("out"));
    }
}

fn assert_no_output(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        let files: Vec<_> = entries.map(|e| e.unwrap().file_name()).collect();
        assert!(
            files.is_empty(),
            "files left in {}: {files:?}",
            dir.display()
        );
    }
}

#[test]
fn the_good_pipeline_runs() {
    let ws = Workspace::new();
    ws.write("pipeline.yaml", ws.pipeline());
    let run = cd_pipeline(&["run", ws.path("pipeline.yaml").to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for table in [
        "trees_sentences",
        "trees_constituents",
        "reviews_sentences",
        "scores",
        "review_scores",
        "negations",
        "stats",
        "negation_phrase_scores",
    ] {
        assert!(
            ws.path(&format!("out/{table}.parquet")).is_file(),
            "{table}"
        );
    }
    // What the vocabulary (<unk> it good not bad film) made of each input, logged and tabled:
    // the trees' `'s`, the reviews' punctuation.
    let stderr = String::from_utf8_lossy(&run.stderr);
    for line in [
        "input trees with the vocabulary of model lstm: 1 of 6 tokens (16.67 %, 1 distinct) mapped to <unk>; most frequent: 's",
        "input reviews with the vocabulary of model lstm: 3 of 8 tokens (37.50 %, 2 distinct) mapped to <unk>; most frequent: . ,",
    ] {
        assert!(stderr.contains(line), "{stderr}");
    }
    let coverage = ws.path("out/vocabulary_coverage.parquet");
    assert_schema_matches(&coverage, "vocabulary_coverage");
    let (batches, _) = read_parquet(&coverage);
    let rows: Vec<(String, i64, i64, i64)> = (0..batches[0].num_rows())
        .map(|r| {
            let column = |name: &str| batches[0].column_by_name(name).unwrap().clone();
            let int = |name: &str| {
                column(name)
                    .as_primitive::<arrow_array::types::Int64Type>()
                    .value(r)
            };
            (
                column("dataset").as_string::<i32>().value(r).to_string(),
                int("tokens"),
                int("unknown_tokens"),
                int("unknown_types"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("reviews".to_string(), 8, 3, 2),
            ("trees".to_string(), 6, 1, 1)
        ]
    );

    // "It 's not good": one negative negation, "not good" = [2, 4) with children [2, 3) and
    // [3, 4). The last stage scores these phrases again, in the same sentence.
    let spans_and_scores = |table: &str| -> Vec<(i32, i32, f32)> {
        let (batches, _) = read_parquet(&ws.path(&format!("out/{table}.parquet")));
        let mut rows = Vec::new();
        for batch in &batches {
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let ids = column("sentence_id");
            let (start, end, score) = (column("span_start"), column("span_end"), column("score"));
            for row in 0..batch.num_rows() {
                if ids.as_string::<i32>().value(row) == "2" {
                    rows.push((
                        start.as_primitive::<Int32Type>().value(row),
                        end.as_primitive::<Int32Type>().value(row),
                        score.as_primitive::<Float32Type>().value(row),
                    ));
                }
            }
        }
        rows
    };
    let phrases = spans_and_scores("negation_phrase_scores");
    assert_eq!(
        phrases.iter().map(|&(s, e, _)| (s, e)).collect::<Vec<_>>(),
        [(2, 3), (2, 4), (3, 4)]
    );
    let constituents = spans_and_scores("scores");
    for (start, end, score) in phrases {
        let (_, _, expected) = constituents
            .iter()
            .find(|&&(s, e, _)| (s, e) == (start, end))
            .unwrap();
        assert!(
            (score - expected).abs() < 1e-6,
            "[{start}, {end}): {score} vs {expected}"
        );
    }
}

#[test]
fn bad_trees_name_file_line_and_column() {
    let ws = Workspace::new();
    ws.write("trees.txt", "(3 (2 It) (4 good))\n(3 (2 It) (4 good)\n");
    ws.assert_rejected(
        &ws.pipeline(),
        &[],
        &["trees.txt:2: tree: column 19: expected `)`"],
    );
    ws.write("trees.txt", "(7 (2 It) (4 good))\n");
    ws.assert_rejected(
        &ws.pipeline(),
        &[],
        &["trees.txt:1: tree: column 2: expected a label 0-4"],
    );
    ws.write(
        "trees.txt",
        b"(3 (2 It) (4 good))\n(3 (2 caf\xe9) (4 good))\n",
    );
    ws.assert_rejected(&ws.pipeline(), &[], &["trees.txt:2: tree: invalid UTF-8"]);
}

#[test]
fn bad_csv_rows_name_file_line_and_field() {
    let ws = Workspace::new();
    ws.write("reviews.csv", "\"2\",\"Good film.\"\n\"3\",\"Not good.\"\n");
    ws.assert_rejected(
        &ws.pipeline(),
        &[],
        &["reviews.csv:2: label: expected 1 (negative) or 2 (positive), found `3`"],
    );
    ws.write(
        "reviews.csv",
        "\"2\",\"Good film.\"\n\"1\",\"Not good.\",\"extra\"\n",
    );
    ws.assert_rejected(
        &ws.pipeline(),
        &[],
        &["reviews.csv:2: row: expected 2 columns (label, text), found 3"],
    );
    ws.write(
        "reviews.csv",
        b"\"2\",\"Good film.\"\n\"1\",\"Not \xff good.\"\n",
    );
    ws.assert_rejected(&ws.pipeline(), &[], &["reviews.csv:2: text: invalid UTF-8"]);
}

#[test]
fn yaml_errors_name_the_key_with_line_and_column() {
    let ws = Workspace::new();
    let yaml = ws.pipeline().replace("spans: unigrams", "spanz: unigrams");
    ws.assert_rejected(&yaml, &[], &["pipeline.yaml:26:5: unknown field `spanz`"]);
    let yaml = ws.pipeline().replace("max_words: 10", "max_words: ten");
    ws.assert_rejected(&yaml, &[], &["pipeline.yaml:31:16: `max_words`: "]);
    let yaml = ws.pipeline().replace("kind: aggregate", "kind: aggregat");
    ws.assert_rejected(
        &yaml,
        &[],
        &["pipeline.yaml:33:11: `kind`: unknown variant `aggregat`"],
    );
    let yaml = ws
        .pipeline()
        .replace("output_dir: out", "output_dir: out\nthreads: 2");
    ws.assert_rejected(&yaml, &[], &["pipeline.yaml:4:1: unknown field `threads`"]);
    let yaml = ws.pipeline().replace("scores: scores", "scores: score");
    ws.assert_rejected(
        &yaml,
        &[],
        &["stages.negations.scores: no earlier stage named `score`"],
    );
    // A reference to an earlier stage that provides something else.
    ws.assert_rejected(
        &ws.pipeline(),
        &["stages.negations.scores=review_scores"],
        &["stages.negations.scores: stage `review_scores` provides scores of another input than `trees`"],
    );
    ws.assert_rejected(
        &ws.pipeline(),
        &["stages.negation_phrase_scores.spans={phrases: stats}"],
        &["stages.negation_phrase_scores.spans.phrases: stage `stats` provides no phrases"],
    );
    ws.assert_rejected(
        &ws.pipeline(),
        &["stages.stats.name=trees_sentences"],
        &["stages: two tables would be written to trees_sentences.parquet"],
    );
    ws.assert_rejected(
        &ws.pipeline(),
        &["stages.negations.max_words=[1]"],
        &["--set stages.negations.max_words=[1]: "],
    );
    ws.assert_rejected(
        &ws.pipeline(),
        &["stages.nope.max_words=3"],
        &["`stages` has no item named or numbered `nope`"],
    );
}

#[test]
fn missing_files_and_mismatched_models_are_named() {
    let ws = Workspace::new();
    // A missing file names the line that gave its path (or the override), the key (so the input
    // or model) and the path, once.
    let missing = ws.path("missing.txt");
    let yaml = ws
        .pipeline()
        .replace("path: trees.txt", "path: missing.txt");
    ws.assert_rejected(
        &yaml,
        &[],
        &[&format!(
            "pipeline.yaml:7:11: inputs.trees.path: no such file: {}\n",
            missing.display()
        )],
    );
    ws.assert_rejected(
        &ws.pipeline(),
        &["inputs.trees.path=missing.txt"],
        &[&format!(
            "error: --set inputs.trees.path=missing.txt: inputs.trees.path: no such file: {}\n",
            missing.display()
        )],
    );
    let yaml = ws
        .pipeline()
        .replace("weights: model.safetensors", "weights: gone.safetensors");
    ws.assert_rejected(
        &yaml,
        &[],
        &["pipeline.yaml:14:14: models.lstm.weights: no such file: "],
    );
    ws.write("vocab.json", serde_json::to_string(&VOCAB[..5]).unwrap());
    ws.assert_rejected(
        &ws.pipeline(),
        &[],
        &[
            "vocab.json has 5 tokens but tensor `embed.weight` of",
            "has 6 rows",
        ],
    );
    ws.write("vocab.json", serde_json::to_string(&VOCAB).unwrap());
    ws.write("model.safetensors", b"not a model");
    ws.assert_rejected(
        &ws.pipeline(),
        &[],
        &["model.safetensors: not a safetensors file"],
    );
}

#[test]
fn validate_prints_the_plan_and_writes_nothing() {
    let ws = Workspace::new();
    ws.write("pipeline.yaml", ws.pipeline());
    let run = cd_pipeline(&["validate", ws.path("pipeline.yaml").to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for fragment in [
        "1. scores: score: constituents of trees with model lstm by cd (paper) of logit_diff",
        "4. stats: aggregate: interaction of negations",
        "(vocabulary 6, embedding 8, hidden 6, classes 2)",
        "out/negations.parquet",
    ] {
        assert!(
            stdout.contains(fragment),
            "plan lacks `{fragment}`:\n{stdout}"
        );
    }
    assert_no_output(&ws.path("out"));
    let version = cd_pipeline(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cd-pipeline 0."));
}

#[test]
fn a_training_stage_reuses_its_cached_model() {
    let ws = Workspace::new();
    ws.write(
        "pipeline.yaml",
        "name: training\n\
         output_dir: out\n\
         model_cache: cache\n\
         inputs:\n\
         \x20 trees: {format: sst_trees, path: trees.txt}\n\
         stages:\n\
         \x20 - name: lstm\n\
         \x20   kind: train_lstm\n\
         \x20   train: trees\n\
         \x20   dev: trees\n\
         \x20   hidden: 4\n\
         \x20   epochs: 2\n\
         \x20   eval_every: 1\n\
         \x20 - name: scores\n\
         \x20   kind: cd_score\n\
         \x20   input: trees\n\
         \x20   model: lstm\n\
         \x20 - name: bow\n\
         \x20   kind: train_logreg\n\
         \x20   train: trees\n\
         \x20   dev: trees\n",
    );
    let pipeline = ws.path("pipeline.yaml");
    let run = |sets: &[&str]| {
        let mut args = vec!["run", pipeline.to_str().unwrap()];
        for set in sets {
            args.extend(["--set", set]);
        }
        let run = cd_pipeline(&args);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let (batches, _) = read_parquet(&ws.path("out/lstm_eval.parquet"));
        // Each run trains or reuses through the model cache, not the output folder's stage store.
        std::fs::remove_dir_all(ws.path("out/.cd-pipeline")).unwrap();
        let reused = batches[0]
            .column_by_name("reused")
            .unwrap()
            .as_boolean()
            .value(0);
        let folders: Vec<PathBuf> = std::fs::read_dir(ws.path("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        (reused, folders)
    };
    let validate = || {
        let run = cd_pipeline(&["validate", pipeline.to_str().unwrap()]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    let plan = validate();
    assert!(
        plan.contains("lstm: trained by stage lstm, not in the model cache: will be trained ("),
        "{plan}"
    );
    let (reused, folders) = run(&[]);
    assert!(!reused);
    assert_eq!(folders.len(), 1);
    let plan = validate();
    assert!(
        plan.contains(&format!(
            "lstm: trained by stage lstm, in the model cache: will be reused ({})",
            folders[0].display()
        )),
        "{plan}"
    );
    // The run's own copy of the model is the cached one.
    assert_eq!(
        std::fs::read(ws.path("out/lstm_model.safetensors")).unwrap(),
        std::fs::read(folders[0].join("model.safetensors")).unwrap()
    );
    assert_schema_matches(&ws.path("out/bow.parquet"), "coefficients");
    assert_schema_matches(&ws.path("out/bow_eval.parquet"), "model_eval");
    let model = folders[0].join("model.safetensors");
    let trained = std::fs::read(&model).unwrap();
    assert!(ws.path("out/scores.parquet").is_file());

    let (reused, again) = run(&[]);
    assert!(reused);
    assert_eq!(again, folders);
    assert_eq!(std::fs::read(&model).unwrap(), trained);

    // Another seed is another model.
    let (reused, folders) = run(&["stages.lstm.seed=2"]);
    assert!(!reused);
    assert_eq!(folders.len(), 2);

    // So is another architecture, each trained, cached and reused under its own key; the trained
    // file holds the architecture its options name.
    for (sets, architecture) in [
        (vec!["stages.lstm.layers=2"], "2-layer LSTM"),
        (
            vec!["stages.lstm.bidirectional=true"],
            "1-layer bidirectional LSTM",
        ),
        (vec!["stages.lstm.cell=gru"], "1-layer GRU"),
    ] {
        let before = run(&[]).1.len();
        let (reused, folders) = run(&sets);
        assert!(!reused, "{sets:?}");
        assert_eq!(folders.len(), before + 1, "{sets:?}");
        let loaded =
            cd_pipeline::model::Network::<f32>::load(&ws.path("out/lstm_model.safetensors"))
                .unwrap();
        assert_eq!(loaded.architecture().to_string(), architecture);
        let (reused, again) = run(&sets);
        assert!(reused, "{sets:?}");
        assert_eq!(again.len(), folders.len());
    }
}

#[test]
fn inputs_exclude_sentences_of_another_file_then_sample() {
    let ws = Workspace::new();
    ws.write(
        "all.csv",
        "\"1\",\"bad film\"\n\"2\",\"good film\"\n\"2\",\"it good\"\n\"1\",\"not good\"\n\"2\",\"film\"\n",
    );
    ws.write("other.csv", "\"2\",\"good film\"\n\"1\",\"bad\"\n");
    let input = |offset: usize| {
        format!(
            "  part{offset}:\n    format: yelp_polarity\n    path: all.csv\n    tokenizer: whitespace\n    exclude_in: other.csv\n    sample: {{every: 2, offset: {offset}}}\n"
        )
    };
    let stage = |offset: usize| {
        format!(
            "  - name: scores{offset}\n    kind: cd_score\n    input: part{offset}\n    model: lstm\n    spans: unigrams\n"
        )
    };
    ws.write(
        "pipeline.yaml",
        format!(
            "name: parts\noutput_dir: out\ninputs:\n{}{}models:\n  lstm: {{weights: model.safetensors, vocab: vocab.json}}\nstages:\n{}{}",
            input(0),
            input(1),
            stage(0),
            stage(1)
        ),
    );
    let run = cd_pipeline(&["run", ws.path("pipeline.yaml").to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // "good film" is in the other file; of the four rows left (lines 1, 3, 4, 5), part 0 keeps
    // the first and third, part 1 the second and fourth.
    let lines = |table: &str| -> Vec<i32> {
        let (batches, _) = read_parquet(&ws.path(&format!("out/{table}.parquet")));
        batches
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name("line").unwrap().clone();
                (0..b.num_rows())
                    .map(move |r| column.as_primitive::<Int32Type>().value(r))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(lines("part0_sentences"), [1, 4]);
    assert_eq!(lines("part1_sentences"), [3, 5]);
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn outputs_are_checked_before_any_work_and_published_as_one_unit() {
    let ws = Workspace::new();
    ws.write("pipeline.yaml", ws.pipeline());
    let pipeline = ws.path("pipeline.yaml");
    let pipeline = pipeline.to_str().unwrap();

    // An output folder that cannot be created fails at once (exit 1), naming the folder and the
    // table; the malformed trees are never read.
    ws.write("trees.txt", "(3 (2 It) (4 good)\n");
    let run = cd_pipeline(&["run", pipeline, "--output", "/proc/cd-pipeline-test/out"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/proc/cd-pipeline-test/out: cannot create the folder for /proc/cd-pipeline-test/out/reviews_sentences.parquet"),
        "{stderr}"
    );
    assert!(!stderr.contains("trees.txt"), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");

    // A previous run's tables stay as they are when a destination is a folder: nothing is
    // published, nothing temporary is left, and the message names the destination.
    ws.write(
        "trees.txt",
        "(3 (2 It) (4 good))\n(1 (2 (2 It) (2 's)) (1 (2 not) (3 good)))\n",
    );
    let run = cd_pipeline(&["run", pipeline]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = ws.path("out");
    std::fs::remove_file(out.join("stats.parquet")).unwrap();
    std::fs::create_dir(out.join("stats.parquet")).unwrap();
    let before = snapshot(&out);
    let run = cd_pipeline(&["run", pipeline, "--set", "stages.negations.max_words=5"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: cannot write: is a folder, not a file",
            out.join("stats.parquet").display()
        )),
        "{stderr}"
    );
    assert_eq!(snapshot(&out), before);
}

/// An empty input is a warning, not an error: its tables are empty. `--threads 0` is refused.
#[test]
fn empty_inputs_are_warned_about_and_zero_threads_refused() {
    let ws = Workspace::new();
    ws.write("pipeline.yaml", ws.pipeline());
    ws.write("trees.txt", "\n");
    let pipeline = ws.path("pipeline.yaml");
    let run = cd_pipeline(&["run", pipeline.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains("input trees has no sentences")
            && stderr.contains("its stages produce empty tables"),
        "{stderr}"
    );
    let (batches, _) = read_parquet(&ws.path("out/scores.parquet"));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

    let run = cd_pipeline(&["run", pipeline.to_str().unwrap(), "--threads", "0"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&run.stderr)
            .contains("must be at least 1 (leave --threads out to use every core)")
    );
}

/// A stacked, bidirectional model (written by the tool in the spec's layout) and a GRU run the
/// whole pipeline: CD of constituents, negations, statistics.
#[test]
fn stacked_bidirectional_and_gru_models_run_the_pipeline() {
    for architecture in [
        Architecture {
            cell: CellKind::Lstm,
            layers: 2,
            bidirectional: true,
        },
        Architecture {
            cell: CellKind::Gru,
            layers: 1,
            bidirectional: false,
        },
    ] {
        let ws = Workspace::new();
        RnnClassifier::<f32>::seeded_random(architecture, VOCAB.len(), 8, 6, 2, 3)
            .save(&ws.path("model.safetensors"))
            .unwrap();
        ws.write("pipeline.yaml", ws.pipeline());
        let run = cd_pipeline(&["run", ws.path("pipeline.yaml").to_str().unwrap()]);
        assert!(
            run.status.success(),
            "{architecture}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        for table in ["scores", "negations", "stats", "negation_phrase_scores"] {
            assert!(
                ws.path(&format!("out/{table}.parquet")).is_file(),
                "{table}"
            );
        }
    }
}
