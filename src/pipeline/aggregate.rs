//! `aggregate`: the distribution of one numeric column of an earlier stage's table per method
//! (with its variant and target) and group, and optionally the two-sample Kolmogorov-Smirnov statistic between two
//! groups (positive against negative negations, say).

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use serde::Deserialize;

use super::{ArtefactKind, PlanContext, Provides, RunContext, Stage, StagePlan, StageRef};
use crate::Error;
use crate::analysis::stats::{kolmogorov_smirnov, kolmogorov_smirnov_greater, summarize};
use crate::config::ConfigError;
use crate::io::{StatsRecord, aggregate_stats_batch, aggregate_stats_schema};

/// Options of an `aggregate` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateStage {
    /// An earlier stage whose table has `method`, `variant` and `target` columns.
    pub input: String,
    /// A Float32 or Float64 column of that table.
    #[serde(default = "default_value")]
    pub value: String,
    /// A string column of that table; rows where it is null are left out.
    #[serde(default = "default_group_by")]
    pub group_by: String,
    /// Two groups to compare with the Kolmogorov-Smirnov test.
    #[serde(default)]
    pub compare: Option<[String; 2]>,
    /// With `compare: [a, b]`, the one-sided statistic D⁺ = sup_x [F_b(x) − F_a(x)], large when
    /// group `a` scores higher (the paper's compositionality statistic), instead of the two-sided.
    #[serde(default)]
    pub one_sided: bool,
}

fn default_value() -> String {
    "interaction".into()
}

fn default_group_by() -> String {
    "kind".into()
}

impl Stage for AggregateStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        let Provides::Table(schema) =
            context.provided(&stage.key("input"), &self.input, ArtefactKind::Table)?
        else {
            unreachable!("a table is provided as a table");
        };
        let column = |option: &str, name: &str, accepts: &dyn Fn(&DataType) -> bool, what: &str| {
            match schema.field_with_name(name) {
                Ok(field) if accepts(field.data_type()) => Ok(()),
                Ok(field) => Err(ConfigError::Invalid {
                    key: stage.key(option),
                    message: format!(
                        "column `{name}` of stage `{}` is {}, not {what}",
                        self.input,
                        field.data_type()
                    ),
                }),
                Err(_) => Err(ConfigError::Invalid {
                    key: stage.key(option),
                    message: format!("stage `{}` has no column `{name}`", self.input),
                }),
            }
        };
        let is_float = |t: &DataType| matches!(t, DataType::Float32 | DataType::Float64);
        let is_text = |t: &DataType| matches!(t, DataType::Utf8);
        column("value", &self.value, &is_float, "a float")?;
        column("group_by", &self.group_by, &is_text, "a string")?;
        for name in ["method", "variant", "target"] {
            column("input", name, &is_text, "a string")?;
        }
        if self.one_sided && self.compare.is_none() {
            return Err(ConfigError::Invalid {
                key: stage.key("one_sided"),
                message: "needs `compare: [a, b]`".into(),
            });
        }
        let compare = self.compare.as_ref().map_or_else(String::new, |[a, b]| {
            let sided = if self.one_sided { "one-sided " } else { "" };
            format!(", {sided}Kolmogorov-Smirnov {a} vs {b}")
        });
        Ok(StagePlan::new(
            stage,
            format!(
                "aggregate: {} of {} by method, variant, target and {}{compare} -> {}.parquet",
                self.value, self.input, self.group_by, stage.name
            ),
            aggregate_stats_schema(),
        )
        .reading(&self.input, ArtefactKind::Table))
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let mut samples: BTreeMap<SampleKey, Vec<f64>> = BTreeMap::new();
        for batch in context.artefacts.table(&self.input) {
            collect(batch, &self.value, &self.group_by, &mut samples);
        }
        let mut rows = Vec::new();
        for (key, values) in &samples {
            let mut sorted = values.clone();
            let summary = summarize(&mut sorted).expect("groups exist only with values");
            let other = self.compare.as_ref().and_then(|[a, b]| {
                if &key.group == a {
                    Some(b)
                } else if &key.group == b {
                    Some(a)
                } else {
                    None
                }
            });
            let ks = self
                .compare
                .as_ref()
                .filter(|_| other.is_some())
                .and_then(|[a, b]| {
                    let sample = |group: &String| {
                        samples.get(&SampleKey {
                            group: group.clone(),
                            ..key.clone()
                        })
                    };
                    let (first, second) = (sample(a)?, sample(b)?);
                    if self.one_sided {
                        kolmogorov_smirnov_greater(first, second)
                    } else {
                        kolmogorov_smirnov(first, second)
                    }
                });
            rows.push(StatsRecord {
                source: self.input.clone(),
                value: self.value.clone(),
                method: key.method.clone(),
                variant: key.variant.clone(),
                target: key.target.clone(),
                group_by: self.group_by.clone(),
                group: key.group.clone(),
                count: summary.count,
                mean: summary.mean,
                std: summary.std,
                quantiles: summary.quantiles,
                compared_with: other.cloned(),
                ks_alternative: other.map(|_| {
                    if self.one_sided {
                        "greater"
                    } else {
                        "two_sided"
                    }
                }),
                ks_statistic: ks.map(|(d, _)| d),
                ks_p_value: ks.map(|(_, p)| p),
            });
        }
        let batch = aggregate_stats_batch(&rows)?;
        context.write_table(stage, aggregate_stats_schema(), vec![batch])?;
        Ok(())
    }
}

/// The rows of one sample: one method, variant, target and group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SampleKey {
    method: String,
    variant: Option<String>,
    target: String,
    group: String,
}

/// Adds the batch's non-null values to their samples.
fn collect(
    batch: &RecordBatch,
    value: &str,
    group_by: &str,
    samples: &mut BTreeMap<SampleKey, Vec<f64>>,
) {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .expect("planned: the column exists")
    };
    let values: Vec<Option<f64>> = match column(value).data_type() {
        DataType::Float32 => column(value)
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        _ => column(value).as_primitive::<Float64Type>().iter().collect(),
    };
    let groups = column(group_by).as_string::<i32>();
    let methods = column("method").as_string::<i32>();
    let variants = column("variant").as_string::<i32>();
    let targets = column("target").as_string::<i32>();
    for (row, value) in values.into_iter().enumerate() {
        if let (Some(v), false) = (value, groups.is_null(row)) {
            samples
                .entry(SampleKey {
                    method: methods.value(row).to_string(),
                    variant: (!variants.is_null(row)).then(|| variants.value(row).to_string()),
                    target: targets.value(row).to_string(),
                    group: groups.value(row).to_string(),
                })
                .or_default()
                .push(v);
        }
    }
}
