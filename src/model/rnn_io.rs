//! Reading and writing [`RnnClassifier`] state_dicts (spec `cd_architectures.md` §1): the
//! architecture comes from the tensor names.

use std::path::Path;

use ndarray::Array2;
use safetensors::SafeTensors;

use super::ModelError;
use super::rnn::{Architecture, CellKind, DirectionWeights, RnnClassifier};
use super::safetensors_io::{TensorReader, write_f32_tensors};
use crate::numeric::Real;

const EMBEDDING: &str = "embed.weight";
const W_OUT: &str = "hidden_to_label.weight";
const B_OUT: &str = "hidden_to_label.bias";

/// The layer, direction and cell a recurrent tensor's name describes, if it is one.
fn recurrent_tensor(name: &str) -> Option<(CellKind, usize, bool)> {
    let (module, rest) = name.split_once('.')?;
    let cell = [CellKind::Lstm, CellKind::Gru]
        .into_iter()
        .find(|c| c.name() == module)?;
    let rest = ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"]
        .iter()
        .find_map(|kind| rest.strip_prefix(kind))?;
    let (digits, reverse) = match rest.strip_suffix("_reverse") {
        Some(digits) => (digits, true),
        None => (rest, false),
    };
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    // Beyond 10⁶ layers the name cannot be part of a file that fits in memory.
    let layer = digits
        .parse::<usize>()
        .ok()
        .filter(|&k| canonical && k < 1_000_000)?;
    Some((cell, layer, reverse))
}

/// The architecture the tensor names describe; a name outside the layout, or one missing from it,
/// is an error naming it.
pub fn architecture_of(path: &Path, names: &[&str]) -> Result<Architecture, ModelError> {
    let mut unexpected = Vec::new();
    let mut cells = Vec::new();
    let (mut layers, mut bidirectional) = (0, false);
    for &name in names {
        if [EMBEDDING, W_OUT, B_OUT].contains(&name) {
            continue;
        }
        match recurrent_tensor(name) {
            Some((cell, layer, reverse)) => {
                if !cells.contains(&cell) {
                    cells.push(cell);
                }
                layers = layers.max(layer + 1);
                bidirectional |= reverse;
            }
            None => unexpected.push(name.to_string()),
        }
    }
    if cells.len() > 1 {
        // Both modules: the GRU's tensors are the ones that do not belong.
        unexpected.extend(
            names
                .iter()
                .filter(|n| n.starts_with("gru."))
                .map(|n| n.to_string()),
        );
    }
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(ModelError::UnexpectedTensors {
            path: path.to_path_buf(),
            tensors: unexpected,
        });
    }
    let architecture = Architecture {
        cell: cells.first().copied().unwrap_or_default(),
        layers: layers.max(1),
        bidirectional,
    };
    if let Some(missing) = architecture
        .tensor_names()
        .into_iter()
        .find(|name| !names.contains(&name.as_str()))
    {
        return Err(ModelError::MissingTensor {
            path: path.to_path_buf(),
            tensor: missing,
        });
    }
    Ok(architecture)
}

impl<R: Real> RnnClassifier<R> {
    /// Loads a state_dict saved from PyTorch (`safetensors.torch.save_file(model.state_dict(), …)`).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_safetensors(path, &super::safetensors_io::read_model_file(path)?)
    }

    /// [`load`](Self::load) from the file's bytes; `path` names it in errors.
    pub fn from_safetensors(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let architecture = architecture_of(path, &tensors.names())?;
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
        let gates = architecture.cell.gates();
        let first = architecture.direction_tensors(0, 0);
        let hh_shape = reader.shape_of(&first[1])?;
        if hh_shape.len() != 2 || hh_shape[1] == 0 || hh_shape[0] != gates * hh_shape[1] {
            return Err(reader.shape_error(
                &first[1],
                &format!("({gates}H, H) with H > 0"),
                hh_shape,
            ));
        }
        let hidden = hh_shape[1];
        let directions = architecture.directions();
        let out_shape = reader.shape_of(W_OUT)?;
        if out_shape.len() != 2 || out_shape[0] == 0 || out_shape[1] != directions * hidden {
            return Err(reader.shape_error(
                W_OUT,
                &format!("(classes, {})", directions * hidden),
                out_shape,
            ));
        }
        let classes = out_shape[0];
        let cast = |m: Array2<f64>| m.mapv(R::from_f64);
        let mut layers = Vec::with_capacity(architecture.layers);
        for k in 0..architecture.layers {
            let input = if k == 0 { emb } else { directions * hidden };
            let mut layer = Vec::with_capacity(directions);
            for d in 0..directions {
                let names = architecture.direction_tensors(k, d);
                layer.push(DirectionWeights::new(
                    cast(reader.matrix(&names[0], gates * hidden, input)?),
                    cast(reader.matrix(&names[1], gates * hidden, hidden)?),
                    reader.vector(&names[2], gates * hidden)?.mapv(R::from_f64),
                    reader.vector(&names[3], gates * hidden)?.mapv(R::from_f64),
                ));
            }
            layers.push(layer);
        }
        Self::from_parts(
            architecture,
            cast(reader.matrix(EMBEDDING, vocab, emb)?),
            layers,
            cast(reader.matrix(W_OUT, classes, directions * hidden)?),
            reader.vector(B_OUT, classes)?.mapv(R::from_f64),
        )
    }

    /// Saves the model as F32 safetensors in the layout `load` reads, so that PyTorch's
    /// `load_state_dict` takes it into `nn.LSTM` / `nn.GRU` with the same options.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let names = self.architecture().tensor_names();
        let shapes = self.shapes();
        let tensors: Vec<(&str, Vec<usize>, Vec<u8>)> = names
            .iter()
            .zip(shapes)
            .zip(self.tensors())
            .map(|((name, shape), values)| {
                let bytes = values
                    .iter()
                    .flat_map(|v| (v.as_f64() as f32).to_le_bytes())
                    .collect();
                (name.as_str(), shape, bytes)
            })
            .collect();
        write_f32_tensors(path, &tensors)
    }

    /// The shape of every tensor, in [`Architecture::tensor_names`] order.
    pub fn shapes(&self) -> Vec<Vec<usize>> {
        let mut shapes = vec![self.embedding().shape().to_vec()];
        for layer in self.layers() {
            for w in layer {
                shapes.extend([
                    w.w_ih.shape().to_vec(),
                    w.w_hh.shape().to_vec(),
                    w.b_ih.shape().to_vec(),
                    w.b_hh.shape().to_vec(),
                ]);
            }
        }
        shapes.push(self.w_out().shape().to_vec());
        shapes.push(vec![self.num_classes()]);
        shapes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_is_read_from_the_names() {
        for architecture in [
            Architecture::PAPER,
            Architecture {
                cell: CellKind::Gru,
                layers: 3,
                bidirectional: true,
            },
        ] {
            let names = architecture.tensor_names();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            assert_eq!(
                architecture_of(Path::new("m"), &refs).unwrap(),
                architecture
            );
        }
        let mut stacked = Architecture {
            cell: CellKind::Lstm,
            layers: 2,
            bidirectional: false,
        }
        .tensor_names();
        stacked.retain(|n| n != "lstm.bias_hh_l1");
        let refs: Vec<&str> = stacked.iter().map(String::as_str).collect();
        let error = architecture_of(Path::new("m"), &refs)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`lstm.bias_hh_l1` is missing"), "{error}");
        for odd in [
            "lstm.weight_ih_l01",
            "lstm.weight_xx_l0",
            "rnn.weight_ih_l0",
            "gru.bias_hh_l0",
        ] {
            let mut list = Architecture::PAPER.tensor_names();
            list.push(odd.to_string());
            let refs: Vec<&str> = list.iter().map(String::as_str).collect();
            let error = architecture_of(Path::new("m"), &refs)
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("`{odd}`")), "{odd}: {error}");
        }
    }

    #[test]
    fn saved_models_load_with_the_same_logits() {
        let dir = tempfile::tempdir().unwrap();
        for (cell, layers, bidirectional) in [
            (CellKind::Lstm, 2, true),
            (CellKind::Gru, 1, false),
            (CellKind::Gru, 2, true),
        ] {
            let architecture = Architecture {
                cell,
                layers,
                bidirectional,
            };
            let model = RnnClassifier::<f32>::seeded_random(architecture, 9, 4, 5, 3, 2);
            let path = dir.path().join("m.safetensors");
            model.save(&path).unwrap();
            let loaded = RnnClassifier::<f32>::load(&path).unwrap();
            assert_eq!(loaded.architecture(), architecture);
            let ids = [3, 1, 8, 0, 2];
            assert_eq!(
                loaded.forward(&ids).unwrap().logits,
                model.forward(&ids).unwrap().logits
            );
        }
    }
}
