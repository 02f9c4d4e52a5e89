//! The Yelp reader against the real files of `../shared/data/yelp`: row counts, label splits and
//! the ≤ 40-word counts that the data's README publishes.

mod common;

use cd_pipeline::data::{Tokenizer, YelpOptions, read_yelp_polarity};

/// (rows, negative, positive) read from a file with an optional word limit.
fn counts(file: &str, max_tokens: Option<usize>, tokenizer: Tokenizer) -> (usize, usize, usize) {
    let path = common::shared_dir().join("data/yelp").join(file);
    let (mut negative, mut positive) = (0, 0);
    let rows = read_yelp_polarity(
        &path,
        YelpOptions {
            tokenizer,
            max_tokens,
        },
        |review| {
            assert!(!review.tokens.is_empty());
            match review.label {
                0 => negative += 1,
                _ => positive += 1,
            }
            Ok(())
        },
    )
    .unwrap();
    (rows, negative, positive)
}

#[test]
fn yelp_files_have_the_published_counts() {
    // (file, rows, negative, positive, negative <= 40 words, positive <= 40 words)
    let expected = [
        ("zhang_polarity_train_first200.csv", 200, 131, 69, 16, 10),
        ("zhang_polarity_test_first20.csv", 20, 12, 8, 2, 2),
        (
            "textfooler_yelp_polarity_test1000.csv",
            1000,
            518,
            482,
            55,
            82,
        ),
        (
            "shen2017_yelp_sentences_dev.csv",
            63_483,
            25_278,
            38_205,
            25_278,
            38_205,
        ),
    ];
    for (file, rows, negative, positive, short_negative, short_positive) in expected {
        assert_eq!(
            counts(file, None, Tokenizer::Ptb),
            (rows, negative, positive),
            "{file}"
        );
        assert_eq!(
            counts(file, Some(40), Tokenizer::Whitespace),
            (rows, short_negative, short_positive),
            "{file} <= 40 words"
        );
    }
}

#[test]
fn ptb_tokens_match_sst_spelling() {
    let path = common::shared_dir().join("data/yelp/zhang_polarity_train_first200.csv");
    let mut first = None;
    read_yelp_polarity(
        &path,
        YelpOptions {
            tokenizer: Tokenizer::Ptb,
            max_tokens: None,
        },
        |review| {
            first.get_or_insert(review.tokens);
            Ok(())
        },
    )
    .unwrap();
    // "Unfortunately, the frustration of being Dr. Goldberg's patient is a repeat of the
    // experience I've had ..." (row 1 of Zhang's train.csv).
    let tokens = first.unwrap();
    assert_eq!(
        tokens[..12],
        [
            "unfortunately",
            ",",
            "the",
            "frustration",
            "of",
            "being",
            "dr",
            ".",
            "goldberg",
            "'s",
            "patient",
            "is"
        ]
    );
    assert_eq!(tokens[17..20], ["i", "'ve", "had"]);
}
