//! Sharded runs: which sentences a shard computes, and which stages split by sentence.
//!
//! A stage whose work is per sentence ([`Scope::PerSentence`]: scoring, negation, the paper's
//! per-phrase analyses) runs in every shard on the shard's sentences and writes its tables as
//! hive partitions (`<table>/shard=<i>/part-0.parquet`). A stage that needs every sentence
//! ([`Scope::AllSentences`]: training, aggregate statistics, correlations, the report) runs once:
//! before the fan-out (`--prepare`) when a per-sentence stage reads it, else in the reduce
//! (`--reduce`), over every shard's artefacts.

use std::fmt;
use std::str::FromStr;

/// Whether a stage's work splits by sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Each sentence's rows depend on that sentence (and on whole-data artefacts) only.
    PerSentence,
    /// The stage needs all sentences at once.
    AllSentences,
}

/// Shard `index` of `count` (0-based): the sentences whose id hashes to `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the sentence belongs to this shard: a hash of its id (FNV-1a, 64 bits), so that the
    /// split is the same on every machine and whatever the order of the input.
    pub fn holds(&self, sentence_id: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in sentence_id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % self.count as u64 == self.index as u64
    }

    /// The hive partition folder, `shard=<index>`.
    pub fn partition(&self) -> String {
        format!("shard={}", self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N` with 0 <= I < N.
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("`{text}`: expected I/N, shard I (from 0) of N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: usize = index.trim().parse().map_err(|_| usage())?;
        let count: usize = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(format!(
                "`{text}`: shard index must be below the shard count (0 to {})",
                count.saturating_sub(1)
            ));
        }
        Ok(Self { index, count })
    }
}

/// What part of a pipeline a run computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Every stage over every sentence.
    Whole,
    /// The whole-data stages that per-sentence stages read (training), once before the fan-out.
    Prepare,
    /// The per-sentence stages over one shard's sentences (and what they read, reused or
    /// computed).
    Shard(Shard),
    /// The whole-data stages over the artefacts of every shard.
    Reduce,
}

impl RunMode {
    pub fn name(self) -> &'static str {
        match self {
            RunMode::Whole => "whole",
            RunMode::Prepare => "prepare",
            RunMode::Shard(_) => "shard",
            RunMode::Reduce => "reduce",
        }
    }

    pub fn shard(self) -> Option<Shard> {
        match self {
            RunMode::Shard(shard) => Some(shard),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_every_id_once() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let ids: Vec<String> = (0..3000).map(|k| format!("train-{k}")).collect();
        for count in 1..5 {
            let sizes: Vec<usize> = (0..count)
                .map(|index| {
                    let shard = Shard { index, count };
                    ids.iter().filter(|id| shard.holds(id)).count()
                })
                .collect();
            assert_eq!(sizes.iter().sum::<usize>(), ids.len());
            // A hash, not a round robin, yet close to even: within 10 % of the mean.
            let mean = ids.len() / count;
            assert!(
                sizes.iter().all(|&s| s.abs_diff(mean) * 10 < mean),
                "{sizes:?}"
            );
        }
    }
}
