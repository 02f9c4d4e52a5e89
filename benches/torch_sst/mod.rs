//! The fixture the real-model benchmarks share: the PyTorch-trained SST LSTM of
//! `shared/fixtures/torch_sst`, its vocabulary, and the SST dev sentences as its token ids.

use std::path::PathBuf;

use cd_pipeline::data::read_sst_trees;
use cd_pipeline::model::{LstmClassifier, Vocabulary};

/// The model, its vocabulary and the dev sentences, from `$CD_PIPELINE_SHARED` or from `../shared`
/// beside the repository.
pub fn load() -> (LstmClassifier<f32>, Vocabulary, Vec<Vec<usize>>) {
    let shared = std::env::var_os("CD_PIPELINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let fixture = shared.join("fixtures/torch_sst");
    let model = LstmClassifier::<f32>::load(&fixture.join("model.safetensors"))
        .expect("the torch_sst fixture model (set CD_PIPELINE_SHARED)");
    let vocab = Vocabulary::load(&fixture.join("vocab.json")).expect("its vocabulary");
    let dev = read_sst_trees(&shared.join("data/sst/dev.txt"))
        .expect("SST dev trees")
        .iter()
        .map(|tree| {
            tree.tokens
                .iter()
                .map(|t| vocab.lookup(t).unwrap())
                .collect()
        })
        .collect();
    (model, vocab, dev)
}
