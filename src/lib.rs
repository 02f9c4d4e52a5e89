//! Contextual Decomposition (Murdoch, Liu & Yu, ICLR 2018) for LSTM sentiment classifiers, and the
//! paper's baselines (leave-one-out, gradient × input, integrated gradients, cell decomposition),
//! exact, batched and parallel, from the library or the `cd-pipeline` command.
//!
//! ```
//! use cd_pipeline::attribution::{MethodConfig, Span, Target};
//! use cd_pipeline::model::{Architecture, CellKind, LstmClassifier, Network, RnnClassifier};
//!
//! // A seeded random model (vocabulary 30, embedding 8, hidden 6, 2 classes); real models load
//! // with `Network::<f32>::load(path)` from a PyTorch state_dict saved as safetensors.
//! let model: Network<f32> = LstmClassifier::seeded_random(30, 8, 6, 2, 7).into();
//! let sentence = [3, 14, 15, 9, 2];
//! let phrase = [Span::new(1, 3)]; // tokens 1 and 2, half-open
//!
//! // Every method behind one trait, built from the same specs as `score --method`.
//! for spec in ["cd", "leave_one_out", "integrated_gradients:steps=32", "cell_decomposition"] {
//!     let method = spec.parse::<MethodConfig>()?.build(&model, None)?;
//!     let scores = method.attribute_sentence(&sentence, &phrase, Target::LogitDiff)?;
//!     println!("{spec}: {:.4} (delta {:?})", scores[0].score, scores[0].delta);
//! }
//!
//! // CD's β and γ add up to the logits without the output bias.
//! let cd = "cd".parse::<MethodConfig>()?.build(&model, None)?;
//! let scores = cd.attribute_sentence(&sentence, &phrase, Target::LogitDiff)?;
//! let (rel, irrel) = (scores[0].rel.as_ref().unwrap(), scores[0].irrel.as_ref().unwrap());
//! let logits = model.logits(&sentence)?;
//! let Network::Lstm(lstm) = &model else { unreachable!() };
//! for class in 0..2 {
//!     let without_bias = logits[class] - f64::from(lstm.b_out()[class]);
//!     assert!((rel[class] + irrel[class] - without_bias).abs() < 1e-5);
//! }
//!
//! // The same methods for a 2-layer bidirectional GRU (cell decomposition is the one-layer
//! // LSTM's only, and says so).
//! let gru = Architecture { cell: CellKind::Gru, layers: 2, bidirectional: true };
//! let model: Network<f32> = RnnClassifier::seeded_random(gru, 30, 8, 6, 2, 7).into();
//! let cd = "cd".parse::<MethodConfig>()?.build(&model, None)?;
//! println!("{:.4}", cd.attribute_sentence(&sentence, &phrase, Target::LogitDiff)?[0].score);
//! assert!("cell_decomposition".parse::<MethodConfig>()?.build(&model, None).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod analysis;
pub mod attribution;
pub mod config;
pub mod data;
mod error;
pub mod fuzz;
pub mod io;
pub mod model;
pub mod numeric;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod score;

pub use error::{EXIT_INVALID_INPUT, EXIT_LOCKED, EXIT_RUN_FAILURE, Error};

/// The README's Rust example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
