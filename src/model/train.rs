//! Training the LSTM classifier as the authors do: cross-entropy, Adam, mini-batches of sentences
//! of one length, dev accuracy checked every so many iterations and the best parameters kept.
//!
//! Each batch is cut into chunks of at most [`CHUNK_ROWS`] sentences whose gradients are computed
//! in parallel and summed in chunk order, so the weights are bit-identical for any thread count.

use std::time::Instant;

use rayon::prelude::*;

use super::backprop::{Gradients, LstmParameters, batch_gradients};
use super::{Network, RnnClassifier};
use crate::numeric::{Real, SplitMix64, simd_dispatch};
use crate::progress::Progress;

/// Sentences per parallel gradient task: the cut depends only on the batch, never on threads.
pub const CHUNK_ROWS: usize = 25;

/// Elements per parallel task of the optimiser's update.
const UPDATE_CHUNK: usize = 1 << 14;

/// A labelled token-id sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub ids: Vec<usize>,
    /// 0 negative, 1 positive.
    pub label: usize,
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Seeds the batch order (the initial weights have their own seed).
    pub seed: u64,
    /// Dev accuracy is measured every this many iterations and at the end of every epoch.
    pub eval_every: usize,
    /// When set, the weights evaluated and kept are an exponential moving average of the
    /// trained ones with this decay (for example 0.999), warmed up as min(decay, (1+t)/(10+t)).
    pub average: Option<f64>,
}

/// One measurement of the training run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainRecord {
    pub epoch: usize,
    pub iteration: usize,
    /// Mean training loss over the iterations since the previous record.
    pub loss: f64,
    /// Training accuracy over the examples seen since the previous record.
    pub train_accuracy: f64,
    pub dev_accuracy: f64,
    pub seconds: f64,
}

/// What the trainer needs of a model's parameters: the paper's LSTM has its own specialised
/// gradients ([`LstmParameters`]), every other architecture is an [`RnnClassifier`].
pub trait Trainable: Clone + Send + Sync {
    /// Every tensor in the state_dict's order, the embedding first.
    fn tensors(&self) -> Vec<&[f32]>;

    fn tensors_mut(&mut self) -> Vec<&mut [f32]>;

    /// Brings copies derived from the tensors up to date after they changed.
    fn refresh(&mut self);

    fn embedding_dim(&self) -> usize;

    /// Gradients of `scale × Σ −log p(label)` over sentences of one length.
    fn gradients(&self, sentences: &[&[usize]], labels: &[usize], scale: f32) -> Gradients<f32>;

    /// The model for inference (dev accuracy).
    fn network(&self) -> Network<f32>;

    /// Writes the state_dict in the PyTorch layout.
    fn save(&self, path: &std::path::Path) -> std::io::Result<()>;
}

impl Trainable for LstmParameters<f32> {
    fn tensors(&self) -> Vec<&[f32]> {
        LstmParameters::tensors(self).to_vec()
    }

    fn tensors_mut(&mut self) -> Vec<&mut [f32]> {
        LstmParameters::tensors_mut(self).into_iter().collect()
    }

    fn refresh(&mut self) {}

    fn embedding_dim(&self) -> usize {
        self.embedding_dim
    }

    fn gradients(&self, sentences: &[&[usize]], labels: &[usize], scale: f32) -> Gradients<f32> {
        batch_gradients(self, sentences, labels, scale)
    }

    fn network(&self) -> Network<f32> {
        self.classifier().into()
    }

    fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        LstmParameters::save(self, path)
    }
}

impl Trainable for RnnClassifier<f32> {
    fn tensors(&self) -> Vec<&[f32]> {
        RnnClassifier::tensors(self)
    }

    fn tensors_mut(&mut self) -> Vec<&mut [f32]> {
        RnnClassifier::tensors_mut(self)
    }

    fn refresh(&mut self) {
        RnnClassifier::refresh(self);
    }

    fn embedding_dim(&self) -> usize {
        RnnClassifier::embedding_dim(self)
    }

    fn gradients(&self, sentences: &[&[usize]], labels: &[usize], scale: f32) -> Gradients<f32> {
        self.batch_gradients(sentences, labels, scale)
    }

    fn network(&self) -> Network<f32> {
        self.clone().into()
    }

    fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        RnnClassifier::save(self, path)
    }
}

/// The best parameters by dev accuracy and the log of the run.
#[derive(Debug, Clone)]
pub struct Trained<P> {
    pub parameters: P,
    pub best_iteration: usize,
    pub best_dev_accuracy: f64,
    pub log: Vec<TrainRecord>,
}

/// Adam (Kingma & Ba) exactly as PyTorch's `torch.optim.Adam` with default betas and epsilon:
/// every element is updated every step, including embedding rows without gradient.
struct Adam {
    learning_rate: f64,
    step: i32,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

impl Adam {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPSILON: f64 = 1e-8;

    fn new<P: Trainable>(parameters: &P, learning_rate: f64) -> Self {
        let zeros = || {
            parameters
                .tensors()
                .iter()
                .map(|t| vec![0.0; t.len()])
                .collect()
        };
        Self {
            learning_rate,
            step: 0,
            first: zeros(),
            second: zeros(),
        }
    }

    fn update<P: Trainable>(&mut self, parameters: &mut P, gradients: &[&[f32]]) {
        self.step += 1;
        let correction1 = 1.0 - Self::BETA1.powi(self.step);
        let correction2 = 1.0 - Self::BETA2.powi(self.step);
        let step_size = (self.learning_rate / correction1) as f32;
        let root_correction2 = correction2.sqrt() as f32;
        let (beta1, beta2, epsilon) =
            (Self::BETA1 as f32, Self::BETA2 as f32, Self::EPSILON as f32);
        for (((tensor, gradient), first), second) in parameters
            .tensors_mut()
            .into_iter()
            .zip(gradients)
            .zip(&mut self.first)
            .zip(&mut self.second)
        {
            tensor
                .par_chunks_mut(UPDATE_CHUNK)
                .zip(gradient.par_chunks(UPDATE_CHUNK))
                .zip(first.par_chunks_mut(UPDATE_CHUNK))
                .zip(second.par_chunks_mut(UPDATE_CHUNK))
                .for_each(|(((p, g), m), v)| {
                    adam_update(
                        p,
                        g,
                        m,
                        v,
                        [beta1, beta2, epsilon, step_size, root_correction2],
                    );
                });
        }
    }
}

simd_dispatch! {
    /// One Adam step over a slice: `constants` are β₁, β₂, ε, the step size lr / (1 − β₁ᵗ) and
    /// √(1 − β₂ᵗ).
    fn adam_update<R: Real>(p: &mut [R], g: &[R], m: &mut [R], v: &mut [R], constants: [R; 5]) {
        let [beta1, beta2, epsilon, step_size, root_correction2] = constants;
        let one = R::one();
        for k in 0..p.len() {
            m[k] = beta1 * m[k] + (one - beta1) * g[k];
            v[k] = beta2 * v[k] + (one - beta2) * g[k] * g[k];
            p[k] -= step_size * m[k] / (v[k].sqrt() / root_correction2 + epsilon);
        }
    }
}

/// `averaged ← decay · averaged + (1 − decay) · current`, element by element.
fn moving_average<P: Trainable>(averaged: &mut P, current: &P, decay: f32) {
    for (average, value) in averaged.tensors_mut().into_iter().zip(current.tensors()) {
        average
            .par_chunks_mut(UPDATE_CHUNK)
            .zip(value.par_chunks(UPDATE_CHUNK))
            .for_each(|(a, v)| blend(a, v, decay));
    }
}

simd_dispatch! {
    fn blend<R: Real>(average: &mut [R], value: &[R], decay: R) {
        let keep = R::one() - decay;
        for (a, &v) in average.iter_mut().zip(value) {
            *a = decay * *a + keep * v;
        }
    }
}

/// Fraction of `examples` the model classifies correctly.
pub fn accuracy(model: &Network<f32>, examples: &[Example]) -> f64 {
    let correct: usize = examples
        .par_iter()
        .map(|example| {
            let logits = model
                .logits(&example.ids)
                .expect("ids are in the vocabulary");
            let predicted = (0..logits.len())
                .fold(0, |best, k| if logits[k] > logits[best] { k } else { best });
            usize::from(predicted == example.label)
        })
        .sum();
    correct as f64 / examples.len().max(1) as f64
}

/// Batches of equal-length examples: shuffled within each length, cut into `batch_size`, and the
/// batches shuffled.
fn epoch_batches(examples: &[Example], batch_size: usize, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
    let longest = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let mut by_length: Vec<Vec<usize>> = vec![Vec::new(); longest + 1];
    for (k, example) in examples.iter().enumerate() {
        by_length[example.ids.len()].push(k);
    }
    let mut batches = Vec::new();
    for mut bucket in by_length {
        rng.shuffle(&mut bucket);
        batches.extend(bucket.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// The number of batches [`epoch_batches`] cuts, the same in every epoch.
fn batches_per_epoch(examples: &[Example], batch_size: usize) -> usize {
    let mut per_length: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for example in examples {
        *per_length.entry(example.ids.len()).or_default() += 1;
    }
    per_length.values().map(|n| n.div_ceil(batch_size)).sum()
}

/// Trains from `initial`, returning the parameters with the best dev accuracy seen.
pub fn train<P: Trainable>(
    initial: P,
    train: &[Example],
    dev: &[Example],
    options: &TrainOptions,
) -> Trained<P> {
    let started = Instant::now();
    let mut parameters = initial;
    let mut adam = Adam::new(&parameters, options.learning_rate);
    let mut rng = SplitMix64(options.seed);
    let mut embedding_gradient = vec![0.0_f32; parameters.tensors()[0].len()];
    let mut averaged = options.average.map(|_| parameters.clone());
    let mut trained = Trained {
        best_dev_accuracy: f64::NEG_INFINITY,
        best_iteration: 0,
        parameters: parameters.clone(),
        log: Vec::new(),
    };
    let (mut iteration, mut loss, mut correct, mut seen) = (0, 0.0, 0, 0);
    let total_iterations = options.epochs * batches_per_epoch(train, options.batch_size);
    let progress = Progress::start(
        tracing::info_span!("training", indicatif.pb_show = true),
        "steps",
        total_iterations,
        format!("{} examples", train.len()),
    );
    for epoch in 1..=options.epochs {
        let batches = epoch_batches(train, options.batch_size, &mut rng);
        for (k, batch) in batches.iter().enumerate() {
            let scale = 1.0 / batch.len() as f32;
            let parts: Vec<Gradients<f32>> = batch
                .par_chunks(CHUNK_ROWS)
                .map(|chunk| {
                    let sentences: Vec<&[usize]> =
                        chunk.iter().map(|&i| train[i].ids.as_slice()).collect();
                    let labels: Vec<usize> = chunk.iter().map(|&i| train[i].label).collect();
                    parameters.gradients(&sentences, &labels, scale)
                })
                .collect();
            let mut parts = parts.into_iter();
            let mut gradients = parts.next().expect("a batch has sentences");
            for part in parts {
                gradients.add(&part);
            }
            loss += gradients.loss;
            correct += gradients.correct;
            seen += batch.len();
            let width = parameters.embedding_dim();
            for (slot, &id) in gradients.embedding.ids.iter().enumerate() {
                embedding_gradient[id * width..(id + 1) * width]
                    .copy_from_slice(&gradients.embedding.values[slot * width..(slot + 1) * width]);
            }
            let all: Vec<&[f32]> = std::iter::once(embedding_gradient.as_slice())
                .chain(gradients.dense.iter().map(Vec::as_slice))
                .collect();
            adam.update(&mut parameters, &all);
            parameters.refresh();
            for &id in &gradients.embedding.ids {
                embedding_gradient[id * width..(id + 1) * width].fill(0.0);
            }
            iteration += 1;
            progress.advance(1);
            if iteration % 100 == 0 {
                tracing::debug!(
                    "training: iteration {iteration} of {total_iterations}, mean loss since the last dev check {:.4}",
                    loss / seen.max(1) as f64
                );
            }
            if let (Some(decay), Some(averaged)) = (options.average, averaged.as_mut()) {
                let warm = (1.0 + iteration as f64) / (10.0 + iteration as f64);
                moving_average(averaged, &parameters, decay.min(warm) as f32);
                averaged.refresh();
            }
            let end_of_epoch = k + 1 == batches.len();
            if iteration % options.eval_every == 0 || end_of_epoch {
                let evaluated = averaged.as_ref().unwrap_or(&parameters);
                let dev_accuracy = accuracy(&evaluated.network(), dev);
                trained.log.push(TrainRecord {
                    epoch,
                    iteration,
                    loss: loss / seen.max(1) as f64,
                    train_accuracy: correct as f64 / seen.max(1) as f64,
                    dev_accuracy,
                    seconds: started.elapsed().as_secs_f64(),
                });
                tracing::info!(
                    epoch,
                    loss = format!("{:.4}", loss / seen.max(1) as f64),
                    dev_accuracy = format!("{:.4}", dev_accuracy),
                    "training: iteration {iteration} of {total_iterations}"
                );
                progress.message(&format!("epoch {epoch}, dev accuracy {dev_accuracy:.4}"));
                (loss, correct, seen) = (0.0, 0, 0);
                if dev_accuracy > trained.best_dev_accuracy {
                    trained.best_dev_accuracy = dev_accuracy;
                    trained.best_iteration = iteration;
                    trained.parameters = evaluated.clone();
                }
            }
        }
    }
    trained
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task a small LSTM learns in a few epochs: the label is whether token 1 occurs.
    fn toy(n: usize, seed: u64) -> Vec<Example> {
        let mut rng = SplitMix64(seed);
        (0..n)
            .map(|_| {
                let len = 2 + rng.below(5);
                let ids: Vec<usize> = (0..len).map(|_| 1 + rng.below(9)).collect();
                let label = usize::from(ids.contains(&1));
                Example { ids, label }
            })
            .collect()
    }

    fn parameters() -> LstmParameters<f32> {
        let mut rng = SplitMix64(4);
        let embedding = (0..10 * 6).map(|_| rng.normal() as f32).collect();
        LstmParameters::initialise(embedding, 6, 8, 2, 2, crate::model::Initialisation::Pytorch)
    }

    const OPTIONS: TrainOptions = TrainOptions {
        epochs: 6,
        batch_size: 40,
        learning_rate: 0.01,
        seed: 7,
        eval_every: 1000,
        average: None,
    };

    #[test]
    fn learns_a_toy_task() {
        let trained = train(parameters(), &toy(2000, 1), &toy(300, 2), &OPTIONS);
        assert!(trained.best_dev_accuracy > 0.95, "{:?}", trained.log);
        assert!(trained.log.first().unwrap().loss > trained.log.last().unwrap().loss);
    }

    fn rnn(cell: crate::model::CellKind, layers: usize, bidirectional: bool) -> RnnClassifier<f32> {
        let architecture = crate::model::Architecture {
            cell,
            layers,
            bidirectional,
        };
        RnnClassifier::seeded_random(architecture, 10, 6, 8, 2, 2)
    }

    #[test]
    fn stacked_bidirectional_and_gru_models_learn_a_toy_task() {
        use crate::model::CellKind::{Gru, Lstm};
        for model in [rnn(Gru, 1, false), rnn(Lstm, 2, true), rnn(Gru, 2, true)] {
            let architecture = model.architecture();
            let trained = train(model, &toy(2000, 1), &toy(300, 2), &OPTIONS);
            assert!(
                trained.best_dev_accuracy > 0.95,
                "{architecture}: {:?}",
                trained.log
            );
        }
    }

    #[test]
    fn rnn_weights_do_not_depend_on_thread_count() {
        let data = toy(300, 3);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    train(
                        rnn(crate::model::CellKind::Gru, 2, true),
                        &data,
                        &data[..50],
                        &OPTIONS,
                    )
                    .parameters
                })
        };
        let bits = |p: &RnnClassifier<f32>| -> Vec<u32> {
            p.tensors()
                .iter()
                .flat_map(|t| t.iter().map(|v| v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&run(1)), bits(&run(3)));
    }

    #[test]
    fn every_epoch_cuts_the_same_number_of_batches() {
        let data = toy(600, 5);
        let mut rng = SplitMix64(1);
        let expected = batches_per_epoch(&data, 40);
        for _ in 0..3 {
            assert_eq!(epoch_batches(&data, 40, &mut rng).len(), expected);
        }
    }

    #[test]
    fn weights_do_not_depend_on_thread_count() {
        let data = toy(600, 3);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| train(parameters(), &data, &data[..100], &OPTIONS).parameters)
        };
        let bits = |p: &LstmParameters<f32>| -> Vec<u32> {
            p.tensors()
                .iter()
                .flat_map(|t| t.iter().map(|v| v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&run(1)), bits(&run(3)));
    }
}
