//! A loaded classifier of any architecture: the paper's one-layer LSTM keeps its own type (its
//! CD engine, trainer and cell decomposition are specialised to it), every other architecture is
//! an [`RnnClassifier`].

use std::path::Path;

use super::rnn_io::architecture_of;
use super::{Architecture, Classifier, LstmClassifier, ModelError, RnnClassifier};
use crate::numeric::Real;

#[derive(Debug, Clone)]
pub enum Network<R: Real> {
    Lstm(Box<LstmClassifier<R>>),
    Rnn(Box<RnnClassifier<R>>),
}

impl<R: Real> Network<R> {
    /// Loads a state_dict of any architecture the spec's layout describes.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_safetensors(path, &super::safetensors_io::read_model_file(path)?)
    }

    /// [`load`](Self::load) from the file's bytes; `path` names it in errors.
    pub fn from_safetensors(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let tensors =
            safetensors::SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if architecture_of(path, &tensors.names())?.is_paper() {
            LstmClassifier::from_safetensors(path, bytes).map(Network::from)
        } else {
            RnnClassifier::from_safetensors(path, bytes).map(Network::from)
        }
    }

    pub fn architecture(&self) -> Architecture {
        match self {
            Network::Lstm(_) => Architecture::PAPER,
            Network::Rnn(m) => m.architecture(),
        }
    }

    /// What every model-agnostic method sees.
    pub fn classifier(&self) -> &dyn Classifier<R> {
        match self {
            Network::Lstm(m) => m.as_ref(),
            Network::Rnn(m) => m.as_ref(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.classifier().vocab_size()
    }

    pub fn embedding_dim(&self) -> usize {
        self.classifier().embedding_dim()
    }

    pub fn num_classes(&self) -> usize {
        self.classifier().num_classes()
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            Network::Lstm(m) => m.hidden_size(),
            Network::Rnn(m) => m.hidden_size(),
        }
    }

    /// Logits (output bias included) of one sentence.
    pub fn logits(&self, ids: &[usize]) -> Result<Vec<f64>, ModelError> {
        match self {
            Network::Lstm(m) => Ok(m.forward(ids)?.logits),
            Network::Rnn(m) => Ok(m.forward(ids)?.logits),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        match self {
            Network::Lstm(m) => m.save(path),
            Network::Rnn(m) => m.save(path),
        }
    }
}

impl<R: Real> From<LstmClassifier<R>> for Network<R> {
    fn from(model: LstmClassifier<R>) -> Self {
        Network::Lstm(Box::new(model))
    }
}

/// A one-layer unidirectional LSTM becomes the paper's type, so that it gets its engine and
/// cell decomposition.
impl<R: Real> From<RnnClassifier<R>> for Network<R> {
    fn from(model: RnnClassifier<R>) -> Self {
        if !model.architecture().is_paper() {
            return Network::Rnn(Box::new(model));
        }
        let w = &model.layers()[0][0];
        LstmClassifier::from_parts(
            model.embedding().to_owned(),
            w.w_ih.clone(),
            w.w_hh.clone(),
            &w.b_ih + &w.b_hh,
            model.w_out().to_owned(),
            ndarray::Array1::from(model.b_out().to_vec()),
        )
        .map(Network::from)
        .expect("a one-layer unidirectional LSTM has the paper's LSTM's shapes")
    }
}
