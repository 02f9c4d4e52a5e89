//! `train_logreg`: the paper's gold-standard linear models, L2-regularised logistic regression
//! on binary bags of n-grams, with the regularisation strength chosen on dev accuracy. Writes the
//! coefficients (`<stage>.parquet`) and the accuracies (`<stage>_eval.parquet`); later stages find
//! the coefficients under the stage's name.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Deserialize;

use super::examples::{
    LabelledText, distinct, sentence_texts, training_plan, training_texts, write_evaluations,
};
use super::{
    Artefact, Coefficients, PlanContext, Provides, RunContext, Stage, StagePlan, StageRef,
};
use crate::Error;
use crate::config::ConfigError;
use crate::io::{CoefficientRecord, EvalRecord, coefficients_batch, coefficients_schema};
use crate::model::{LogisticRegression, NgramFeatures, SparseExample, fit, normalize_token};

/// Options of a `train_logreg` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainLogregStage {
    /// Training input: for `sst_trees` every non-neutral constituent, otherwise every labelled
    /// sentence.
    pub train: String,
    /// Input whose labelled sentences choose the regularisation strength.
    pub dev: String,
    /// Further inputs to evaluate on.
    #[serde(default)]
    pub test: Vec<String>,
    /// Longest n-gram: 1 for a bag of words, 3 for uni- to trigrams.
    #[serde(default = "default_max_n")]
    pub max_n: usize,
    /// Train on each distinct (text, label) pair once, as GLUE's SST-2 phrase set does.
    #[serde(default)]
    pub unique: bool,
    /// Feature values: `binary` (presence, the default) or `counts`.
    #[serde(default)]
    pub values: FeatureValues,
    /// Candidate L2 strengths (on the mean log-loss); the best on dev is kept.
    #[serde(default = "default_l2")]
    pub l2: Vec<f64>,
}

/// How an n-gram's occurrences in a text become its feature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureValues {
    #[default]
    Binary,
    Counts,
}

fn default_max_n() -> usize {
    1
}

fn default_l2() -> Vec<f64> {
    vec![1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3]
}

impl Stage for TrainLogregStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        if !(1..=5).contains(&self.max_n) {
            return Err(ConfigError::Invalid {
                key: stage.key("max_n"),
                message: "an n-gram length from 1 to 5".into(),
            });
        }
        if self.l2.is_empty() || self.l2.iter().any(|l| !(*l >= 0.0 && l.is_finite())) {
            return Err(ConfigError::Invalid {
                key: stage.key("l2"),
                message: "list one or more non-negative strengths".into(),
            });
        }
        let summary = format!(
            "train_logreg: logistic regression on {} of {}, L2 chosen on {} among {} strengths -> {}.parquet, {}_eval.parquet",
            if self.max_n == 1 {
                "a bag of words".to_string()
            } else {
                format!("1- to {}-grams", self.max_n)
            },
            self.train,
            self.dev,
            self.l2.len(),
            stage.name,
            stage.name
        );
        training_plan(
            stage,
            context,
            (&self.train, &self.dev, &self.test),
            summary,
            coefficients_schema(),
            Provides::Coefficients { max_n: self.max_n },
        )
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let mut features = NgramFeatures::new(self.max_n);
        let mut featurize = |texts: Vec<LabelledText<'_>>, grow: bool| -> Vec<SparseExample> {
            texts
                .iter()
                .map(|text| {
                    let tokens: Vec<String> =
                        text.tokens.iter().map(|t| normalize_token(t)).collect();
                    SparseExample {
                        features: features.featurize(
                            &tokens,
                            grow,
                            self.values == FeatureValues::Counts,
                        ),
                        label: text.label,
                    }
                })
                .collect()
        };
        let mut texts = training_texts(context.corpus(&self.train));
        if self.unique {
            texts = distinct(texts);
        }
        tracing::info!(
            examples = texts.len(),
            "stage {}: training texts",
            stage.name
        );
        let train = featurize(texts, true);
        let dev = featurize(sentence_texts(context.corpus(&self.dev)), false);
        let tests: Vec<Vec<SparseExample>> = self
            .test
            .iter()
            .map(|input| featurize(sentence_texts(context.corpus(input)), false))
            .collect();
        let width = features.terms.len();
        // Every candidate strength is fitted independently, so in parallel; the first best wins.
        let fitted: Vec<(LogisticRegression, f64)> = self
            .l2
            .par_iter()
            .map(|&l2| {
                let model = fit(&train, width, l2);
                let accuracy = model.accuracy(&dev);
                (model, accuracy)
            })
            .collect();
        for (model, accuracy) in &fitted {
            tracing::info!(
                l2 = model.l2,
                iterations = model.iterations,
                dev_accuracy = format!("{accuracy:.4}"),
                "stage {}: fitted",
                stage.name
            );
        }
        let (model, _) = fitted
            .iter()
            .fold(
                None,
                |best: Option<&(LogisticRegression, f64)>, candidate| match best {
                    Some(b) if b.1 >= candidate.1 => Some(b),
                    _ => Some(candidate),
                },
            )
            .expect("at least one strength");

        let mut rows = Vec::new();
        for (input, examples) in std::iter::once(&self.dev)
            .chain(&self.test)
            .zip(std::iter::once(&dev).chain(&tests))
        {
            let corpus = context.corpus(input);
            rows.push(EvalRecord {
                model: stage.name.to_string(),
                dataset: corpus.name.clone(),
                split: corpus.split.clone(),
                examples: examples.len(),
                accuracy: model.accuracy(examples),
                l2: Some(model.l2),
                cache_key: None,
                reused: false,
            });
            tracing::info!(
                accuracy = format!("{:.4}", model.accuracy(examples)),
                "stage {}: evaluated on {input}",
                stage.name
            );
        }
        let mut coefficients: Vec<CoefficientRecord> = features
            .terms
            .iter()
            .zip(&model.weights)
            .map(|((term, n), &coefficient)| CoefficientRecord {
                term: term.clone(),
                n: *n,
                coefficient,
            })
            .collect();
        coefficients.push(CoefficientRecord {
            term: String::new(),
            n: 0,
            coefficient: model.intercept,
        });
        context.artefacts.insert(
            stage.name,
            Artefact::Coefficients(Coefficients {
                max_n: self.max_n,
                counts: self.values == FeatureValues::Counts,
                terms: coefficients
                    .iter()
                    .map(|c| (c.term.clone(), c.coefficient))
                    .collect::<HashMap<_, _>>(),
            }),
        );
        context.write_table(
            stage,
            coefficients_schema(),
            vec![coefficients_batch(&coefficients)?],
        )?;
        write_evaluations(stage, context, &rows)?;
        Ok(())
    }
}
