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

/// Every tensor of the authors' `LSTMSentiment` state_dict, as PyTorch names them: the one table
/// the loader, the savers and the trainer's parameter order share.
pub const TENSOR_NAMES: [&str; 7] = [EMBEDDING, W_IH, W_HH, B_IH, B_HH, W_OUT, B_OUT];

impl<R: Real> LstmClassifier<R> {
    /// Loads a model saved from PyTorch (`safetensors.torch.save_file(model.state_dict(), ...)`).
    ///
    /// Tensors may be F32 or F64; they are converted to `R`. Sizes are read from the tensors
    /// themselves: vocabulary and embedding from `embed.weight`, hidden size from
    /// `lstm.weight_hh_l0`, classes from `hidden_to_label.weight`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_safetensors(path, &read_model_file(path)?)
    }

    /// [`load`](Self::load) from the file's bytes; `path` names it in errors. Every size and
    /// offset is checked against the bytes present before anything is allocated.
    pub fn from_safetensors(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let architecture = super::rnn_io::architecture_of(path, &tensors.names())?;
        if !architecture.is_paper() {
            return Err(ModelError::NotOneLayerLstm {
                path: path.to_path_buf(),
                architecture: architecture.to_string(),
            });
        }
        let reader = TensorReader { path, tensors };

        let embedding_shape = reader.shape_of(EMBEDDING)?;
        if embedding_shape.len() != 2 || embedding_shape.contains(&0) {
            return Err(reader.shape_error(
                EMBEDDING,
                "(vocab, embedding) with both > 0",
                embedding_shape,
            ));
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

impl<R: Real> LstmClassifier<R> {
    /// Saves the model as F32 safetensors under the PyTorch names `load` reads, so that
    /// `model.load_state_dict(safetensors.torch.load_file(path))` works. The combined gate bias
    /// goes to `lstm.bias_ih_l0` and `lstm.bias_hh_l0` is zero. Written to a temporary name and
    /// renamed into place.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes =
            |values: Vec<f32>| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let to_f32 = |values: &mut dyn Iterator<Item = &R>| -> Vec<f32> {
            values.map(|v| v.as_f64() as f32).collect()
        };
        let hidden = self.hidden_size();
        let tensors: Vec<(&str, Vec<usize>, Vec<u8>)> = vec![
            (
                EMBEDDING,
                self.embedding().shape().to_vec(),
                bytes(to_f32(&mut self.embedding().iter())),
            ),
            (
                W_IH,
                self.w_ih().shape().to_vec(),
                bytes(to_f32(&mut self.w_ih().iter())),
            ),
            (
                W_HH,
                self.w_hh().shape().to_vec(),
                bytes(to_f32(&mut self.w_hh().iter())),
            ),
            (
                B_IH,
                vec![4 * hidden],
                bytes(to_f32(&mut self.bias().iter())),
            ),
            (B_HH, vec![4 * hidden], bytes(vec![0.0; 4 * hidden])),
            (
                W_OUT,
                self.w_out().shape().to_vec(),
                bytes(to_f32(&mut self.w_out().iter())),
            ),
            (
                B_OUT,
                self.b_out().shape().to_vec(),
                bytes(to_f32(&mut self.b_out().iter())),
            ),
        ];
        write_f32_tensors(path, &tensors)
    }
}

/// The bytes of a model file, or the error naming it.
pub(super) fn read_model_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes F32 tensors `(name, shape, little-endian bytes)` as safetensors, through a temporary
/// name renamed into place.
pub(super) fn write_f32_tensors(
    path: &Path,
    tensors: &[(&str, Vec<usize>, Vec<u8>)],
) -> std::io::Result<()> {
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|view| (*name, view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let serialized = safetensors::serialize(views, None).map_err(std::io::Error::other)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    std::fs::write(&temporary, serialized)?;
    std::fs::rename(&temporary, path)
}

pub(super) struct TensorReader<'a> {
    pub(super) path: &'a Path,
    pub(super) tensors: SafeTensors<'a>,
}

impl TensorReader<'_> {
    pub(super) fn shape_of(&self, name: &str) -> Result<Vec<usize>, ModelError> {
        self.tensors
            .tensor(name)
            .map(|t| t.shape().to_vec())
            .map_err(|_| ModelError::MissingTensor {
                path: self.path.to_path_buf(),
                tensor: name.to_string(),
            })
    }

    pub(super) fn shape_error(&self, name: &str, expected: &str, actual: Vec<usize>) -> ModelError {
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

    pub(super) fn matrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Array2<f64>, ModelError> {
        let values = self.values(name, &[rows, cols])?;
        Ok(Array2::from_shape_vec((rows, cols), values).expect("length checked by shape"))
    }

    pub(super) fn vector(&self, name: &str, len: usize) -> Result<Array1<f64>, ModelError> {
        Ok(Array1::from_vec(self.values(name, &[len])?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use safetensors::tensor::TensorView;

    use super::*;

    /// The state_dict of a seeded model as (name, shape, values), biases split as PyTorch has them.
    fn state_dict(model: &LstmClassifier<f64>) -> BTreeMap<&'static str, (Vec<usize>, Vec<f64>)> {
        let matrix =
            |m: ndarray::ArrayView2<'_, f64>| (m.shape().to_vec(), m.iter().copied().collect());
        let half_bias: Vec<f64> = model.bias().iter().map(|b| b / 2.0).collect();
        BTreeMap::from([
            (EMBEDDING, matrix(model.embedding())),
            (W_IH, matrix(model.w_ih())),
            (W_HH, matrix(model.w_hh())),
            (B_IH, (vec![half_bias.len()], half_bias.clone())),
            (B_HH, (vec![half_bias.len()], half_bias)),
            (W_OUT, matrix(model.w_out())),
            (B_OUT, (vec![model.num_classes()], model.b_out().to_vec())),
        ])
    }

    fn save(tensors: &BTreeMap<&str, (Vec<usize>, Vec<f64>)>, dtype: Dtype, path: &Path) {
        let bytes: BTreeMap<&str, Vec<u8>> = tensors
            .iter()
            .map(|(name, (_, values))| {
                let raw = match dtype {
                    Dtype::F32 => values
                        .iter()
                        .flat_map(|&v| (v as f32).to_le_bytes())
                        .collect(),
                    _ => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
                };
                (*name, raw)
            })
            .collect();
        let views: Vec<(&str, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, (shape, _))| {
                (
                    *name,
                    TensorView::new(dtype, shape.clone(), &bytes[name]).unwrap(),
                )
            })
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    fn load_error(tensors: &BTreeMap<&str, (Vec<usize>, Vec<f64>)>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        save(tensors, Dtype::F32, &path);
        LstmClassifier::<f32>::load(&path).unwrap_err().to_string()
    }

    #[test]
    fn f32_and_f64_files_load_and_give_the_same_logits() {
        let model = LstmClassifier::<f64>::seeded_random(11, 5, 4, 3, 9);
        let tensors = state_dict(&model);
        let dir = tempfile::tempdir().unwrap();
        let ids = [1, 4, 10, 0];
        let expected = model.forward(&ids).unwrap().logits;
        for dtype in [Dtype::F64, Dtype::F32] {
            let path = dir.path().join(format!("{dtype:?}.safetensors"));
            save(&tensors, dtype, &path);
            let loaded = LstmClassifier::<f64>::load(&path).unwrap();
            assert_eq!(
                (
                    loaded.vocab_size(),
                    loaded.hidden_size(),
                    loaded.num_classes()
                ),
                (11, 4, 3)
            );
            let logits = loaded.forward(&ids).unwrap().logits;
            let tolerance = if dtype == Dtype::F64 { 1e-12 } else { 1e-5 };
            for (a, b) in logits.iter().zip(&expected) {
                assert!((a - b).abs() <= tolerance, "{dtype:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn defects_are_reported_with_the_tensor_and_shapes() {
        let tensors = state_dict(&LstmClassifier::<f64>::seeded_random(11, 5, 4, 2, 9));

        let mut missing = tensors.clone();
        missing.remove(B_HH);
        assert!(load_error(&missing).contains("tensor `lstm.bias_hh_l0` is missing"));

        let mut wrong = tensors.clone();
        wrong.insert(W_IH, (vec![16, 4], vec![0.0; 64]));
        let message = load_error(&wrong);
        assert!(
            message.contains("`lstm.weight_ih_l0` has shape [16, 4]; expected [16, 5]"),
            "{message}"
        );

        let mut not_finite = tensors.clone();
        not_finite.get_mut(W_HH).unwrap().1[7] = f64::NAN;
        assert!(
            load_error(&not_finite)
                .contains("`lstm.weight_hh_l0` holds a non-finite value at flat index 7")
        );

        // A second layer's tensors are not silently ignored.
        let mut stacked = tensors.clone();
        stacked.insert("lstm.weight_ih_l1", (vec![16, 4], vec![0.0; 64]));
        stacked.insert("lstm.bias_hh_l1", (vec![16], vec![0.0; 16]));
        let message = load_error(&stacked);
        assert!(
            message.contains("tensor `lstm.weight_hh_l1` is missing"),
            "{message}"
        );

        let mut bad_output = tensors;
        bad_output.insert(W_OUT, (vec![2, 3], vec![0.0; 6]));
        assert!(
            load_error(&bad_output)
                .contains("`hidden_to_label.weight` has shape [2, 3]; expected (classes, 4)")
        );
    }
}
