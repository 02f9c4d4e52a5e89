//! `report`: the run's report (`cd-pipeline report`) made from its tables once they are
//! published, so a pipeline ends with its figures.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{PipelineFile, PlanContext, RunContext, Stage, StagePlan, StageRef};
use crate::Error;
use crate::config::ConfigError;
use crate::report;

/// Options of a `report` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportStage {
    /// The page to write, relative to the pipeline file's folder; the figures go beside it
    /// (default: `report/index.html` in the output folder).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// The sentences coloured word by word and drawn as hierarchies, as `id` or `input/id`
    /// (default: the paper's examples when present, else short ones with a negation).
    #[serde(default)]
    pub sentences: Vec<String>,
}

const DEFAULT_PAGE: &str = "report/index.html";

impl ReportStage {
    /// The page: absolute when given, else relative to the output folder.
    fn page(&self, config: &PipelineFile) -> PathBuf {
        match &self.output {
            Some(path) => crate::config::lexically_normal(&config.folder.join(path)),
            None => PathBuf::from(DEFAULT_PAGE),
        }
    }
}

impl Stage for ReportStage {
    fn plan(
        &self,
        stage: &StageRef<'_>,
        context: &PlanContext<'_>,
    ) -> Result<StagePlan, ConfigError> {
        let page = self.page(context.config);
        if page.extension().and_then(|e| e.to_str()) != Some("html") {
            return Err(stage.invalid("output", "an .html file".into()));
        }
        Ok(StagePlan::without_table(format!(
            "report: the figures and tables of this run's tables -> {}",
            page.display()
        ))
        .with_file(page.display().to_string()))
    }

    fn run(&self, _stage: &StageRef<'_>, _context: &mut RunContext) -> Result<(), Error> {
        Ok(())
    }

    fn after_publish(
        &self,
        _stage: &StageRef<'_>,
        config: &PipelineFile,
        output_dir: &Path,
    ) -> Result<(), Error> {
        let options = report::ReportOptions {
            sentences: self.sentences.clone(),
        };
        let made = report::build(output_dir, &options)?;
        let page = output_dir.join(self.page(config));
        report::write(&made, &page)?;
        tracing::info!(
            figures = made.figures.len(),
            "report written to {}",
            page.display()
        );
        Ok(())
    }
}
