//! Contextual Decomposition (Murdoch, Liu & Yu, ICLR 2018) for LSTM sentiment classifiers,
//! exact, batched and parallel, from the library or the `cd-pipeline` command.
//!
//! ```
//! use cd_pipeline::attribution::{Attribution, ContextualDecomposition, Convention, Span};
//! use cd_pipeline::model::LstmClassifier;
//!
//! // A seeded random model (vocabulary 30, embedding 8, hidden 6, 2 classes); real models load
//! // with `LstmClassifier::<f32>::load(path)` from a PyTorch state_dict saved as safetensors.
//! let model = LstmClassifier::<f32>::seeded_random(30, 8, 6, 2, 7);
//! let sentence = [3, 14, 15, 9, 2];
//! let logits = model.forward(&sentence).unwrap().logits;
//!
//! let cd = ContextualDecomposition::new(&model, Convention::Paper);
//! let phrase = Span::new(1, 3); // tokens 1 and 2, half-open
//! let scores = cd.attribute(&sentence, &[phrase]).unwrap();
//!
//! // β and γ add up to the logits without the output bias.
//! let bias = model.b_out();
//! for class in 0..2 {
//!     let total = scores[0].rel[class] + scores[0].irrel[class];
//!     assert!((total - (logits[class] - bias[class] as f64)).abs() < 1e-5);
//! }
//! println!("phrase score (positive - negative): {:?}", scores[0].binary_score());
//! ```

pub mod analysis;
pub mod attribution;
pub mod config;
pub mod data;
mod error;
pub mod io;
pub mod model;
pub mod numeric;
pub mod pipeline;
pub mod score;

pub use error::{EXIT_INVALID_INPUT, EXIT_RUN_FAILURE, Error};
