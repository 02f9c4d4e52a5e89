//! Saved models: they reload with identical logits, and carry exactly the tensor names and ranks
//! of the authors' PyTorch layout (the `cd_reference/small` fixture), so PyTorch's
//! `load_state_dict` takes them.

mod common;

use cd_pipeline::model::{Initialisation, LstmClassifier, LstmParameters, TENSOR_NAMES};
use safetensors::SafeTensors;

fn names_and_shapes(path: &std::path::Path) -> Vec<(String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let mut found: Vec<(String, Vec<usize>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect();
    found.sort();
    found
}

#[test]
fn saved_parameters_reload_with_identical_logits_and_pytorch_names() {
    let embedding: Vec<f32> = (0..40 * 6)
        .map(|k| ((k * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let parameters = LstmParameters::initialise(embedding, 6, 5, 2, 17, Initialisation::Pytorch);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    parameters.save(&path).unwrap();

    let reloaded = LstmClassifier::<f32>::load(&path).unwrap();
    let in_memory = parameters.classifier();
    for sentence in [vec![1, 2, 3], vec![39, 0, 7, 7, 12], vec![5]] {
        let a = reloaded.forward(&sentence).unwrap().logits;
        let b = in_memory.forward(&sentence).unwrap().logits;
        assert_eq!(a, b, "{sentence:?}");
    }

    let reference = names_and_shapes(&common::fixture("cd_reference/small/model.safetensors"));
    let ours = names_and_shapes(&path);
    let names = |list: &[(String, Vec<usize>)]| -> Vec<String> {
        list.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(names(&ours), names(&reference));
    let mut expected_names: Vec<String> = TENSOR_NAMES.iter().map(|n| n.to_string()).collect();
    expected_names.sort();
    assert_eq!(names(&ours), expected_names);
    // Same ranks, and the same relations between sizes (4H rows, H columns, ...).
    let shape = |list: &[(String, Vec<usize>)], name: &str| -> Vec<usize> {
        list.iter().find(|(n, _)| n == name).unwrap().1.clone()
    };
    for list in [&ours, &reference] {
        let (embedding, w_ih, w_hh) = (
            shape(list, "embed.weight"),
            shape(list, "lstm.weight_ih_l0"),
            shape(list, "lstm.weight_hh_l0"),
        );
        let hidden = w_hh[1];
        assert_eq!(w_ih, vec![4 * hidden, embedding[1]]);
        assert_eq!(w_hh, vec![4 * hidden, hidden]);
        assert_eq!(shape(list, "lstm.bias_ih_l0"), vec![4 * hidden]);
        assert_eq!(shape(list, "lstm.bias_hh_l0"), vec![4 * hidden]);
        let classes = shape(list, "hidden_to_label.bias")[0];
        assert_eq!(shape(list, "hidden_to_label.weight"), vec![classes, hidden]);
    }
    assert_eq!(shape(&ours, "embed.weight"), vec![40, 6]);
    assert_eq!(shape(&ours, "lstm.weight_hh_l0"), vec![20, 5]);
}
