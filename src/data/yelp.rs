//! Yelp reviews in Zhang et al.'s polarity CSV format: `"label","text"`, no header, label 1 negative
//! and 2 positive, `""` for a quote inside a field and the two characters `\n` for a newline.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::InputError;

/// One review: its 1-based row number (the CSV line it starts on), class and tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub line: usize,
    /// 0 negative (CSV label 1), 1 positive (CSV label 2), the model's class order.
    pub label: i64,
    pub tokens: Vec<String>,
}

/// How review text becomes tokens. Both lower-case and turn Zhang's `\n` escape into a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    /// Split on whitespace only: for text that is already tokenised (Shen et al., TextFooler).
    Whitespace,
    /// Penn-Treebank-like, matching SST's tokens: split on whitespace, then split off leading and
    /// trailing punctuation and the clitics `n't 's 're 've 'll 'd 'm` ("didn't" → "did n't").
    #[default]
    Ptb,
}

/// Reading options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YelpOptions {
    pub tokenizer: Tokenizer,
    /// Keep only reviews of at most this many whitespace-separated words (after the `\n` escape
    /// becomes a space), the count the paper and the data's README use. `None` keeps all.
    pub max_tokens: Option<usize>,
}

/// Streams a CSV file row by row, calling `each` with every review that passes the filter; returns
/// the number of rows read. A defect is an error naming the file, the line and the field.
pub fn read_yelp_polarity(
    path: &Path,
    options: YelpOptions,
    mut each: impl FnMut(Review) -> Result<(), InputError>,
) -> Result<usize, InputError> {
    let mut reviews = YelpReviews::new(path, super::open(path)?, options);
    for review in &mut reviews {
        each(review?)?;
    }
    Ok(reviews.rows)
}

/// The reviews of Zhang CSV read from `reader` one row at a time, those `options` keep.
pub struct YelpReviews<R> {
    rows: usize,
    csv: CsvRows<R>,
    options: YelpOptions,
}

impl<R: BufRead> YelpReviews<R> {
    pub fn new(path: &Path, reader: R, options: YelpOptions) -> Self {
        Self {
            rows: 0,
            csv: CsvRows {
                path: path.to_path_buf(),
                reader,
                line: 0,
                buffer: Vec::new(),
            },
            options,
        }
    }

    /// The next review kept, `None` at the end of the file.
    fn next_review(&mut self) -> Result<Option<Review>, InputError> {
        while let Some((line, fields)) = self.csv.next_row()? {
            self.rows += 1;
            let path = &self.csv.path;
            let invalid =
                |field: &str, message: String| InputError::invalid(path, line, field, message);
            let [label, text] = fields.as_slice() else {
                return Err(invalid(
                    "row",
                    format!("expected 2 columns (label, text), found {}", fields.len()),
                ));
            };
            let label = match label.trim() {
                "1" => 0,
                "2" => 1,
                other => {
                    return Err(invalid(
                        "label",
                        format!("expected 1 (negative) or 2 (positive), found `{other}`"),
                    ));
                }
            };
            let text = text.replace("\\n", " ");
            if self
                .options
                .max_tokens
                .is_some_and(|max| text.split_whitespace().count() > max)
            {
                continue;
            }
            let tokens = tokenize(&text, self.options.tokenizer);
            if tokens.is_empty() {
                return Err(invalid("text", "no tokens".into()));
            }
            return Ok(Some(Review {
                line,
                label,
                tokens,
            }));
        }
        Ok(None)
    }
}

impl<R: BufRead> Iterator for YelpReviews<R> {
    type Item = Result<Review, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_review().transpose()
    }
}

/// Tokenises review text (already with `\n` escapes replaced).
pub fn tokenize(text: &str, tokenizer: Tokenizer) -> Vec<String> {
    let lower = text.to_lowercase();
    let words = lower.split_whitespace();
    match tokenizer {
        Tokenizer::Whitespace => words.map(str::to_string).collect(),
        Tokenizer::Ptb => {
            let mut tokens = Vec::new();
            for word in words {
                split_ptb_word(word, &mut tokens);
            }
            tokens
        }
    }
}

const CLITICS: [&str; 7] = ["n't", "'s", "'re", "'ve", "'ll", "'d", "'m"];

fn is_split_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | '!' | '?' | ';' | ':' | '(' | ')' | '"' | '[' | ']' | '{' | '}'
    )
}

fn split_ptb_word(word: &str, tokens: &mut Vec<String>) {
    let core_start = word
        .char_indices()
        .find(|&(_, c)| !is_split_punctuation(c))
        .map_or(word.len(), |(i, _)| i);
    for c in word[..core_start].chars() {
        tokens.push(c.to_string());
    }
    let rest = &word[core_start..];
    let core_end = rest
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_split_punctuation(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let core = &rest[..core_end];
    if !core.is_empty() {
        match CLITICS
            .iter()
            .find(|clitic| core.len() > clitic.len() && core.ends_with(*clitic))
        {
            Some(clitic) => {
                tokens.push(core[..core.len() - clitic.len()].to_string());
                tokens.push(clitic.to_string());
            }
            None => tokens.push(core.to_string()),
        }
    }
    for c in rest[core_end..].chars() {
        tokens.push(c.to_string());
    }
}

/// RFC 4180 rows: fields optionally double-quoted, `""` inside quotes, CRLF or LF line ends.
struct CsvRows<B> {
    path: PathBuf,
    reader: B,
    line: usize,
    buffer: Vec<u8>,
}

impl<B: BufRead> CsvRows<B> {
    /// The next non-empty row with the line it starts on.
    fn next_row(&mut self) -> Result<Option<(usize, Vec<String>)>, InputError> {
        loop {
            let Some(text) = self.next_line()? else {
                return Ok(None);
            };
            if text.is_empty() {
                continue;
            }
            let first_line = self.line;
            let mut fields = Vec::new();
            let mut field = String::new();
            let mut text = text;
            let mut chars: Vec<char> = text.chars().collect();
            let mut i = 0;
            let mut quoted = false;
            let mut field_was_quoted = false;
            loop {
                if i == chars.len() {
                    if quoted {
                        // A quoted field continues on the next line.
                        let Some(next) = self.next_line()? else {
                            return Err(InputError::invalid(
                                &self.path,
                                first_line,
                                format!("column {}", fields.len() + 1),
                                "quoted field not closed before the end of the file",
                            ));
                        };
                        field.push('\n');
                        text = next;
                        chars = text.chars().collect();
                        i = 0;
                        continue;
                    }
                    fields.push(std::mem::take(&mut field));
                    return Ok(Some((first_line, fields)));
                }
                let c = chars[i];
                i += 1;
                if quoted {
                    if c == '"' {
                        if chars.get(i) == Some(&'"') {
                            field.push('"');
                            i += 1;
                        } else {
                            quoted = false;
                        }
                    } else {
                        field.push(c);
                    }
                } else if c == ',' {
                    fields.push(std::mem::take(&mut field));
                    field_was_quoted = false;
                } else if c == '"' && field.is_empty() && !field_was_quoted {
                    quoted = true;
                    field_was_quoted = true;
                } else if field_was_quoted {
                    return Err(InputError::invalid(
                        &self.path,
                        self.line,
                        format!("column {}", fields.len() + 1),
                        format!("unexpected `{c}` after a closing quote"),
                    ));
                } else {
                    field.push(c);
                }
            }
        }
    }

    /// The next physical line without its line end, checked to be UTF-8.
    fn next_line(&mut self) -> Result<Option<String>, InputError> {
        self.buffer.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.buffer)
            .map_err(|source| InputError::Read {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
            self.buffer.pop();
        }
        let mut bytes = self.buffer.as_slice();
        if self.line == 1 {
            bytes = bytes.strip_prefix(super::BOM).unwrap_or(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(e) => Err(InputError::invalid(
                &self.path,
                self.line,
                "text",
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], options: YelpOptions) -> Result<Vec<Review>, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.csv");
        std::fs::write(&path, text).unwrap();
        let mut reviews = Vec::new();
        read_yelp_polarity(&path, options, |r| {
            reviews.push(r);
            Ok(())
        })?;
        Ok(reviews)
    }

    const PTB: YelpOptions = YelpOptions {
        tokenizer: Tokenizer::Ptb,
        max_tokens: None,
    };

    #[test]
    fn reads_quotes_escapes_and_line_ends() {
        let reviews = read(
            b"1,\"He said \"\"meh\"\".\\nDidn't return!\"\r\n\"2\",\"Great, really (great).\"\n2,\"two\nlines\"\n",
            PTB,
        )
        .unwrap();
        assert_eq!(reviews.len(), 3);
        assert_eq!(reviews[0].label, 0);
        assert_eq!(
            reviews[0].tokens,
            [
                "he", "said", "\"", "meh", "\"", ".", "did", "n't", "return", "!"
            ]
            .map(String::from)
        );
        assert_eq!(
            reviews[1].tokens,
            ["great", ",", "really", "(", "great", ")", "."].map(String::from)
        );
        assert_eq!((reviews[2].line, reviews[2].label), (3, 1));
        assert_eq!(reviews[2].tokens, ["two", "lines"].map(String::from));
    }

    #[test]
    fn filters_by_whitespace_words() {
        let options = YelpOptions {
            tokenizer: Tokenizer::Whitespace,
            max_tokens: Some(3),
        };
        let reviews = read(b"1,\"a b\\nc\"\n2,\"a b c d\"\n", options).unwrap();
        assert_eq!(reviews.len(), 1);
        assert_eq!(reviews[0].tokens, ["a", "b", "c"].map(String::from));
    }

    #[test]
    fn defects_name_line_and_field() {
        let cases: [(&[u8], &str); 5] = [
            (b"1,\"ok\"\n3,\"bad label\"\n", ":2: label: expected 1"),
            (b"1,\"ok\"\n2,\"a\",\"b\"\n", ":2: row: expected 2 columns"),
            (
                b"1,\"ok\"\n2\n",
                ":2: row: expected 2 columns (label, text), found 1",
            ),
            (b"1,\"ok\"\n2,\"caf\xe9\"\n", ":2: text: invalid UTF-8"),
            (
                b"1,\"never closed\n",
                ":1: column 2: quoted field not closed",
            ),
        ];
        for (text, expected) in cases {
            let message = read(text, PTB).unwrap_err().to_string();
            assert!(
                message.contains("y.csv") && message.contains(expected),
                "{message} lacks {expected}"
            );
        }
    }
}
