//! Loading the authors' `LSTMSentiment` state_dict from a safetensors file.

use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};

use super::{LstmClassifier, ModelError};
use crate::numeric::Real;

const EMBEDDING: &str = "embed.weight";
const W_IH: &str = "lstm.weight_ih_l0";
const W_HH: &str = "lstm.weight_hh_l0";
const B_IH: &str = "lstm.bias_ih_l0";
const B_HH: &str = "lstm.bias_hh_l0";
const W_OUT: &str = "hidden_to_label.weight";
const B_OUT: &str = "hidden_to_label.bias";

impl<R: Real> LstmClassifier<R> {
    /// Loads a model saved from PyTorch (`safetensors.torch.save_file(model.state_dict(), ...)`).
    ///
    /// Tensors may be F32 or F64; they are converted to `R`. Sizes are read from the tensors
    /// themselves: vocabulary and embedding from `embed.weight`, hidden size from
    /// `lstm.weight_hh_l0`, classes from `hidden_to_label.weight`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let reader = TensorReader { path, tensors };

        let embedding_shape = reader.shape_of(EMBEDDING)?;
        if embedding_shape.len() != 2 || embedding_shape.contains(&0) {
            return Err(reader.shape_error(EMBEDDING, "(vocab, embedding) with both > 0", embedding_shape));
        }
        let (vocab, emb) = (embedding_shape[0], embedding_shape[1]);
        let hh_shape = reader.shape_of(W_HH)?;
        if hh_shape.len() != 2 || hh_shape[1] == 0 || hh_shape[0] != 4 * hh_shape[1] {
            return Err(reader.shape_error(W_HH, "(4H, H) with H > 0", hh_shape));
        }
        let hidden = hh_shape[1];
        let out_shape = reader.shape_of(W_OUT)?;
        if out_shape.len() != 2 || out_shape[0] == 0 || out_shape[1] != hidden {
            return Err(reader.shape_error(W_OUT, &format!("(classes, {hidden})"), out_shape));
        }
        let classes = out_shape[0];

        let embedding = reader.matrix(EMBEDDING, vocab, emb)?;
        let w_ih = reader.matrix(W_IH, 4 * hidden, emb)?;
        let w_hh = reader.matrix(W_HH, 4 * hidden, hidden)?;
        let b_ih = reader.vector(B_IH, 4 * hidden)?;
        let b_hh = reader.vector(B_HH, 4 * hidden)?;
        let w_out = reader.matrix(W_OUT, classes, hidden)?;
        let b_out = reader.vector(B_OUT, classes)?;
        let bias = Array1::from_iter(b_ih.iter().zip(&b_hh).map(|(&a, &b)| R::from_f64(a + b)));
        let cast = |m: Array2<f64>| m.mapv(R::from_f64);
        LstmClassifier::from_parts(
            cast(embedding),
            cast(w_ih),
            cast(w_hh),
            bias,
            cast(w_out),
            b_out.mapv(R::from_f64),
        )
    }
}

struct TensorReader<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
}

impl TensorReader<'_> {
    fn shape_of(&self, name: &str) -> Result<Vec<usize>, ModelError> {
        self.tensors
            .tensor(name)
            .map(|t| t.shape().to_vec())
            .map_err(|_| ModelError::MissingTensor {
                path: self.path.to_path_buf(),
                tensor: name.to_string(),
            })
    }

    fn shape_error(&self, name: &str, expected: &str, actual: Vec<usize>) -> ModelError {
        ModelError::Shape {
            path: self.path.to_path_buf(),
            tensor: name.to_string(),
            expected: expected.to_string(),
            actual,
        }
    }

    /// Reads a tensor of exactly `shape` as f64 (exact for both F32 and F64), rejecting non-finite values.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>, ModelError> {
        let actual = self.shape_of(name)?;
        if actual != shape {
            return Err(self.shape_error(name, &format!("{shape:?}"), actual));
        }
        let view = self.tensors.tensor(name).expect("shape_of found it");
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")))
                .collect(),
            other => {
                return Err(ModelError::Dtype {
                    path: self.path.to_path_buf(),
                    tensor: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                path: self.path.to_path_buf(),
                tensor: name.to_string(),
                index,
            });
        }
        Ok(values)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f64>, ModelError> {
        let values = self.values(name, &[rows, cols])?;
        Ok(Array2::from_shape_vec((rows, cols), values).expect("length checked by shape"))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Array1<f64>, ModelError> {
        Ok(Array1::from_vec(self.values(name, &[len])?))
    }
}
