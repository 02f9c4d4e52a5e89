//! `cd-pipeline report`: the paper's figures and tables from a run folder's tables, as one
//! self-contained HTML page (inline SVG and style, no script, nothing fetched: it opens offline
//! and can be mailed) and each figure also as its own SVG file.
//!
//! Tables are recognised by their schema and the stage kind in their metadata, not by file name,
//! so any pipeline's stages show; a section is present when its tables are.

mod figures;
mod headlines;
mod sections;
mod tables;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use figures::Bins;
pub use headlines::headlines;
use tables::TableFile;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the run folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
    #[error("{path}: no Parquet tables of a cd-pipeline run here")]
    Empty { path: PathBuf },
    #[error("{path}: {source}")]
    RunRecord {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("drawing a figure: {0}")]
    Draw(String),
    #[error("the page template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A figure: its SVG and the numbers it shows, which the page also carries as `data-` attributes
/// so that they can be checked against the tables.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// File stem of its SVG and the page's element id.
    pub id: String,
    pub title: String,
    pub caption: String,
    pub svg: String,
    pub data: Vec<(String, String)>,
}

/// A made report: the page and its figures.
#[derive(Debug)]
pub struct Report {
    pub pipeline: String,
    pub html: String,
    pub figures: Vec<Figure>,
}

/// What a report shows beyond its tables' defaults.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The sentences to colour word by word and to draw the hierarchies of, as `id` or
    /// `input/id` (default: those holding the paper's example phrases, then the shortest of 8
    /// to 25 words with a negation or contrast word, three per input).
    pub sentences: Vec<String>,
}

impl ReportOptions {
    /// Whether sentence `id` of input `dataset` is among the chosen ones.
    fn chooses(&self, dataset: &str, id: &str) -> bool {
        self.sentences.iter().any(|w| {
            w == id || w.strip_prefix(dataset).and_then(|r| r.strip_prefix('/')) == Some(id)
        })
    }
}

/// Reads the tables of `run_dir` and lays out the report.
pub fn build(run_dir: &Path, options: &ReportOptions) -> Result<Report, ReportError> {
    let files = tables::list(run_dir)?;
    if files.is_empty() {
        return Err(ReportError::Empty {
            path: run_dir.to_path_buf(),
        });
    }
    let page = sections::Page::read(run_dir, &files, options)?;
    let figures = page.figures();
    let mut environment = minijinja::Environment::new();
    environment.add_template("page.html", include_str!("page.html"))?;
    let html = environment
        .get_template("page.html")?
        .render(minijinja::context! { page => &page })?;
    Ok(Report {
        pipeline: page.pipeline.clone(),
        html,
        figures,
    })
}

/// Writes the page to `output` and each figure beside it as `<id>.svg`, each under a temporary
/// name first, so that no half-written file is ever visible.
pub fn write(report: &Report, output: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let folder = output.parent().unwrap_or(Path::new("."));
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    std::fs::create_dir_all(folder).map_err(write_error(folder))?;
    let mut files: Vec<(PathBuf, &str)> = report
        .figures
        .iter()
        .map(|f| (folder.join(format!("{}.svg", f.id)), f.svg.as_str()))
        .collect();
    files.push((output.to_path_buf(), &report.html));
    for (path, contents) in &files {
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, contents).map_err(write_error(path))?;
        std::fs::rename(&temporary, path).map_err(write_error(path))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// The default output file: `reports/<pipeline>/index.html`.
pub fn default_output(report: &Report) -> PathBuf {
    Path::new("reports")
        .join(&report.pipeline)
        .join("index.html")
}

fn files_of<'a>(
    files: &'a [TableFile],
    schema: &arrow_schema::SchemaRef,
) -> impl Iterator<Item = &'a TableFile> {
    files.iter().filter(move |f| f.is(schema))
}
