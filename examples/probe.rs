use cd_pipeline::attribution::cd::decompose;
use cd_pipeline::attribution::{Convention, Span};
use cd_pipeline::model::{ForwardTrace, LstmClassifier, Vocabulary};
fn main() {
    let dir = std::path::Path::new("../shared/fixtures/torch_sst");
    let m32 = LstmClassifier::<f32>::load(&dir.join("model.safetensors")).unwrap();
    let m64 = LstmClassifier::<f64>::load(&dir.join("model.safetensors")).unwrap();
    let vocab = Vocabulary::load(&dir.join("vocab.json")).unwrap();
    let text = std::fs::read_to_string(dir.join("predictions.jsonl")).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["split"] == "dev" && v["index"] == 8 {
            let ids: Vec<usize> = v["tokens"].as_array().unwrap().iter().map(|t| vocab.lookup(t.as_str().unwrap()).unwrap()).collect();
            let t32 = m32.forward(&ids).unwrap();
            let t64 = m64.forward(&ids).unwrap();
            let c = |a: &ndarray::Array2<f32>| a.mapv(|x| x as f64);
            let mixed = ForwardTrace { input_products: c(&t32.input_products), preactivations: c(&t32.preactivations), gates: c(&t32.gates), cells: c(&t32.cells), tanh_cells: c(&t32.tanh_cells), hidden: c(&t32.hidden), logits: t32.logits.clone() };
            let names = ["input", "preact", "gates", "cells", "tanh_cells", "hidden"];
            for k in 0..6 {
                let mut m = mixed.clone();
                match k { 0 => m.input_products = t64.input_products.clone(), 1 => m.preactivations = t64.preactivations.clone(), 2 => m.gates = t64.gates.clone(), 3 => m.cells = t64.cells.clone(), 4 => m.tanh_cells = t64.tanh_cells.clone(), _ => m.hidden = t64.hidden.clone() }
                let span = [Span::new(0, 30)];
                let exact = decompose(&m64, &t64, &span, Convention::Acd);
                let mix = decompose(&m64, &m, &span, Convention::Acd);
                println!("exact {} -> err {:.2e}", names[k], (mix[0].rel[0]-exact[0].rel[0]).abs());
                // only this component inexact
                let mut m = t64.clone();
                match k { 0 => m.input_products = mixed.input_products.clone(), 1 => m.preactivations = mixed.preactivations.clone(), 2 => m.gates = mixed.gates.clone(), 3 => m.cells = mixed.cells.clone(), 4 => m.tanh_cells = mixed.tanh_cells.clone(), _ => m.hidden = mixed.hidden.clone() }
                let mix = decompose(&m64, &m, &span, Convention::Acd);
                println!("  only {} inexact -> err {:.2e}", names[k], (mix[0].rel[0]-exact[0].rel[0]).abs());
            }
            for n in [30usize] {
            let span = [Span::new(0, n)];
            for conv in [Convention::Murdoch2018, Convention::Paper, Convention::Acd] {
                let exact = decompose(&m64, &t64, &span, conv);
                let mix = decompose(&m64, &mixed, &span, conv);
                let f = decompose(&m32, &t32, &span, conv);
                println!("{n} {conv} exact {:?} mixed-trace err {:.2e} f32 err {:.2e}", exact[0].rel, (mix[0].rel[0]-exact[0].rel[0]).abs(), (f[0].rel[0]-exact[0].rel[0]).abs());
            }}
        }
    }
}
