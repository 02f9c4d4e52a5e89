//! The few numbers `run` prints when it ends: each model's accuracies, each KS statistic and each
//! word-score correlation of the run's tables.

use std::path::Path;

use super::tables::{self, Columns};
use super::{ReportError, files_of};
use crate::io::{aggregate_stats_schema, model_eval_schema, unigram_correlations_schema};

fn label(c: &Columns, row: usize) -> String {
    let method = c.text("method", row).unwrap_or("?");
    match c.text("variant", row) {
        Some(v) if !v.is_empty() && !v.contains('=') => format!("{method} ({v})"),
        _ => method.to_string(),
    }
}

/// One line per model, per `aggregate` stage with a KS statistic and per correlation stage.
pub fn headlines(run_dir: &Path) -> Result<Vec<String>, ReportError> {
    let files = tables::list(run_dir)?;
    let mut lines = Vec::new();
    for file in files_of(&files, &model_eval_schema()) {
        let c = file.read(&["model", "dataset", "accuracy"])?;
        let accuracies: Vec<String> = (0..c.rows)
            .filter_map(|r| {
                Some(format!(
                    "{} {:.2} %",
                    c.text("dataset", r)?,
                    100.0 * c.number("accuracy", r)?
                ))
            })
            .collect();
        if let Some(model) = c.text("model", 0) {
            lines.push(format!("{model}: {}", accuracies.join(", ")));
        }
    }
    for file in files_of(&files, &aggregate_stats_schema()) {
        let c = file.read(&["method", "variant", "group", "ks_statistic"])?;
        let statistics: Vec<String> = (0..c.rows)
            .filter(|&r| c.text("group", r).is_some() && c.number("ks_statistic", r).is_some())
            .filter(|&r| r == 0 || label(&c, r) != label(&c, r - 1))
            .map(|r| {
                format!(
                    "{} {:.3}",
                    label(&c, r),
                    c.number("ks_statistic", r).unwrap_or(f64::NAN)
                )
            })
            .collect();
        if !statistics.is_empty() {
            lines.push(format!("{}: KS D {}", file.stem, statistics.join(", ")));
        }
    }
    for file in files_of(&files, &unigram_correlations_schema()) {
        let c = file.read(&["method", "variant", "unit", "pearson_r"])?;
        let correlations: Vec<String> = (0..c.rows)
            .filter(|&r| c.text("unit", r) == Some("token"))
            .filter_map(|r| Some(format!("{} {:.3}", label(&c, r), c.number("pearson_r", r)?)))
            .collect();
        if !correlations.is_empty() {
            lines.push(format!(
                "{}: r per token {}",
                file.stem,
                correlations.join(", ")
            ));
        }
    }
    Ok(lines)
}
