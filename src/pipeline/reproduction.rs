//! `reproduction`: every number of the paper beside ours, from the tables of earlier analysis
//! stages: word-score correlations (Table 4), compositionality's one-sided KS statistic (Fig. 3),
//! and, where the paper reports no number (negation, Fig. 1; dissenting subphrases, Fig. 2), our
//! separation statistics alone.

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use serde::Deserialize;

use super::{ArtefactKind, PlanContext, Provides, RunContext, Stage, StagePlan, StageRef};
use crate::Error;
use crate::config::ConfigError;
use crate::io::{
    ReproductionRecord, aggregate_stats_schema, reproduction_batch, reproduction_schema,
    unigram_correlations_schema,
};

/// Options of a `reproduction` stage: the stages whose tables hold each analysis's numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReproductionStage {
    /// `unigram_correlation` stages.
    #[serde(default)]
    pub unigram_correlation: Vec<Source>,
    /// `aggregate` stages over `compositionality` tables (`value: score`, one-sided).
    #[serde(default)]
    pub compositionality: Vec<Source>,
    /// `aggregate` stages over `negation` tables.
    #[serde(default)]
    pub negation: Vec<Source>,
    /// `aggregate` stages over `dissenting_subphrases` tables (`value: subphrase_score`).
    #[serde(default)]
    pub dissenting_subphrases: Vec<Source>,
}

/// An earlier stage and the paper's dataset its numbers stand beside.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub stage: String,
    pub dataset: PaperDataset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaperDataset {
    Sst,
    Yelp,
}

impl PaperDataset {
    fn name(self) -> &'static str {
        match self {
            PaperDataset::Sst => "SST",
            PaperDataset::Yelp => "Yelp",
        }
    }
}

/// The paper's Table 4 (spec §4(a)): Pearson's r of word scores and bag-of-words coefficients.
fn paper_correlation(dataset: PaperDataset, method: &str) -> Option<f64> {
    let (sst, yelp) = match method {
        "gradient_x_input" => (0.375, 0.336),
        "leave_one_out" => (0.510, 0.358),
        "cell_decomposition" => (0.490, 0.560),
        "integrated_gradients" => (0.724, 0.473),
        "cd" => (0.758, 0.520),
        _ => return None,
    };
    Some(if dataset == PaperDataset::Sst {
        sst
    } else {
        yelp
    })
}

/// The paper's Fig. 3 (spec §4(c)): the one-sided KS statistic of compositionality on SST.
fn paper_compositionality(dataset: PaperDataset, method: &str) -> Option<f64> {
    if dataset != PaperDataset::Sst {
        return None;
    }
    Some(match method {
        "cd" => 0.74,
        "gradient_x_input" => 0.61,
        "leave_one_out" => 0.58,
        "integrated_gradients" => 0.33,
        "cell_decomposition" => 0.0,
        _ => return None,
    })
}

impl ReproductionStage {
    fn sources(&self) -> impl Iterator<Item = (&'static str, &Source, SchemaRef)> {
        let correlation = self
            .unigram_correlation
            .iter()
            .map(|s| ("unigram_correlation", s, unigram_correlations_schema()));
        let aggregated = [
            ("compositionality", &self.compositionality),
            ("negation", &self.negation),
            ("dissenting_subphrases", &self.dissenting_subphrases),
        ]
        .into_iter()
        .flat_map(|(analysis, sources)| {
            sources
                .iter()
                .map(move |s| (analysis, s, aggregate_stats_schema()))
        });
        correlation.chain(aggregated)
    }
}

impl Stage for ReproductionStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        let mut plan = StagePlan::new(stage, String::new(), reproduction_schema());
        let mut names = Vec::new();
        for (analysis, source, expected) in self.sources() {
            let key = stage.key(analysis);
            let Provides::Table(schema) =
                context.provided(&key, &source.stage, ArtefactKind::Table)?
            else {
                unreachable!("a table is provided as a table");
            };
            if schema.fields() != expected.fields() {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!(
                        "stage `{}` writes no {} table",
                        source.stage,
                        if analysis == "unigram_correlation" {
                            "unigram_correlations"
                        } else {
                            "aggregate_stats"
                        }
                    ),
                });
            }
            plan = plan.reading(&source.stage, ArtefactKind::Table);
            names.push(format!("{analysis} of {}", source.stage));
        }
        if names.is_empty() {
            return Err(ConfigError::Invalid {
                key: format!("stages.{}", stage.name),
                message: "name at least one analysis stage".into(),
            });
        }
        plan.summary = format!(
            "reproduction: the paper's numbers beside ours from {} -> {}.parquet",
            names.join(", "),
            stage.name
        );
        Ok(plan)
    }

    fn run(&self, stage: &StageRef<'_>, context: &mut RunContext) -> Result<(), Error> {
        let mut rows = Vec::new();
        for (analysis, source, _) in self.sources() {
            let batches = context.artefacts.table(&source.stage);
            let dataset = source.dataset;
            for batch in batches {
                let table = Columns(batch);
                for row in 0..batch.num_rows() {
                    let method = table.text(row, "method").expect("a method in every row");
                    let variant = table.text(row, "variant");
                    let record = |metric: String, ours, paper, interval| ReproductionRecord {
                        analysis: analysis.to_string(),
                        dataset: dataset.name().to_string(),
                        method: method.clone(),
                        variant: variant.clone(),
                        metric,
                        ours,
                        paper,
                        interval,
                        source: source.stage.clone(),
                    };
                    if analysis == "unigram_correlation" {
                        let unit = table.text(row, "unit").expect("a unit in every row");
                        let interval = table
                            .number(row, "ci_low")
                            .zip(table.number(row, "ci_high"));
                        let paper = (unit == "token")
                            .then(|| paper_correlation(dataset, &method))
                            .flatten();
                        rows.push(record(
                            format!("pearson_r per {unit}"),
                            table.number(row, "pearson_r"),
                            paper,
                            interval,
                        ));
                        continue;
                    }
                    // Aggregated analyses: each group's mean, and the pair's statistic once (from
                    // the row of its first group).
                    let group = table.text(row, "group").expect("a group in every row");
                    rows.push(record(
                        format!("mean {group}"),
                        table.number(row, "mean"),
                        None,
                        None,
                    ));
                    let compared = table.text(row, "compared_with");
                    let first_of_pair = compared.as_ref().is_some_and(|other| group < *other);
                    if let (true, Some(d)) = (first_of_pair, table.number(row, "ks_statistic")) {
                        let alternative = table.text(row, "ks_alternative").unwrap_or_default();
                        let paper = (analysis == "compositionality")
                            .then(|| paper_compositionality(dataset, &method))
                            .flatten();
                        rows.push(record(
                            format!("ks_statistic ({alternative})"),
                            Some(d),
                            paper,
                            None,
                        ));
                    }
                }
            }
        }
        for row in rows.iter().filter(|r| r.paper.is_some()) {
            tracing::info!(
                "stage {}: {} {} {}{}: ours {}, the paper {}",
                stage.name,
                row.analysis,
                row.dataset,
                row.method,
                row.variant
                    .as_ref()
                    .map_or_else(String::new, |v| format!(" ({v})")),
                row.ours.map_or("-".into(), |v| format!("{v:.3}")),
                row.paper.map_or("-".into(), |v| format!("{v:.3}")),
            );
        }
        let batch = reproduction_batch(&rows)?;
        context.write_table(stage, reproduction_schema(), vec![batch])?;
        Ok(())
    }
}

/// Named columns of a batch whose schema planning checked.
struct Columns<'a>(&'a RecordBatch);

impl Columns<'_> {
    fn text(&self, row: usize, name: &str) -> Option<String> {
        let column = self
            .0
            .column_by_name(name)
            .expect("planned: the column exists");
        (!column.is_null(row)).then(|| column.as_string::<i32>().value(row).to_string())
    }

    fn number(&self, row: usize, name: &str) -> Option<f64> {
        let column = self
            .0
            .column_by_name(name)
            .expect("planned: the column exists");
        (!column.is_null(row)).then(|| column.as_primitive::<Float64Type>().value(row))
    }
}
