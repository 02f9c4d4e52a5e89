//! Replays every fuzz target's committed corpus and findings (`fuzz/corpus`, `fuzz/findings`,
//! made by `fuzz/run.sh` with AFL++), then runs each parser on generated inputs: arbitrary bytes
//! and grammar-aware mutations of the corpus (lines repeated, dropped, cut, spliced; bytes
//! flipped). The targets panic on any broken promise, so a passing case is a checked one.

use std::path::{Path, PathBuf};

use cd_pipeline::fuzz::TARGETS;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn files(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn corpus_and_findings_replay_without_panics() {
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty");
        for file in corpus
            .iter()
            .chain(&files(&fuzz_dir().join("findings").join(name)))
        {
            let bytes = std::fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name} panicked on {}", file.display());
        }
    }
}

/// One edit of a corpus file, on line or byte level.
#[derive(Debug, Clone)]
enum Edit {
    RepeatLine(usize),
    DropLine(usize),
    CutAt(usize),
    SpliceLines(usize, usize),
    SetByte(usize, u8),
    Insert(usize, Vec<u8>),
}

fn apply(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for edit in edits {
        let lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let line = |k: usize| k % lines.len();
        let at = |k: usize| {
            if bytes.is_empty() {
                0
            } else {
                k % (bytes.len() + 1)
            }
        };
        match edit {
            Edit::RepeatLine(k) => {
                let mut lines = lines.clone();
                lines.insert(line(*k), lines[line(*k)].clone());
                bytes = lines.join(&b'\n');
            }
            Edit::DropLine(k) => {
                let mut lines = lines.clone();
                lines.remove(line(*k));
                bytes = lines.join(&b'\n');
            }
            Edit::CutAt(k) => bytes.truncate(at(*k)),
            Edit::SpliceLines(a, b) => {
                let (a, b) = (&lines[line(*a)], &lines[line(*b)]);
                let mut spliced = a[..a.len() / 2].to_vec();
                spliced.extend_from_slice(&b[b.len() / 2..]);
                bytes.extend_from_slice(b"\n");
                bytes.extend_from_slice(&spliced);
            }
            Edit::SetByte(k, value) => {
                if !bytes.is_empty() {
                    let k = k % bytes.len();
                    bytes[k] = *value;
                }
            }
            Edit::Insert(k, inserted) => {
                let k = at(*k);
                bytes.splice(k..k, inserted.iter().copied());
            }
        }
    }
    bytes
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        b"(".to_vec(),
        b")".to_vec(),
        b"\"".to_vec(),
        b",".to_vec(),
        b"\r\n".to_vec(),
        b"\xEF\xBB\xBF".to_vec(),
        b"\xFF".to_vec(),
        b"{".to_vec(),
        b"[".to_vec(),
        b"\0".to_vec(),
        b"18446744073709551615".to_vec(),
        b": ".to_vec(),
        b"- ".to_vec(),
        b"&a *a".to_vec(),
    ]);
    prop_oneof![
        any::<usize>().prop_map(Edit::RepeatLine),
        any::<usize>().prop_map(Edit::DropLine),
        any::<usize>().prop_map(Edit::CutAt),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SpliceLines(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(k, v)| Edit::SetByte(k, v)),
        (
            any::<usize>(),
            prop_oneof![interesting, prop::collection::vec(any::<u8>(), 1..8)]
        )
            .prop_map(|(k, v)| Edit::Insert(k, v)),
    ]
}

/// Cases per target; `FUZZ_CASES` raises it (the closing note's million-case runs).
fn cases() -> u32 {
    std::env::var("FUZZ_CASES").map_or(2_000, |n| n.parse().expect("FUZZ_CASES is a number"))
}

#[test]
fn arbitrary_bytes_and_mutated_corpus_never_panic() {
    for (name, target) in TARGETS {
        let corpus: Vec<Vec<u8>> = files(&fuzz_dir().join("corpus").join(name))
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            (
                prop::sample::select(corpus),
                prop::collection::vec(edit(), 1..6)
            )
                .prop_map(|(seed, edits)| apply(&seed, &edits)),
        ];
        runner
            .run(&strategy, |bytes| {
                target(&bytes);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
