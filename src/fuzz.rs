//! The entry points the fuzzers drive (`fuzz/`, with `cargo afl`) and the corpus replay test
//! reruns: one per parser of outside input, each taking arbitrary bytes. An error is a normal
//! outcome; a panic, a hang or an allocation out of proportion to the bytes is a finding. Each
//! also checks what the parser promises of the values it returns.

use std::io::Cursor;
use std::path::Path;

use crate::data::{TokenJsonl, Tokenizer, YelpOptions, YelpReviews, sst_trees};
use crate::model::{Network, Vocabulary, normalize_token};
use crate::pipeline::PipelineFile;

/// A fuzz target: runs one parser on the bytes, panicking only on a finding.
pub type Target = fn(&[u8]);

/// The parsers, by the name of their fuzz target.
pub const TARGETS: [(&str, Target); 6] = [
    ("sst_trees", sst_trees_target),
    ("zhang_csv", zhang_csv_target),
    ("token_jsonl", token_jsonl_target),
    ("pipeline_yaml", pipeline_yaml_target),
    ("safetensors", safetensors_target),
    ("vocabulary_json", vocabulary_json_target),
];

/// PTB trees: a tree's nodes cover its tokens, each internal node splits its span in two.
pub fn sst_trees_target(bytes: &[u8]) {
    for tree in sst_trees(Path::new("fuzz.txt"), Cursor::new(bytes)).flatten() {
        let root = tree.root();
        assert_eq!((root.start, root.end), (0, tree.tokens.len()));
        for node in &tree.nodes {
            assert!(node.label <= 4 && node.start < node.end);
            if let [left, right] = node.children[..] {
                let (left, right) = (&tree.nodes[left], &tree.nodes[right]);
                assert_eq!(
                    (left.start, left.end, right.end),
                    (node.start, right.start, node.end)
                );
            } else {
                assert!(node.children.is_empty() && node.end == node.start + 1);
            }
        }
    }
}

/// Zhang's polarity CSV with both tokenisers: every review kept has a label and tokens.
pub fn zhang_csv_target(bytes: &[u8]) {
    for tokenizer in [Tokenizer::Ptb, Tokenizer::Whitespace] {
        let options = YelpOptions {
            tokenizer,
            max_tokens: None,
        };
        for review in YelpReviews::new(Path::new("fuzz.csv"), Cursor::new(bytes), options) {
            let Ok(review) = review else { break };
            assert!(review.label == 0 || review.label == 1);
            assert!(!review.tokens.is_empty() && review.tokens.iter().all(|t| !t.is_empty()));
        }
    }
}

/// Token JSONL: ids unique, tokens non-empty.
pub fn token_jsonl_target(bytes: &[u8]) {
    let mut ids = std::collections::HashSet::new();
    for sentence in TokenJsonl::new(Path::new("fuzz.jsonl"), Cursor::new(bytes)) {
        let Ok(sentence) = sentence else { break };
        assert!(ids.insert(sentence.id));
        assert!(!sentence.tokens.is_empty());
    }
}

/// A pipeline file and `--set` overrides: the bytes up to the first NUL are the YAML, each
/// further NUL-separated piece one override.
pub fn pipeline_yaml_target(bytes: &[u8]) {
    let mut pieces = bytes.split(|&b| b == 0);
    let yaml = pieces.next().unwrap_or_default();
    let overrides: Vec<String> = pieces
        .map(|piece| String::from_utf8_lossy(piece).into_owned())
        .collect();
    let _ = PipelineFile::from_yaml(Path::new("fuzz.yaml"), yaml, &overrides);
}

/// A safetensors model of any architecture: one that loads runs on a sentence of its vocabulary.
pub fn safetensors_target(bytes: &[u8]) {
    if let Ok(model) = Network::<f32>::from_safetensors(Path::new("fuzz.safetensors"), bytes) {
        let sentence: Vec<usize> = (0..3).map(|k| k % model.vocab_size()).collect();
        let logits = model.logits(&sentence).expect("ids within the vocabulary");
        assert_eq!(logits.len(), model.num_classes());
    }
}

/// A vocabulary: every token already in normal form is found at its own row.
pub fn vocabulary_json_target(bytes: &[u8]) {
    if let Ok(vocab) = Vocabulary::from_json(Path::new("fuzz.json"), bytes) {
        for row in 0..vocab.len() {
            let token = vocab.token(row).expect("a row of the vocabulary");
            if normalize_token(token) == token {
                assert_eq!(vocab.find(token), Some(row));
            }
        }
    }
}
