//! Inputs read in bounded batches instead of whole: an input whose every reader scores it
//! sentence by sentence, and whose scores no later stage reads, is never held in memory at once
//! (`Pipeline::streamed_inputs` decides which).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::Shard;
use crate::config::Sample;
use crate::data::{Corpus, Format, InputError, Sentences, sampled, sentences};

/// Where a streamed input's sentences come from and which of them the run keeps.
#[derive(Debug, Clone)]
pub struct StreamedInput {
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    pub split: Option<String>,
    /// The token sequences of `exclude_in`, dropped (held whole: the smaller side of a split).
    pub excluded: Option<Arc<HashSet<Vec<String>>>>,
    pub sample: Option<Sample>,
    /// A shard run keeps only its shard's sentences.
    pub shard: Option<Shard>,
    /// How many sentences the checking pass kept: a later pass that finds another number means
    /// the file changed while the run read it.
    pub checked: Option<usize>,
}

impl StreamedInput {
    /// The kept sentences in file order, as corpora of at most `size` sentences each.
    pub fn batches(&self, size: usize) -> Result<Batches<'_>, InputError> {
        Ok(Batches {
            input: self,
            sentences: sentences(&self.path, self.format, self.split.as_deref())?,
            after_exclusion: 0,
            kept: 0,
            size,
        })
    }

    /// How many sentences the run keeps (one pass over the file).
    pub fn count(&self) -> Result<usize, InputError> {
        let mut count = 0;
        for batch in self.batches(BATCH_SENTENCES)? {
            count += batch?.sentences.len();
        }
        Ok(count)
    }
}

/// Sentences per batch of a streamed input: a scoring stage's checkpoint part, so that a
/// streamed stage groups sentences as a whole one does.
pub const BATCH_SENTENCES: usize = 4 * crate::attribution::SENTENCES_PER_CHUNK;

/// The iterator of [`StreamedInput::batches`].
pub struct Batches<'a> {
    input: &'a StreamedInput,
    sentences: Sentences,
    /// Sentences seen after `exclude_in`, the positions `sample` counts.
    after_exclusion: usize,
    kept: usize,
    size: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<Corpus, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.input;
        let mut batch = Corpus::empty(&input.name, &input.path, input.split.as_deref());
        while batch.sentences.len() < self.size {
            let (sentence, tree) = match self.sentences.next() {
                None => break,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(read)) => read,
            };
            if input
                .excluded
                .as_ref()
                .is_some_and(|excluded| excluded.contains(&sentence.tokens))
            {
                continue;
            }
            let position = self.after_exclusion;
            self.after_exclusion += 1;
            if input
                .sample
                .is_some_and(|sample| !sampled(position, sample.every, sample.offset))
            {
                continue;
            }
            if input.shard.is_some_and(|shard| !shard.holds(&sentence.id)) {
                continue;
            }
            batch.push(sentence, tree);
        }
        self.kept += batch.sentences.len();
        if batch.sentences.is_empty()
            && let Some(checked) = input.checked
            && checked != self.kept
        {
            let found = self.kept;
            // Reported once, however often the iterator is asked again.
            self.kept = checked;
            return Some(Err(InputError::Read {
                path: input.path.clone(),
                source: std::io::Error::other(format!(
                    "changed while the run read it: {checked} sentences when checked, {found} now"
                )),
            }));
        }
        (!batch.sentences.is_empty()).then_some(Ok(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: PathBuf, checked: Option<usize>) -> StreamedInput {
        StreamedInput {
            name: "trees".into(),
            path,
            format: Format::SstTrees,
            split: None,
            excluded: None,
            sample: Some(Sample {
                every: 2,
                offset: 1,
            }),
            shard: None,
            checked,
        }
    }

    #[test]
    fn batches_sample_and_notice_a_file_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trees.txt");
        std::fs::write(&path, "(2 a)\n(2 b)\n(2 c)\n(2 d)\n(2 e)\n").unwrap();
        let ids = |input: &StreamedInput| -> Vec<String> {
            input
                .batches(1)
                .unwrap()
                .flat_map(|b| b.unwrap().sentences)
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids(&input(path.clone(), None)), ["2", "4"]);
        assert_eq!(input(path.clone(), None).count().unwrap(), 2);
        let changed = input(path.clone(), Some(3));
        let message = changed
            .batches(4)
            .unwrap()
            .find_map(Result::err)
            .expect("the count differs")
            .to_string();
        assert!(
            message.contains("trees.txt")
                && message
                    .contains("changed while the run read it: 3 sentences when checked, 2 now"),
            "{message}"
        );
    }
}
