//! What an attribution explains: one number computed from the model's logits (Captum's
//! `target`), chosen per scoring stage or per `score` command.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};

use crate::model::OutputFunction;

/// A function of the logits (output bias included) that a method attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The logit of class 1 minus that of class 0: the binary sentiment score (positive minus
    /// negative), CD's default.
    LogitDiff,
    /// The logit of class k.
    Logit(usize),
    /// log p(k) under the softmax of the logits.
    LogProb(usize),
    /// p(k) under the softmax of the logits.
    Prob(usize),
    /// The logit of the class the model predicts for the sentence (Captum's target = prediction).
    Predicted,
}

impl Target {
    /// Checks that the target exists for a model with `classes` classes.
    pub fn check(self, classes: usize) -> Result<(), String> {
        match self {
            Target::LogitDiff if classes != 2 => Err(format!(
                "logit_diff needs a model with 2 classes; this one has {classes}"
            )),
            Target::Logit(k) | Target::LogProb(k) | Target::Prob(k) if k >= classes => {
                Err(format!(
                    "class {k} does not exist; the model has classes 0 to {}",
                    classes - 1
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether the target is a linear function of the logits, as decompositions of the logits
    /// (CD, cell decomposition) need.
    pub fn is_linear(self) -> bool {
        matches!(
            self,
            Target::LogitDiff | Target::Logit(_) | Target::Predicted
        )
    }

    /// The function of the logits for one sentence: `logits` (the sentence's own) choose the class
    /// of [`Target::Predicted`] and give the number of classes.
    pub fn resolve(self, logits: &[f64]) -> ResolvedTarget {
        let classes = logits.len();
        let one_hot = |k: usize| (0..classes).map(|j| f64::from(u8::from(j == k))).collect();
        match self {
            Target::LogitDiff => ResolvedTarget::Linear(
                (0..classes)
                    .map(|j| match j {
                        0 => -1.0,
                        1 => 1.0,
                        _ => 0.0,
                    })
                    .collect(),
            ),
            Target::Logit(k) => ResolvedTarget::Linear(one_hot(k)),
            Target::LogProb(k) => ResolvedTarget::LogProb(k),
            Target::Prob(k) => ResolvedTarget::Prob(k),
            Target::Predicted => {
                let predicted =
                    (0..classes).fold(0, |best, k| if logits[k] > logits[best] { k } else { best });
                ResolvedTarget::Linear(one_hot(predicted))
            }
        }
    }

    /// Whether [`resolve`](Self::resolve) needs the sentence's logits (rather than their number).
    pub fn depends_on_prediction(self) -> bool {
        self == Target::Predicted
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::LogitDiff => f.write_str("logit_diff"),
            Target::Logit(k) => write!(f, "logit:{k}"),
            Target::LogProb(k) => write!(f, "log_prob:{k}"),
            Target::Prob(k) => write!(f, "prob:{k}"),
            Target::Predicted => f.write_str("predicted"),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    /// `logit_diff`, `predicted`, `logit:K`, `log_prob:K` or `prob:K`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || {
            format!(
                "unknown target `{text}`; expected logit_diff, predicted, logit:K, log_prob:K or prob:K"
            )
        };
        match text.trim() {
            "logit_diff" => return Ok(Target::LogitDiff),
            "predicted" => return Ok(Target::Predicted),
            _ => {}
        }
        let (kind, class) = text.split_once(':').ok_or_else(unknown)?;
        let class: usize = class
            .trim()
            .parse()
            .map_err(|_| format!("target `{text}`: the class is a number from 0"))?;
        Target::with_class(kind.trim(), class).ok_or_else(unknown)
    }
}

impl Target {
    fn with_class(kind: &str, class: usize) -> Option<Self> {
        match kind {
            "logit" => Some(Target::Logit(class)),
            "log_prob" => Some(Target::LogProb(class)),
            "prob" => Some(Target::Prob(class)),
            _ => None,
        }
    }
}

/// `target: log_prob:1` or `target: {log_prob: 1}` in a pipeline file.
impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetVisitor;
        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = Target;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target: logit_diff, predicted, logit:K, log_prob:K or prob:K")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Target, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Target, A::Error> {
                let kind: String = map
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("an empty mapping is not a target"))?;
                let class: usize = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("a target mapping has one key"));
                }
                Target::with_class(&kind, class).ok_or_else(|| {
                    de::Error::custom(format!(
                        "unknown target `{kind}`; expected logit, log_prob or prob with a class"
                    ))
                })
            }
        }
        deserializer.deserialize_any(TargetVisitor)
    }
}

/// A [`Target`] made concrete for one sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedTarget {
    /// Σ_j w_j logit_j.
    Linear(Vec<f64>),
    LogProb(usize),
    Prob(usize),
}

impl ResolvedTarget {
    /// The weights of a linear target.
    pub fn linear_weights(&self) -> Option<&[f64]> {
        match self {
            ResolvedTarget::Linear(weights) => Some(weights),
            _ => None,
        }
    }

    pub fn value(&self, logits: &[f64]) -> f64 {
        self.value_and_gradient(logits).0
    }
}

impl OutputFunction for ResolvedTarget {
    fn value_and_gradient(&self, logits: &[f64]) -> (f64, Vec<f64>) {
        match self {
            ResolvedTarget::Linear(weights) => (
                weights.iter().zip(logits).map(|(w, l)| w * l).sum(),
                weights.clone(),
            ),
            ResolvedTarget::LogProb(k) | ResolvedTarget::Prob(k) => {
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                let probabilities: Vec<f64> =
                    logits.iter().map(|l| (l - max).exp() / total).collect();
                let one_hot = |j: usize| f64::from(u8::from(j == *k));
                if matches!(self, ResolvedTarget::LogProb(_)) {
                    let gradient = probabilities
                        .iter()
                        .enumerate()
                        .map(|(j, p)| one_hot(j) - p)
                        .collect();
                    (logits[*k] - max - total.ln(), gradient)
                } else {
                    let p = probabilities[*k];
                    let gradient = probabilities
                        .iter()
                        .enumerate()
                        .map(|(j, q)| p * (one_hot(j) - q))
                        .collect();
                    (p, gradient)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_the_same() {
        for text in ["logit_diff", "predicted", "logit:2", "log_prob:1", "prob:0"] {
            assert_eq!(text.parse::<Target>().unwrap().to_string(), text);
        }
        assert!("prob".parse::<Target>().is_err());
        assert!("prob:x".parse::<Target>().is_err());
        assert!("margin:1".parse::<Target>().is_err());
        let parsed: Target = serde_saphyr::from_str("{log_prob: 1}").unwrap();
        assert_eq!(parsed, Target::LogProb(1));
        assert!(Target::LogitDiff.check(3).is_err());
        assert!(Target::Prob(2).check(2).is_err());
        assert!(Target::Prob(1).check(2).is_ok());
    }

    /// Values and gradients against closed forms and central differences.
    #[test]
    fn resolved_targets_have_exact_gradients() {
        let logits = [0.3, -1.2, 2.0];
        assert_eq!(
            Target::Predicted.resolve(&logits),
            ResolvedTarget::Linear(vec![0.0, 0.0, 1.0])
        );
        let p2 = 2.0f64.exp() / logits.iter().map(|l: &f64| l.exp()).sum::<f64>();
        assert!((ResolvedTarget::Prob(2).value(&logits) - p2).abs() < 1e-15);
        assert!((ResolvedTarget::LogProb(2).value(&logits) - p2.ln()).abs() < 1e-15);
        for target in [
            Target::LogitDiff,
            Target::LogProb(0),
            Target::Prob(1),
            Target::Logit(2),
        ] {
            let logits: &[f64] = if target == Target::LogitDiff {
                &logits[..2]
            } else {
                &logits
            };
            let resolved = target.resolve(logits);
            let (_, gradient) = resolved.value_and_gradient(logits);
            for (j, &exact) in gradient.iter().enumerate() {
                let step = 1e-6;
                let (mut plus, mut minus) = (logits.to_vec(), logits.to_vec());
                plus[j] += step;
                minus[j] -= step;
                let numeric = (resolved.value(&plus) - resolved.value(&minus)) / (2.0 * step);
                assert!((numeric - exact).abs() < 1e-8, "{target} class {j}");
            }
        }
    }
}
