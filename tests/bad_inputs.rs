//! The README's bad-input table, row by row: every malformed (or merely unusual) input of every
//! kind, run through the binary, with its exit code, its message (file, line, field) and what
//! it leaves behind: nothing in the output folder but the stage store when it fails; the right
//! tables when the case is valid input. The table in the README must list exactly these cases,
//! with these codes and messages.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cd_pipeline::model::LstmClassifier;
use common::read_parquet;

const VOCAB: [&str; 6] = ["<unk>", "good", "bad", "film", ".", "not"];

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        LstmClassifier::<f32>::seeded_random(VOCAB.len(), 4, 4, 2, 5)
            .save(&dir.path().join("model.safetensors"))
            .unwrap();
        std::fs::write(
            dir.path().join("vocab.json"),
            serde_json::to_string(&VOCAB).unwrap(),
        )
        .unwrap();
        for (file, input) in [
            ("sst.yaml", "{format: sst_trees, path: trees.txt}"),
            ("zhang.yaml", "{format: yelp_polarity, path: reviews.csv}"),
        ] {
            let yaml = format!(
                "name: bad_input\ndata_dir: .\noutput_dir: out\ninputs:\n  text: {input}\n\
                 models:\n  m: {{weights: model.safetensors, vocab: vocab.json}}\n\
                 stages:\n  - {{name: scores, kind: score, input: text, model: m, spans: sentence}}\n"
            );
            std::fs::write(dir.path().join(file), yaml).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.path(name).display().to_string()
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `score` of token JSONL, every sentence as one span.
    fn score(&self, input: &str, model: &str, vocab: &str) -> Vec<String> {
        vec![
            "score".into(),
            "--model".into(),
            self.arg(model),
            "--vocab".into(),
            self.arg(vocab),
            "--input".into(),
            self.arg(input),
            "--output".into(),
            self.arg("out/scores.parquet"),
            "--spans".into(),
            "sentence".into(),
        ]
    }
}

fn sst(ws: &Workspace, trees: &[u8]) -> Vec<String> {
    ws.write("trees.txt", trees);
    vec!["run".into(), ws.arg("sst.yaml")]
}

fn zhang(ws: &Workspace, rows: &[u8]) -> Vec<String> {
    ws.write("reviews.csv", rows);
    vec!["run".into(), ws.arg("zhang.yaml")]
}

fn jsonl(ws: &Workspace, lines: &[u8]) -> Vec<String> {
    ws.write("s.jsonl", lines);
    ws.score("s.jsonl", "model.safetensors", "vocab.json")
}

fn yaml(ws: &Workspace, text: &[u8]) -> Vec<String> {
    ws.write("trees.txt", b"(3 (2 good) (2 film))\n");
    ws.write("p.yaml", text);
    vec!["run".into(), ws.arg("p.yaml")]
}

fn model(ws: &Workspace, bytes: &[u8]) -> Vec<String> {
    ws.write("s.jsonl", br#"{"id": "a", "tokens": ["good", "film"]}"#);
    ws.write("bad.safetensors", bytes);
    ws.score("s.jsonl", "bad.safetensors", "vocab.json")
}

fn vocabulary(ws: &Workspace, bytes: &[u8]) -> Vec<String> {
    ws.write("s.jsonl", br#"{"id": "a", "tokens": ["good", "film"]}"#);
    ws.write("bad.json", bytes);
    ws.score("s.jsonl", "model.safetensors", "bad.json")
}

/// The README's SST pipeline file, as text for `yaml` cases.
fn pipeline_text(ws: &Workspace) -> Vec<u8> {
    std::fs::read(ws.path("sst.yaml")).unwrap()
}

/// A model whose tensors are all 0.1 but `poisoned`, which holds `value` at flat index 3.
fn model_bytes(poisoned: &str, value: f32) -> Vec<u8> {
    let (v, e, h, c) = (VOCAB.len(), 4, 4, 2);
    let shapes: [(&str, Vec<usize>); 7] = [
        ("embed.weight", vec![v, e]),
        ("lstm.weight_ih_l0", vec![4 * h, e]),
        ("lstm.weight_hh_l0", vec![4 * h, h]),
        ("lstm.bias_ih_l0", vec![4 * h]),
        ("lstm.bias_hh_l0", vec![4 * h]),
        ("hidden_to_label.weight", vec![c, h]),
        ("hidden_to_label.bias", vec![c]),
    ];
    let data: Vec<(&str, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let mut values = vec![0.1f32; shape.iter().product()];
            if name == poisoned {
                values[3] = value;
            }
            (
                name,
                shape,
                values.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (*name, view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// A right-branching tree of `n` tokens, as deep as it is long.
fn deep_tree(n: usize) -> Vec<u8> {
    let mut tree = String::new();
    for _ in 0..n - 1 {
        tree += "(2 (2 good) ";
    }
    tree += "(2 film)";
    tree += &")".repeat(n - 1);
    tree.into_bytes()
}

/// A balanced tree of `n` tokens.
fn balanced_tree(n: usize) -> Vec<u8> {
    fn write(n: usize, out: &mut String) {
        if n == 1 {
            out.push_str("(2 good)");
        } else {
            out.push_str("(2 ");
            write(n / 2, out);
            out.push(' ');
            write(n - n / 2, out);
            out.push(')');
        }
    }
    let mut tree = String::new();
    write(n, &mut tree);
    tree.into_bytes()
}

fn long_review(n: usize) -> Vec<u8> {
    format!("\"2\",\"{}\"\n", vec!["good"; n].join(" ")).into_bytes()
}

fn long_jsonl(n: usize) -> Vec<u8> {
    serde_json::json!({"id": "long", "tokens": vec!["good"; n]})
        .to_string()
        .into_bytes()
}

/// The token lists of a table's `tokens` column (or its `phrase` split on spaces).
fn tokens(table: &Path) -> Vec<Vec<String>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let (batches, _) = read_parquet(table);
    let mut all = Vec::new();
    for batch in batches {
        // The scores table has each span's phrase instead.
        let Some(lists) = batch.column_by_name("tokens") else {
            let phrases = batch.column_by_name("phrase").unwrap().as_string::<i32>();
            all.extend(
                phrases
                    .iter()
                    .map(|p| p.unwrap().split(' ').map(str::to_string).collect()),
            );
            continue;
        };
        let lists = lists.as_list::<i32>();
        for k in 0..lists.len() {
            let list = lists.value(k);
            all.push(
                list.as_string::<i32>()
                    .iter()
                    .map(|t| t.unwrap().to_string())
                    .collect(),
            );
        }
    }
    all
}

fn expect_tokens(table: &str, expected: &[&[&str]]) -> impl Fn(&Workspace) {
    let table = table.to_string();
    let expected: Vec<Vec<String>> = expected
        .iter()
        .map(|s| s.iter().map(|t| t.to_string()).collect())
        .collect();
    move |ws: &Workspace| assert_eq!(tokens(&ws.path(&table)), expected, "{table}")
}

fn expect_lengths(table: &str, lengths: &[usize]) -> impl Fn(&Workspace) {
    let table = table.to_string();
    let lengths = lengths.to_vec();
    move |ws: &Workspace| {
        let got: Vec<usize> = tokens(&ws.path(&table)).iter().map(Vec::len).collect();
        assert_eq!(got, lengths, "{table}");
    }
}

type Check = Box<dyn Fn(&Workspace)>;

/// Writes a case's files and gives the command line.
type Setup = Box<dyn Fn(&Workspace) -> Vec<String>>;

/// What a refused input leaves, checked for each.
const REFUSED: &str = "nothing in the output folder";

/// One row of the README's table.
struct Case {
    input: &'static str,
    case: &'static str,
    exit: i32,
    /// What stderr must contain.
    message: &'static str,
    /// What the run leaves, as the README says it.
    result: &'static str,
    setup: Setup,
    /// For valid input: what the tables must hold.
    check: Option<Check>,
}

fn case(
    input: &'static str,
    case: &'static str,
    exit: i32,
    message: &'static str,
    setup: impl Fn(&Workspace) -> Vec<String> + 'static,
) -> Case {
    Case {
        input,
        case,
        exit,
        message,
        result: REFUSED,
        setup: Box::new(setup),
        check: None,
    }
}

fn handled(
    input: &'static str,
    name: &'static str,
    message: &'static str,
    result: &'static str,
    setup: impl Fn(&Workspace) -> Vec<String> + 'static,
    check: impl Fn(&Workspace) + 'static,
) -> Case {
    Case {
        result,
        check: Some(Box::new(check)),
        ..case(input, name, 0, message, setup)
    }
}

const SENTENCES: &str = "out/text_sentences.parquet";

fn cases() -> Vec<Case> {
    let good_film: &[&[&str]] = &[&["good", "film"]];
    vec![
        case(
            "SST trees",
            "truncated file",
            2,
            "trees.txt:2: tree: column 13: expected `(`, found the end of the line",
            |ws| sst(ws, b"(3 (2 good) (2 film))\n(3 (2 good) "),
        ),
        handled(
            "SST trees",
            "empty file",
            "input text has no sentences",
            "a warning; empty tables",
            |ws| sst(ws, b""),
            expect_lengths(SENTENCES, &[]),
        ),
        case(
            "SST trees",
            "empty sentence",
            2,
            "trees.txt:1: tree: column 4: expected a word",
            |ws| sst(ws, b"(2 )\n"),
        ),
        handled(
            "SST trees",
            "100,000 tokens, balanced",
            "wrote",
            "one sentence of 100,000 tokens, scored",
            |ws| sst(ws, &balanced_tree(100_000)),
            expect_lengths(SENTENCES, &[100_000]),
        ),
        case(
            "SST trees",
            "100,000 tokens branching one way",
            2,
            "trees.txt:1: tree: its 199999 constituents cover 5000149999 tokens in all, over the limit of 10000000",
            |ws| sst(ws, &deep_tree(100_000)),
        ),
        case(
            "SST trees",
            "invalid UTF-8",
            2,
            "trees.txt:2: tree: invalid UTF-8 at byte 9",
            |ws| sst(ws, b"(3 (2 good) (2 film))\n(3 (2 caf\xe9) (2 film))\n"),
        ),
        handled(
            "SST trees",
            "BOM",
            "wrote",
            "tokens `good film`: the BOM dropped",
            |ws| sst(ws, b"\xEF\xBB\xBF(3 (2 good) (2 film))\n"),
            expect_tokens(SENTENCES, good_film),
        ),
        handled(
            "SST trees",
            "CRLF line ends",
            "wrote",
            "tokens `good film`: no CR",
            |ws| sst(ws, b"(3 (2 good) (2 film))\r\n\r\n"),
            expect_tokens(SENTENCES, good_film),
        ),
        case(
            "Zhang CSV",
            "truncated file",
            2,
            "reviews.csv:2: column 2: quoted field not closed before the end of the file",
            |ws| zhang(ws, b"\"2\",\"good film\"\n\"1\",\"bad fi"),
        ),
        handled(
            "Zhang CSV",
            "empty file",
            "input text has no sentences",
            "a warning; empty tables",
            |ws| zhang(ws, b""),
            expect_lengths(SENTENCES, &[]),
        ),
        case(
            "Zhang CSV",
            "empty review",
            2,
            "reviews.csv:1: text: no tokens",
            |ws| zhang(ws, b"\"2\",\"  \"\n"),
        ),
        handled(
            "Zhang CSV",
            "100,000 tokens",
            "wrote",
            "one review of 100,000 tokens, scored",
            |ws| zhang(ws, &long_review(100_000)),
            expect_lengths(SENTENCES, &[100_000]),
        ),
        case(
            "Zhang CSV",
            "invalid UTF-8",
            2,
            "reviews.csv:1: text: invalid UTF-8 at byte 8",
            |ws| zhang(ws, b"\"2\",\"caf\xe9\"\n"),
        ),
        handled(
            "Zhang CSV",
            "BOM",
            "wrote",
            "tokens `good film`: the BOM dropped",
            |ws| zhang(ws, b"\xEF\xBB\xBF\"2\",\"Good film\"\n"),
            expect_tokens(SENTENCES, good_film),
        ),
        handled(
            "Zhang CSV",
            "CRLF line ends",
            "wrote",
            "tokens `good film`: no CR",
            |ws| zhang(ws, b"\"2\",\"Good film\"\r\n"),
            expect_tokens(SENTENCES, good_film),
        ),
        case(
            "token JSONL",
            "truncated file",
            2,
            "s.jsonl:2: line: invalid JSON: EOF while parsing",
            |ws| {
                jsonl(
                    ws,
                    b"{\"id\": \"a\", \"tokens\": [\"good\"]}\n{\"id\": \"b\", \"tok",
                )
            },
        ),
        handled(
            "token JSONL",
            "empty file",
            "has no sentences: the table will be empty",
            "a warning; an empty table",
            |ws| jsonl(ws, b""),
            expect_lengths("out/scores.parquet", &[]),
        ),
        case(
            "token JSONL",
            "empty sentence",
            2,
            "s.jsonl:1: tokens: expected a non-empty list of strings",
            |ws| jsonl(ws, b"{\"id\": \"a\", \"tokens\": []}\n"),
        ),
        handled(
            "token JSONL",
            "100,000 tokens",
            "wrote",
            "one sentence of 100,000 tokens, scored",
            |ws| jsonl(ws, &long_jsonl(100_000)),
            expect_lengths("out/scores.parquet", &[100_000]),
        ),
        case(
            "token JSONL",
            "label outside 0-127",
            2,
            "s.jsonl:1: label: expected a class number from 0 to 127",
            |ws| {
                jsonl(
                    ws,
                    b"{\"id\": \"a\", \"tokens\": [\"good\"], \"label\": 300}\n",
                )
            },
        ),
        case(
            "token JSONL",
            "duplicate sentence ids",
            2,
            "s.jsonl:2: id: `a` already used on line 1",
            |ws| {
                jsonl(ws, b"{\"id\": \"a\", \"tokens\": [\"good\"]}\n{\"id\": \"a\", \"tokens\": [\"bad\"]}\n")
            },
        ),
        case(
            "token JSONL",
            "invalid UTF-8",
            2,
            "s.jsonl:1: line: invalid UTF-8 at byte 27",
            |ws| jsonl(ws, b"{\"id\": \"a\", \"tokens\": [\"caf\xe9\"]}\n"),
        ),
        handled(
            "token JSONL",
            "BOM",
            "wrote",
            "tokens `good film`: the BOM dropped",
            |ws| {
                jsonl(
                    ws,
                    b"\xEF\xBB\xBF{\"id\": \"a\", \"tokens\": [\"good\", \"film\"]}\n",
                )
            },
            expect_tokens("out/scores.parquet", good_film),
        ),
        handled(
            "token JSONL",
            "CRLF line ends",
            "wrote",
            "tokens `good film`: no CR",
            |ws| jsonl(ws, b"{\"id\": \"a\", \"tokens\": [\"good\", \"film\"]}\r\n"),
            expect_tokens("out/scores.parquet", good_film),
        ),
        case(
            "pipeline YAML",
            "truncated file",
            2,
            "missing field `stages`",
            |ws| {
                let text = pipeline_text(ws);
                let cut = String::from_utf8(text).unwrap();
                let cut = &cut[..cut.find("stages:").unwrap()];
                yaml(ws, cut.as_bytes())
            },
        ),
        case(
            "pipeline YAML",
            "empty file",
            2,
            "p.yaml:1:1: unexpected end of input",
            |ws| yaml(ws, b""),
        ),
        case(
            "pipeline YAML",
            "invalid UTF-8",
            2,
            "p.yaml: cannot read: invalid UTF-8 on line 1",
            |ws| yaml(ws, b"name: caf\xe9\n"),
        ),
        handled(
            "pipeline YAML",
            "BOM",
            "wrote",
            "the run as without the BOM",
            |ws| {
                let mut text = b"\xEF\xBB\xBF".to_vec();
                text.extend(pipeline_text(ws));
                yaml(ws, &text)
            },
            expect_tokens(SENTENCES, good_film),
        ),
        handled(
            "pipeline YAML",
            "CRLF line ends",
            "wrote",
            "the run as with LF",
            |ws| {
                let text = String::from_utf8(pipeline_text(ws))
                    .unwrap()
                    .replace('\n', "\r\n");
                yaml(ws, text.as_bytes())
            },
            expect_tokens(SENTENCES, good_film),
        ),
        case(
            "safetensors model",
            "truncated file",
            2,
            "bad.safetensors: not a safetensors file",
            |ws| {
                let bytes = model_bytes("", 0.0);
                model(ws, &bytes[..bytes.len() - 10])
            },
        ),
        case(
            "safetensors model",
            "empty file",
            2,
            "bad.safetensors: not a safetensors file",
            |ws| model(ws, b""),
        ),
        case(
            "safetensors model",
            "header claiming 2^64 - 1 bytes",
            2,
            "bad.safetensors: not a safetensors file",
            |ws| {
                let mut bytes = u64::MAX.to_le_bytes().to_vec();
                bytes.extend(b"{}");
                model(ws, &bytes)
            },
        ),
        case(
            "safetensors model",
            "NaN weight",
            2,
            "bad.safetensors: tensor `lstm.weight_hh_l0` holds a non-finite value at flat index 3",
            |ws| model(ws, &model_bytes("lstm.weight_hh_l0", f32::NAN)),
        ),
        case(
            "safetensors model",
            "infinite weight",
            2,
            "bad.safetensors: tensor `embed.weight` holds a non-finite value at flat index 3",
            |ws| model(ws, &model_bytes("embed.weight", f32::INFINITY)),
        ),
        case(
            "vocabulary",
            "truncated file",
            2,
            "bad.json: expected a JSON list of strings: EOF while parsing a string at line 1 column 21",
            |ws| vocabulary(ws, br#"["<unk>", "good", "ba"#),
        ),
        case(
            "vocabulary",
            "empty file",
            2,
            "bad.json: expected a JSON list of strings: EOF while parsing a value at line 1",
            |ws| vocabulary(ws, b""),
        ),
        case(
            "vocabulary",
            "duplicate tokens",
            2,
            "bad.json: token `good` appears at index 1 and again at index 3",
            |ws| vocabulary(ws, br#"["<unk>", "good", "bad", "good", ".", "not"]"#),
        ),
        case(
            "vocabulary",
            "invalid UTF-8",
            2,
            "bad.json: expected a JSON list of strings: invalid unicode code point at line 1",
            |ws| vocabulary(ws, b"[\"<unk>\", \"caf\xe9\"]"),
        ),
        handled(
            "vocabulary",
            "BOM",
            "wrote",
            "the vocabulary as without the BOM",
            |ws| {
                let mut bytes = b"\xEF\xBB\xBF".to_vec();
                bytes.extend(serde_json::to_vec(&VOCAB).unwrap());
                vocabulary(ws, &bytes)
            },
            expect_tokens("out/scores.parquet", good_film),
        ),
    ]
}

fn run(args: &[String]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cd-pipeline"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().expect("exits, not killed"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every file under `folder`, the stage store's too when `with_store`.
fn files(folder: &Path, with_store: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if !with_store && path.file_name().is_some_and(|n| n == ".cd-pipeline") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every file under `folder` but the stage store's, relative to it.
fn visible_files(folder: &Path) -> Vec<String> {
    files(folder, false)
        .iter()
        .map(|p| p.strip_prefix(folder).unwrap().display().to_string())
        .collect()
}

/// Files whose names say they are unfinished (`.tmp`), anywhere under `folder`, the store too.
fn temporary_files(folder: &Path) -> Vec<PathBuf> {
    files(folder, true)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp"))
        .collect()
}

#[test]
fn every_bad_input_gives_its_exit_code_and_message_and_leaves_nothing_partial() {
    let mut failures = Vec::new();
    for case in cases() {
        let ws = Workspace::new();
        let args = (case.setup)(&ws);
        let (code, stderr) = run(&args);
        let name = format!("{} / {}", case.input, case.case);
        if code != case.exit || !stderr.contains(case.message) {
            failures.push(format!(
                "{name}: exit {code} (expected {}), stderr lacks `{}`:\n{stderr}",
                case.exit, case.message
            ));
            continue;
        }
        let out = ws.path("out");
        assert!(
            temporary_files(&out).is_empty(),
            "{name}: {:?}",
            temporary_files(&out)
        );
        match &case.check {
            Some(check) => check(&ws),
            // Not even the stage store: the refusal came before any result worth resuming.
            None => assert!(
                std::fs::read_dir(&out).map_or(true, |mut e| e.next().is_none()),
                "{name}: {out:?} holds {:?}",
                visible_files(&out)
            ),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A folder of its own file system (tmpfs), unmounted when dropped; `None` unless root.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, options: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .ok()?;
        status.success().then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The output folder cases need their own file systems, mounted by root (as `.ci/run` is).
#[test]
fn an_unwritable_output_folder_and_a_full_disk_fail_cleanly() {
    if !is_root() {
        eprintln!("NOT RUN: mounting a read-only and a full tmpfs needs root");
        return;
    }
    for (case, options) in output_cases().into_iter().zip(OUTPUT_MOUNTS) {
        let ws = Workspace::new();
        let args = (case.setup)(&ws);
        let mount = Mount::new(&ws.path("mnt"), options).expect("tmpfs mounts");
        let (code, stderr) = run(&args);
        let name = format!("{} / {}", case.input, case.case);
        assert_eq!(code, case.exit, "{name}: {stderr}");
        assert!(
            stderr.contains(case.message),
            "{name}: lacks `{}`: {stderr}",
            case.message
        );
        let out = ws.path("mnt/out");
        assert!(
            std::fs::read_dir(&out).map_or(true, |mut e| e.next().is_none()),
            "{name}: {out:?} holds {:?}",
            visible_files(&out)
        );
        assert!(
            temporary_files(&out).is_empty(),
            "{name}: {:?}",
            temporary_files(&out)
        );
        drop(mount);
    }
}

/// The mount options of each output case's folder `mnt`.
const OUTPUT_MOUNTS: [&str; 2] = ["ro,size=1m", "size=256k"];

fn output_cases() -> Vec<Case> {
    vec![
        case(
            "output folder",
            "read-only file system",
            1,
            "text_sentences.parquet: Read-only file system",
            |ws| {
                ws.write("trees.txt", b"(3 (2 good) (2 film))\n");
                vec![
                    "run".into(),
                    ws.arg("sst.yaml"),
                    "--output".into(),
                    ws.arg("mnt/out"),
                ]
            },
        ),
        case(
            "output folder",
            "disk full while writing",
            1,
            "No space left on device",
            |ws| {
                let trees: Vec<u8> = (0..3000)
                    .flat_map(|k| {
                        let mut tree = String::from_utf8(deep_tree(10 + k % 20)).unwrap();
                        tree.push('\n');
                        tree.into_bytes()
                    })
                    .collect();
                ws.write("trees.txt", &trees);
                let yaml = std::fs::read_to_string(ws.path("sst.yaml"))
                    .unwrap()
                    .replace("spans: sentence", "spans: all_spans");
                ws.write("sst.yaml", yaml.as_bytes());
                vec![
                    "run".into(),
                    ws.arg("sst.yaml"),
                    "--output".into(),
                    ws.arg("mnt/out"),
                ]
            },
        ),
    ]
}

/// The README's table lists exactly the tested cases, with their codes and messages.
#[test]
fn the_readme_table_is_the_tested_cases() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### Bad input")
        .nth(1)
        .expect("README has a `### Bad input` section");
    let rows: Vec<Vec<String>> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').trim().to_string())
                .collect()
        })
        .collect();
    let expected: Vec<Vec<String>> = cases()
        .into_iter()
        .chain(output_cases())
        .map(|c| {
            let outcome = if c.check.is_some() {
                "handled"
            } else {
                "refused"
            };
            vec![
                c.input.to_string(),
                c.case.to_string(),
                format!("{} ({outcome})", c.exit),
                c.message.to_string(),
                c.result.to_string(),
            ]
        })
        .collect();
    assert_eq!(rows, expected);
}
