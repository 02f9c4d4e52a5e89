//! Inputs read in bounded batches instead of whole: an input whose every reader scores it
//! sentence by sentence, and whose scores no later stage reads, is never held in memory at once
//! (`Pipeline::streamed_inputs` decides which).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::Shard;
use crate::config::Sample;
use crate::data::{Corpus, Format, InputError, Sentences, sentences};

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
}

impl StreamedInput {
    /// The kept sentences in file order, as corpora of at most `size` sentences each.
    pub fn batches(&self, size: usize) -> Result<Batches<'_>, InputError> {
        Ok(Batches {
            input: self,
            sentences: sentences(&self.path, self.format, self.split.as_deref())?,
            after_exclusion: 0,
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
                .is_some_and(|sample| position % sample.every != sample.offset)
            {
                continue;
            }
            if input.shard.is_some_and(|shard| !shard.holds(&sentence.id)) {
                continue;
            }
            batch.push(sentence, tree);
        }
        (!batch.sentences.is_empty()).then_some(Ok(batch))
    }
}
