//! Attribution methods as typed, checked configurations, and the one factory that builds them for
//! a model: used alike by pipeline stages (`methods:` in YAML), `cd-pipeline score --method` and
//! the library.
//!
//! A method is written as a mapping, `{method: integrated_gradients, steps: 100}`, or as a spec
//! string, `integrated_gradients:steps=100,baseline=token:.` (values in YAML); both deserialise to
//! the same [`MethodConfig`].

use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

pub use super::gradient::Quadrature;
use super::gradient::{GradientXInput, IntegratedGradients};
use super::{
    Attribution, CellDecomposition, ContextualDecomposition, Convention, LeaveOneOut,
    StackedDecomposition, Target,
};
use crate::model::{Network, Vocabulary};
use crate::numeric::Real;

/// What every method's options provide: checks, defaults and the method itself.
pub trait Method: fmt::Debug + Serialize {
    /// The target used when a stage or command names none.
    fn default_target(&self) -> Target;

    /// Checks the options and that the method can attribute `target` for a model with
    /// `classes` classes.
    fn check(&self, target: Target, classes: usize) -> Result<(), String> {
        target.check(classes)
    }

    /// The `variant` column of its rows.
    fn variant(&self) -> Option<String> {
        None
    }

    /// Whether a phrase's score can differ from the sum of its words' scores, so that
    /// score(phrase) − score(its parts) measures an interaction (the paper, §4.5: CD and
    /// leave-one-out).
    fn has_interactions(&self) -> bool {
        false
    }

    /// The method for `model`; `vocab` maps tokens named in the options (a baseline token).
    fn build<'m, R: Real>(
        &self,
        model: &'m Network<R>,
        vocab: Option<&Vocabulary>,
    ) -> Result<Box<dyn Attribution + 'm>, String>;
}

/// Generates [`MethodConfig`] from one line per method: `Variant(Options) = "name"`.
macro_rules! methods {
    ($($variant:ident($options:ty) = $name:literal),* $(,)?) => {
        /// An attribution method and its options.
        #[derive(Debug, Clone, PartialEq)]
        pub enum MethodConfig {
            $($variant($options)),*
        }

        /// The method names, in registry order.
        pub const METHOD_NAMES: &[&str] = &[$($name),*];

        impl MethodConfig {
            /// The method's name, as in the `method` column.
            pub fn name(&self) -> &'static str {
                match self {
                    $(MethodConfig::$variant(_) => $name),*
                }
            }

            fn from_options<'de, D: de::Deserializer<'de>>(
                name: &str,
                options: D,
            ) -> Result<Self, D::Error> {
                match name {
                    $($name => Ok(MethodConfig::$variant(<$options>::deserialize(options)?)),)*
                    other => Err(de::Error::custom(format!(
                        "unknown method `{other}`; expected one of {}",
                        METHOD_NAMES.join(", ")
                    ))),
                }
            }

            pub fn default_target(&self) -> Target {
                match self {
                    $(MethodConfig::$variant(o) => o.default_target()),*
                }
            }

            pub fn check(&self, target: Target, classes: usize) -> Result<(), String> {
                match self {
                    $(MethodConfig::$variant(o) => o.check(target, classes)),*
                }
            }

            pub fn variant(&self) -> Option<String> {
                match self {
                    $(MethodConfig::$variant(o) => o.variant()),*
                }
            }

            pub fn has_interactions(&self) -> bool {
                match self {
                    $(MethodConfig::$variant(o) => o.has_interactions()),*
                }
            }

            /// Builds the method for `model` (the one factory every front end uses).
            pub fn build<'m, R: Real>(
                &self,
                model: &'m Network<R>,
                vocab: Option<&Vocabulary>,
            ) -> Result<Box<dyn Attribution + 'm>, String> {
                match self {
                    $(MethodConfig::$variant(o) => o.build(model, vocab)),*
                }
            }

            fn options_json(&self) -> serde_json::Value {
                match self {
                    $(MethodConfig::$variant(o) => serde_json::to_value(o).expect("options serialise")),*
                }
            }
        }
    };
}

methods! {
    Cd(CdOptions) = "cd",
    LeaveOneOut(LeaveOneOutOptions) = "leave_one_out",
    GradientXInput(GradientXInputOptions) = "gradient_x_input",
    IntegratedGradients(IntegratedGradientsOptions) = "integrated_gradients",
    CellDecomposition(CellDecompositionOptions) = "cell_decomposition",
}

/// Contextual decomposition (the paper's method).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdOptions {
    /// Where the bias×bias product goes.
    #[serde(default)]
    pub convention: Convention,
    /// Whether each span's score carries β_T (hidden-size) as its embedding, for similar phrases
    /// (paper §4.6); the scores are the same either way.
    #[serde(default)]
    pub beta: bool,
}

impl Method for CdOptions {
    fn default_target(&self) -> Target {
        Target::LogitDiff
    }

    fn has_interactions(&self) -> bool {
        true
    }

    fn check(&self, target: Target, classes: usize) -> Result<(), String> {
        target.check(classes)?;
        linear_only("cd", target)
    }

    fn variant(&self) -> Option<String> {
        Some(self.convention.name().to_string())
    }

    fn build<'m, R: Real>(
        &self,
        model: &'m Network<R>,
        _vocab: Option<&Vocabulary>,
    ) -> Result<Box<dyn Attribution + 'm>, String> {
        Ok(match model {
            Network::Lstm(model) => {
                let cd = ContextualDecomposition::new(model, self.convention);
                Box::new(if self.beta { cd.with_beta() } else { cd })
            }
            Network::Rnn(model) => {
                let cd = StackedDecomposition::new(model, self.convention);
                Box::new(if self.beta { cd.with_beta() } else { cd })
            }
        })
    }
}

fn linear_only(method: &str, target: Target) -> Result<(), String> {
    if target.is_linear() {
        Ok(())
    } else {
        Err(format!(
            "{method} decomposes the logits, so its target is logit_diff, logit:K or predicted, not {target}"
        ))
    }
}

/// Leave-one-out: F(x) − F(x with the span's embedding rows zeroed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveOneOutOptions {}

impl Method for LeaveOneOutOptions {
    /// The paper: the change in the log probability (of the positive class, spec §5.4).
    fn default_target(&self) -> Target {
        Target::LogProb(1)
    }

    fn has_interactions(&self) -> bool {
        true
    }

    fn build<'m, R: Real>(
        &self,
        model: &'m Network<R>,
        _vocab: Option<&Vocabulary>,
    ) -> Result<Box<dyn Attribution + 'm>, String> {
        Ok(Box::new(LeaveOneOut::new(model.classifier())))
    }
}

/// Gradient × input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradientXInputOptions {}

impl Method for GradientXInputOptions {
    /// The paper: the gradient of the output probability (of the positive class, spec §5.4).
    fn default_target(&self) -> Target {
        Target::Prob(1)
    }

    fn build<'m, R: Real>(
        &self,
        model: &'m Network<R>,
        _vocab: Option<&Vocabulary>,
    ) -> Result<Box<dyn Attribution + 'm>, String> {
        Ok(Box::new(GradientXInput::new(model.classifier())))
    }
}

/// The point integrated gradients start from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Baseline {
    /// Zero embedding rows (the IG paper's baseline for text).
    #[default]
    Zero,
    /// The embedding of one token at every position (ACD's code uses `.`).
    Token(String),
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Baseline::Zero => f.write_str("zero"),
            Baseline::Token(token) => write!(f, "token:{token}"),
        }
    }
}

impl FromStr for Baseline {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "zero" => Ok(Baseline::Zero),
            _ => match text.strip_prefix("token:") {
                Some(token) if !token.is_empty() => Ok(Baseline::Token(token.to_string())),
                _ => Err(format!(
                    "unknown baseline `{text}`; expected zero or token:TOKEN"
                )),
            },
        }
    }
}

impl Serialize for Baseline {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Baseline {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

/// Integrated gradients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegratedGradientsOptions {
    /// Points of the path.
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default)]
    pub quadrature: Quadrature,
    #[serde(default)]
    pub baseline: Baseline,
}

fn default_steps() -> usize {
    50
}

impl Default for IntegratedGradientsOptions {
    fn default() -> Self {
        Self {
            steps: default_steps(),
            quadrature: Quadrature::default(),
            baseline: Baseline::default(),
        }
    }
}

/// More points than this only repeats work: Gauss-Legendre is exact to f64 rounding long before.
const MAX_STEPS: usize = 10_000;

impl Method for IntegratedGradientsOptions {
    /// The paper's gradient methods take the probability (of the positive class, spec §5.4).
    fn default_target(&self) -> Target {
        Target::Prob(1)
    }

    fn check(&self, target: Target, classes: usize) -> Result<(), String> {
        target.check(classes)?;
        let fewest = match self.quadrature {
            Quadrature::GaussLegendre => 1,
            Quadrature::RiemannTrapezoid => 2,
        };
        if !(fewest..=MAX_STEPS).contains(&self.steps) {
            return Err(format!(
                "steps: {} takes {fewest} to {MAX_STEPS} points, not {}",
                self.quadrature.name(),
                self.steps
            ));
        }
        Ok(())
    }

    fn variant(&self) -> Option<String> {
        Some(format!(
            "steps={},quadrature={},baseline={}",
            self.steps,
            self.quadrature.name(),
            self.baseline
        ))
    }

    fn build<'m, R: Real>(
        &self,
        model: &'m Network<R>,
        vocab: Option<&Vocabulary>,
    ) -> Result<Box<dyn Attribution + 'm>, String> {
        let token = match &self.baseline {
            Baseline::Zero => None,
            Baseline::Token(token) => {
                let vocab =
                    vocab.ok_or("a token baseline needs the model's vocabulary".to_string())?;
                Some(vocab.find(token).ok_or_else(|| {
                    format!(
                        "baseline: token `{token}` is not in the vocabulary {}",
                        vocab.path().display()
                    )
                })?)
            }
        };
        Ok(Box::new(IntegratedGradients::new(
            model.classifier(),
            self.steps,
            self.quadrature,
            token,
            self.variant().expect("integrated gradients have a variant"),
        )))
    }
}

/// Cell decomposition (Murdoch & Szlam 2017).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellDecompositionOptions {}

impl Method for CellDecompositionOptions {
    fn default_target(&self) -> Target {
        Target::LogitDiff
    }

    fn check(&self, target: Target, classes: usize) -> Result<(), String> {
        target.check(classes)?;
        linear_only("cell_decomposition", target)
    }

    fn build<'m, R: Real>(
        &self,
        model: &'m Network<R>,
        _vocab: Option<&Vocabulary>,
    ) -> Result<Box<dyn Attribution + 'm>, String> {
        match model {
            Network::Lstm(model) => Ok(Box::new(CellDecomposition::new(model))),
            Network::Rnn(model) => Err(format!(
                "cell_decomposition is defined for one-layer unidirectional LSTMs only; this model is a {}",
                model.architecture()
            )),
        }
    }
}

impl MethodConfig {
    /// The target the method attributes under a stage's (or command's) `target`, if any.
    pub fn target(&self, chosen: Option<Target>) -> Target {
        chosen.unwrap_or_else(|| self.default_target())
    }
}

/// A method built for a model, with the target it attributes.
pub type BuiltMethod<'m> = (Box<dyn Attribution + 'm>, Target);

/// Builds each method for `model` with the target it attributes (`target`, else the method's
/// default), checking every method first; a method given twice with the same target runs once.
pub fn build_methods<'m, R: Real>(
    configs: &[MethodConfig],
    target: Option<Target>,
    model: &'m Network<R>,
    vocab: Option<&Vocabulary>,
) -> Result<Vec<BuiltMethod<'m>>, String> {
    let mut distinct: Vec<(&MethodConfig, Target)> = Vec::new();
    for config in configs {
        let chosen = config.target(target);
        config
            .check(chosen, model.num_classes())
            .map_err(|e| format!("{config}: {e}"))?;
        if !distinct.contains(&(config, chosen)) {
            distinct.push((config, chosen));
        }
    }
    distinct
        .into_iter()
        .map(|(config, chosen)| {
            Ok((
                config
                    .build(model, vocab)
                    .map_err(|e| format!("{config}: {e}"))?,
                chosen,
            ))
        })
        .collect()
}

/// The spec string: the name, then every option that differs from its default
/// (`integrated_gradients:steps=100`).
impl fmt::Display for MethodConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        let defaults = MethodConfig::from_options(
            self.name(),
            de::value::MapDeserializer::<_, de::value::Error>::new(std::iter::empty::<(
                String,
                String,
            )>()),
        )
        .expect("every method has defaults")
        .options_json();
        let (serde_json::Value::Object(options), serde_json::Value::Object(defaults)) =
            (self.options_json(), defaults)
        else {
            return Ok(());
        };
        let mut separator = ':';
        for (key, value) in &options {
            if defaults.get(key) != Some(value) {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                write!(f, "{separator}{key}={text}")?;
                separator = ',';
            }
        }
        Ok(())
    }
}

/// `name` or `name:key=value,key=value`, each value read as YAML.
impl FromStr for MethodConfig {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (name, options) = spec.split_once(':').unwrap_or((spec, ""));
        let mut map = serde_json::Map::new();
        for assignment in options.split(',').filter(|a| !a.is_empty()) {
            let (key, value) = assignment.split_once('=').ok_or_else(|| {
                format!("method `{spec}`: expected key=value, found `{assignment}`")
            })?;
            let value: serde_json::Value = serde_saphyr::from_str(value)
                .map_err(|e| format!("method `{spec}`: {key}: {e}"))?;
            map.insert(key.trim().to_string(), value);
        }
        MethodConfig::from_options(name.trim(), serde_json::Value::Object(map))
            .map_err(|e| format!("method `{spec}`: {e}"))
    }
}

/// A spec string, or a mapping that starts with `method` and goes on with its options (read
/// without buffering, so errors inside keep their line and column).
impl<'de> Deserialize<'de> for MethodConfig {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MethodVisitor;
        impl<'de> Visitor<'de> for MethodVisitor {
            type Value = MethodConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a method: `name`, `name:key=value,...`, or {method: name, options...}")
            }

            fn visit_str<E: de::Error>(self, spec: &str) -> Result<MethodConfig, E> {
                spec.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MethodConfig, A::Error> {
                match map.next_key::<String>()?.as_deref() {
                    Some("method") => {
                        let name: String = map.next_value()?;
                        MethodConfig::from_options(
                            &name,
                            de::value::MapAccessDeserializer::new(map),
                        )
                    }
                    _ => Err(de::Error::custom(
                        "a method mapping starts with `method`, then its options",
                    )),
                }
            }
        }
        deserializer.deserialize_any(MethodVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_mappings_give_the_same_configs() {
        let spec: MethodConfig = "integrated_gradients:steps=100,baseline=token:."
            .parse()
            .unwrap();
        let mapping: MethodConfig = serde_saphyr::from_str(
            "{method: integrated_gradients, steps: 100, baseline: 'token:.'}",
        )
        .unwrap();
        assert_eq!(spec, mapping);
        assert_eq!(
            spec,
            MethodConfig::IntegratedGradients(IntegratedGradientsOptions {
                steps: 100,
                quadrature: Quadrature::GaussLegendre,
                baseline: Baseline::Token(".".into()),
            })
        );
        assert_eq!(
            spec.to_string(),
            "integrated_gradients:steps=100,baseline=token:."
        );
        assert_eq!(spec.to_string().parse::<MethodConfig>().unwrap(), spec);
        let cd: MethodConfig = serde_saphyr::from_str("cd:convention=acd").unwrap();
        assert_eq!(
            cd,
            MethodConfig::Cd(CdOptions {
                convention: Convention::Acd,
                beta: false,
            })
        );
        assert_eq!("cd".parse::<MethodConfig>().unwrap().to_string(), "cd");
        for name in METHOD_NAMES {
            assert_eq!(name.parse::<MethodConfig>().unwrap().name(), *name);
        }
    }

    #[test]
    fn bad_methods_are_named() {
        let error = "saliency".parse::<MethodConfig>().unwrap_err();
        assert!(
            error.contains("unknown method `saliency`; expected one of cd, leave_one_out"),
            "{error}"
        );
        let error = "leave_one_out:steps=3".parse::<MethodConfig>().unwrap_err();
        assert!(error.contains("unknown field `steps`"), "{error}");
        let error = "integrated_gradients:quadrature=simpson"
            .parse::<MethodConfig>()
            .unwrap_err();
        assert!(error.contains("simpson"), "{error}");
        let zero_steps: MethodConfig = "integrated_gradients:steps=0".parse().unwrap();
        assert!(zero_steps.check(Target::Prob(1), 2).is_err());
        let cd: MethodConfig = "cd".parse().unwrap();
        assert!(
            cd.check(Target::Prob(1), 2)
                .unwrap_err()
                .contains("decomposes the logits")
        );
        assert!(cd.check(Target::LogitDiff, 2).is_ok());
        assert_eq!(cd.default_target(), Target::LogitDiff);
        assert_eq!(
            "leave_one_out"
                .parse::<MethodConfig>()
                .unwrap()
                .default_target(),
            Target::LogProb(1)
        );
    }
}
