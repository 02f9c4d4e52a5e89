//! LSTM sentiment classifiers in the layout of the authors' `LSTMSentiment` (PyTorch `nn.LSTM`).

mod backprop;
mod classifier;
mod glove;
mod logreg;
mod lstm;
mod network;
mod occlusion;
mod path_gradients;
mod rnn;
mod rnn_backprop;
mod rnn_io;
mod safetensors_io;
mod train;
mod vocab;

pub use backprop::{Gradients, Initialisation, LstmParameters, batch_gradients};
pub use classifier::{Classifier, Occluded, Occlusion, OutputFunction, PathGradients, PathRequest};
pub use glove::WordVectors;
pub use logreg::{LogisticRegression, NgramFeatures, SparseExample, fit};
pub use lstm::{ForwardTrace, LstmClassifier};
pub use network::Network;
pub use rnn::{
    Architecture, CellKind, DirectionTrace, DirectionWeights, LayerTrace, RnnClassifier, RnnTrace,
    processing_order,
};
pub use rnn_io::architecture_of;
pub use safetensors_io::TENSOR_NAMES;
pub use train::{
    CHUNK_ROWS, Example, TrainOptions, TrainRecord, Trainable, Trained, accuracy, train,
};
pub use vocab::{Coverage, Encoded, UNKNOWN_TOKEN, Vocabulary, normalize_token};

use std::path::PathBuf;

/// Checks that a sentence is non-empty and every id is a row of an embedding of `vocab_size`.
pub fn check_token_ids(ids: &[usize], vocab_size: usize) -> Result<(), ModelError> {
    if ids.is_empty() {
        return Err(ModelError::EmptySentence);
    }
    match ids.iter().find(|&&id| id >= vocab_size) {
        Some(&id) => Err(ModelError::TokenId { id, vocab_size }),
        None => Ok(()),
    }
}

/// Why a model or vocabulary could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "{path}: tensors {} are not part of a recurrent classifier's state_dict (embed.weight; lstm.* or gru.* weight_ih, weight_hh, bias_ih, bias_hh with suffix _l<layer> or _l<layer>_reverse; hidden_to_label.weight and .bias)",
        tensors.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
    )]
    UnexpectedTensors { path: PathBuf, tensors: Vec<String> },
    #[error(
        "{path}: a {architecture}, where a one-layer unidirectional LSTM is needed (load it as a `Network`, which takes every architecture)"
    )]
    NotOneLayerLstm { path: PathBuf, architecture: String },
    #[error("{message}")]
    Architecture { message: String },
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor { path: PathBuf, tensor: String },
    #[error("{path}: tensor `{tensor}` has dtype {dtype}; expected F32 or F64")]
    Dtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },
    #[error("{path}: tensor `{tensor}` has shape {actual:?}; expected {expected}")]
    Shape {
        path: PathBuf,
        tensor: String,
        expected: String,
        actual: Vec<usize>,
    },
    #[error("{path}: tensor `{tensor}` holds a non-finite value at flat index {index}")]
    NonFinite {
        path: PathBuf,
        tensor: String,
        index: usize,
    },
    #[error("{path}: {message}")]
    Vocabulary { path: PathBuf, message: String },
    #[error("the sentence is empty")]
    EmptySentence,
    #[error("token id {id} is outside the embedding of {vocab_size} rows")]
    TokenId { id: usize, vocab_size: usize },
    #[error(
        "vocabulary {vocab_path} has {vocab_size} tokens but tensor `embed.weight` of {model_path} has {embedding_rows} rows"
    )]
    VocabularySize {
        vocab_path: PathBuf,
        model_path: PathBuf,
        vocab_size: usize,
        embedding_rows: usize,
    },
}
