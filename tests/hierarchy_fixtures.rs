//! ACD's agglomeration on the fixture sentences (`cd_reference/{small,medium}`, lengths 1 to 30):
//! from the authors' own CD scores of every span (ACD's convention, float64), every level is a
//! partition of the sentence into contiguous spans, level 0 the words, the last level the whole
//! sentence; and the hierarchy our engine's scores build (one batched call per sentence) is the
//! same, level by level.

mod common;

use std::collections::{BTreeMap, HashMap};

use cd_pipeline::analysis::hierarchy::{Level, agglomerate};
use cd_pipeline::attribution::{Attribution, ContextualDecomposition, Convention, Span, Target};
use cd_pipeline::model::LstmClassifier;
use common::{FixtureCase as Case, FixtureSentence as Sentence, fixture, read_jsonl};

fn assert_partitions(levels: &[Level], len: usize, at: &str) {
    assert!(!levels.is_empty(), "{at}");
    for (k, level) in levels.iter().enumerate() {
        let mut end = 0;
        for (span, _) in &level.spans {
            assert_eq!(span.start, end, "{at} level {k}: not contiguous");
            assert!(span.end > span.start, "{at} level {k}: empty span");
            end = span.end;
        }
        assert_eq!(end, len, "{at} level {k}: does not cover the sentence");
    }
    let words: Vec<(Span, bool)> = (0..len).map(|t| (Span::new(t, t + 1), false)).collect();
    assert_eq!(levels[0].spans, words, "{at}: level 0 is the words");
    assert_eq!(
        levels.last().unwrap().spans,
        [(Span::new(0, len), true)],
        "{at}: the last level is the whole sentence"
    );
    // Components only grow: each level's components are unions of the previous level's spans.
    for pair in levels.windows(2) {
        for (span, component) in &pair[1].spans {
            assert!(
                pair[0].spans.iter().any(|(s, _)| s.start == span.start)
                    && pair[0].spans.iter().any(|(s, _)| s.end == span.end),
                "{at}: {span:?} (component {component}) splits a span of the level before"
            );
        }
    }
}

#[test]
fn hierarchies_from_the_authors_scores_are_nested_partitions_and_ours_match() {
    for model_dir in ["small", "medium"] {
        let model = LstmClassifier::<f64>::load(&fixture(&format!(
            "cd_reference/{model_dir}/model.safetensors"
        )))
        .unwrap();
        let sentences: Vec<Sentence> = read_jsonl(&fixture(&format!(
            "cd_reference/{model_dir}/sentences.jsonl"
        )));
        let cases: Vec<Case> =
            read_jsonl(&fixture(&format!("cd_reference/{model_dir}/cases.jsonl")));
        let mut authors: BTreeMap<usize, HashMap<Span, f64>> = BTreeMap::new();
        for case in &cases {
            let d = case.expected(Convention::Acd);
            // The logit difference, positive minus negative class, as `Target::LogitDiff`.
            let score = d.rel[1] - d.rel[0];
            authors
                .entry(case.sentence)
                .or_default()
                .insert(case.span(), score);
        }
        let cd = ContextualDecomposition::new(&model, Convention::Acd);
        let mut levels_seen = 0;
        for sentence in &sentences {
            let len = sentence.ids.len();
            let at = format!("{model_dir} sentence {}", sentence.sentence);
            let theirs = &authors[&sentence.sentence];
            assert_eq!(theirs.len(), len * (len + 1) / 2, "{at}: every span");
            let from_authors = agglomerate(len, |span| theirs[&span], 90.0, true);
            assert_partitions(&from_authors, len, &at);
            let spans: Vec<Span> = theirs.keys().copied().collect();
            let ours: HashMap<Span, f64> = cd
                .attribute_sentence(&sentence.ids, &spans, Target::LogitDiff)
                .unwrap()
                .into_iter()
                .map(|s| (s.span, s.score))
                .collect();
            let from_ours = agglomerate(len, |span| ours[&span], 90.0, true);
            assert_eq!(from_ours, from_authors, "{at}");
            levels_seen += from_ours.len();
        }
        assert!(
            levels_seen > 2 * sentences.len(),
            "{model_dir}: {levels_seen} levels"
        );
    }
}
