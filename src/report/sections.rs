//! The report's sections, each read from the tables it shows.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::figures::{self, BLUE, GREY, VERMILLION};
use super::tables::{Columns, TableFile};
use super::{Figure, ReportError, ReportOptions, files_of};
use crate::analysis::stats::{kolmogorov_smirnov, kolmogorov_smirnov_greater, pearson};
use crate::io::{
    compositionality_schema, dissenting_subphrases_schema, hierarchy_schema, interactions_schema,
    model_eval_schema, negation_interactions_schema, reproduction_schema, sentences_schema,
    similar_phrases_schema, train_log_schema, word_points_schema,
};
use crate::pipeline::{MANIFEST, Manifest, utc};

/// Histogram bins of the distribution figures.
const BINS: usize = 30;
/// Points drawn per word-score panel (r and the line use every point).
const DRAWN_POINTS: usize = 500;
/// Sentences shown coloured per input, and hierarchies.
const SENTENCES: usize = 3;
/// Phrases the paper shows (its Tables 1 and 2), shown first when an input has them.
const PAPER_SENTENCES: [&str; 2] = [
    "used to be my favorite",
    "it 's easy to love robin tunney -- she 's pretty and she can act -- but it gets harder and harder to understand her choices .",
];
/// Words that make a sentence worth colouring when none of the paper's is present.
const NEGATION_WORDS: [&str; 4] = ["not", "n't", "never", "but"];

#[derive(Debug, Serialize)]
pub struct Page {
    pub pipeline: String,
    description: Option<String>,
    run: Option<RunView>,
    tables: Vec<TableRow>,
    models: Vec<ModelRow>,
    training: Vec<Figure>,
    reproduction: Vec<ReproductionRow>,
    negation: Vec<FigureGroup>,
    dissenting: Vec<FigureGroup>,
    compositionality: Vec<FigureGroup>,
    correlations: Vec<FigureGroup>,
    sentences: Vec<SentenceView>,
    phrase_sentences: Vec<SentenceView>,
    similar: Vec<SimilarView>,
    hierarchies: Vec<HierarchyView>,
    tops: Vec<TopTable>,
    version: String,
}

#[derive(Debug, Serialize)]
struct RunView {
    started: String,
    seconds: String,
    threads: usize,
    version: String,
    pipeline_file: String,
    inputs: Vec<(String, String, usize)>,
    stages: Vec<(String, String, String)>,
}

#[derive(Debug, Serialize)]
struct TableRow {
    file: String,
    stage: String,
    kind: String,
    rows: usize,
}

#[derive(Debug, Serialize)]
struct ModelRow {
    model: String,
    dataset: String,
    split: String,
    examples: String,
    accuracy: String,
    reused: String,
}

#[derive(Debug, Serialize)]
struct ReproductionRow {
    analysis: String,
    dataset: String,
    method: String,
    metric: String,
    ours: String,
    interval: String,
    paper: String,
    /// `below`, `above` or empty: ours differs from the paper beyond the interval (or by more
    /// than 0.05 where there is none).
    gap: String,
}

#[derive(Debug, Serialize)]
struct FigureGroup {
    stage: String,
    caption: String,
    figures: Vec<Figure>,
}

#[derive(Debug, Serialize)]
struct SentenceView {
    dataset: String,
    sentence_id: String,
    /// Per method, its label and the sentence's words.
    rows: Vec<(String, Vec<Coloured>)>,
}

/// A word or span with its background colour and its score as text.
#[derive(Debug, Clone, Serialize)]
struct Coloured {
    text: String,
    colour: String,
    score: String,
    /// A component ACD has joined so far (hierarchies only).
    component: bool,
}

#[derive(Debug, Serialize)]
struct SimilarView {
    stage: String,
    rows: Vec<(String, String, String)>,
}

#[derive(Debug, Serialize)]
struct HierarchyView {
    stage: String,
    sentence_id: String,
    method: String,
    levels: Vec<Vec<Coloured>>,
}

#[derive(Debug, Serialize)]
struct TopTable {
    title: String,
    rows: Vec<(String, String, String)>,
}

impl Page {
    pub fn read(
        run_dir: &Path,
        files: &[TableFile],
        options: &ReportOptions,
    ) -> Result<Page, ReportError> {
        let record_path = run_dir.join(MANIFEST);
        let record: Option<Manifest> =
            match std::fs::read(&record_path) {
                Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|source| {
                    ReportError::RunRecord {
                        path: record_path.clone(),
                        source,
                    }
                })?),
                Err(_) => None,
            };
        let pipeline = record.as_ref().map_or_else(
            || {
                run_dir
                    .file_name()
                    .map_or("run".into(), |n| n.to_string_lossy().into_owned())
            },
            |r| r.pipeline.clone(),
        );
        let (negation, mut tops) = negation(files)?;
        tops.extend(top_phrases(files)?);
        Ok(Page {
            description: record.as_ref().and_then(|r| r.description.clone()),
            run: record.as_ref().map(run_view),
            tables: files
                .iter()
                .map(|f| TableRow {
                    file: format!("{}.parquet", f.stem),
                    stage: f.stage.clone().unwrap_or_default(),
                    kind: f.stage_kind.clone().unwrap_or_default(),
                    rows: f.rows,
                })
                .collect(),
            models: models(files)?,
            training: training(files)?,
            reproduction: reproduction(files)?,
            negation,
            dissenting: distributions(
                files,
                &dissenting_subphrases_schema(),
                "subphrase_score",
                "fig2",
                "Fig. 2, dissenting subphrases: scores of positive and negative subphrases inside phrases of the other sign, in their full sentence",
            )?,
            compositionality: distributions(
                files,
                &compositionality_schema(),
                "score",
                "fig3",
                "Fig. 3, compositionality: scores of positive and negative constituents of sentences of the other label, in their full sentence",
            )?,
            correlations: correlations(files)?,
            sentences: sentences(files, options)?,
            phrase_sentences: phrase_sentences(files, options)?,
            similar: similar(files)?,
            hierarchies: hierarchies(files, options)?,
            tops,
            version: env!("CARGO_PKG_VERSION").into(),
            pipeline,
        })
    }

    /// Every figure of the page, in page order.
    pub fn figures(&self) -> Vec<Figure> {
        let groups = [
            &self.negation,
            &self.dissenting,
            &self.compositionality,
            &self.correlations,
        ];
        self.training
            .iter()
            .chain(groups.into_iter().flatten().flat_map(|g| &g.figures))
            .cloned()
            .collect()
    }
}

/// A method and its variant as one label: `cd (paper)`, `leave_one_out`, and option variants
/// by their values, `integrated_gradients (50, gausslegendre, zero)`.
fn method_label(columns: &Columns, row: usize) -> String {
    let method = columns.text("method", row).unwrap_or("?");
    match columns.text("variant", row) {
        Some(variant) if !variant.is_empty() => {
            let values: Vec<&str> = variant
                .split(',')
                .map(|option| option.split_once('=').map_or(option, |(_, value)| value))
                .collect();
            format!("{method} ({})", values.join(", "))
        }
        _ => method.to_string(),
    }
}

/// A label as a file-name-safe id part.
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_string()
}

fn fixed(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

fn join(values: impl IntoIterator<Item = impl ToString>) -> String {
    values
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_view(record: &Manifest) -> RunView {
    RunView {
        started: utc(record.started_at),
        seconds: fixed(record.seconds, 1),
        threads: record.threads,
        version: record.cd_pipeline_version.clone(),
        pipeline_file: record.pipeline_file.clone(),
        inputs: record
            .inputs
            .iter()
            .map(|i| (i.name.clone(), i.path.clone(), i.sentences))
            .collect(),
        stages: record
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.kind.clone(), fixed(s.seconds, 2)))
            .collect(),
    }
}

fn models(files: &[TableFile]) -> Result<Vec<ModelRow>, ReportError> {
    let mut rows = Vec::new();
    for file in files_of(files, &model_eval_schema()) {
        let c = file.read(&[
            "model", "dataset", "split", "examples", "accuracy", "reused",
        ])?;
        for r in 0..c.rows {
            rows.push(ModelRow {
                model: c.text("model", r).unwrap_or_default().into(),
                dataset: c.text("dataset", r).unwrap_or_default().into(),
                split: c.text("split", r).unwrap_or_default().into(),
                examples: c
                    .number("examples", r)
                    .map_or(String::new(), |x| fixed(x, 0)),
                accuracy: c
                    .number("accuracy", r)
                    .map_or(String::new(), |x| format!("{:.2} %", 100.0 * x)),
                reused: match c.flag("reused", r) {
                    Some(true) => "reused from the cache".into(),
                    Some(false) => "trained in this run".into(),
                    None => String::new(),
                },
            });
        }
    }
    Ok(rows)
}

fn training(files: &[TableFile]) -> Result<Vec<Figure>, ReportError> {
    let mut figures = Vec::new();
    for file in files_of(files, &train_log_schema()) {
        let c = file.read(&["model", "iteration", "dev_accuracy", "train_accuracy"])?;
        let mut dev = Vec::new();
        let mut train = Vec::new();
        for r in 0..c.rows {
            let Some(iteration) = c.number("iteration", r) else {
                continue;
            };
            if let Some(a) = c.number("dev_accuracy", r) {
                dev.push((iteration, a));
            }
            if let Some(a) = c.number("train_accuracy", r) {
                train.push((iteration, a));
            }
        }
        if dev.is_empty() {
            continue;
        }
        let model = c.text("model", 0).unwrap_or(&file.stem).to_string();
        let title = format!("Training of {model}");
        let svg = figures::lines(
            &title,
            ("iteration", "accuracy"),
            &[
                ("dev".into(), dev.clone()),
                ("train (recent batches)".into(), train),
            ],
        )?;
        let best = dev.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        figures.push(Figure {
            id: format!("training-{}", slug(&model)),
            title,
            caption: format!(
                "Accuracy at each dev check; the kept weights have the best dev accuracy ({:.2} %).",
                100.0 * best
            ),
            svg,
            data: vec![("dev-checks".into(), dev.len().to_string())],
        });
    }
    Ok(figures)
}

fn reproduction(files: &[TableFile]) -> Result<Vec<ReproductionRow>, ReportError> {
    let mut rows = Vec::new();
    for file in files_of(files, &reproduction_schema()) {
        let c = file.read(&[
            "analysis", "dataset", "method", "variant", "metric", "ours", "paper", "ci_low",
            "ci_high",
        ])?;
        for r in 0..c.rows {
            let ours = c.number("ours", r);
            let paper = c.number("paper", r);
            let interval = c.number("ci_low", r).zip(c.number("ci_high", r));
            let gap = match (ours, paper) {
                (Some(o), Some(p)) => {
                    let (lo, hi) = interval.unwrap_or((o - 0.05, o + 0.05));
                    if p > hi {
                        "below"
                    } else if p < lo {
                        "above"
                    } else {
                        ""
                    }
                }
                _ => "",
            };
            rows.push(ReproductionRow {
                analysis: c.text("analysis", r).unwrap_or_default().into(),
                dataset: c.text("dataset", r).unwrap_or_default().into(),
                method: method_label(&c, r),
                metric: c.text("metric", r).unwrap_or_default().into(),
                ours: ours.map_or(String::new(), |x| fixed(x, 3)),
                interval: interval.map_or(String::new(), |(lo, hi)| {
                    format!("[{}, {}]", fixed(lo, 3), fixed(hi, 3))
                }),
                paper: paper.map_or(String::new(), |x| format!("{x}")),
                gap: gap.into(),
            });
        }
    }
    Ok(rows)
}

/// A method's rows of one table: where they come from (as `data-` attributes for checking) and
/// the values of one column by `kind`.
struct MethodGroup {
    label: String,
    source: Vec<(String, String)>,
    kinds: BTreeMap<String, Vec<f64>>,
}

/// Rows of a table grouped by method and variant (in first-seen order) and by `kind`, the values
/// of column `value`.
fn by_method_and_kind(file: &TableFile, c: &Columns, value: &str) -> Vec<MethodGroup> {
    let mut groups: Vec<MethodGroup> = Vec::new();
    for r in 0..c.rows {
        let (Some(kind), Some(x)) = (c.text("kind", r), c.number(value, r)) else {
            continue;
        };
        let label = method_label(c, r);
        let position = match groups.iter().position(|g| g.label == label) {
            Some(p) => p,
            None => {
                groups.push(MethodGroup {
                    source: vec![
                        ("table".into(), file.stem.clone()),
                        ("column".into(), value.into()),
                        (
                            "method".into(),
                            c.text("method", r).unwrap_or_default().into(),
                        ),
                        (
                            "variant".into(),
                            c.text("variant", r).unwrap_or_default().into(),
                        ),
                    ],
                    label,
                    kinds: BTreeMap::new(),
                });
                groups.len() - 1
            }
        };
        groups[position]
            .kinds
            .entry(kind.to_string())
            .or_default()
            .push(x);
    }
    groups
}

/// A panel of positive against negative values (and a grey reference when given), with the KS
/// statistic, one-sided (D⁺, positive higher) or two-sided.
fn distribution_figure(
    id: String,
    group: &MethodGroup,
    x_label: &str,
    reference: Option<&[f64]>,
    one_sided: bool,
) -> Result<Figure, ReportError> {
    let (title, kinds) = (group.label.clone(), &group.kinds);
    let empty = Vec::new();
    let positive = kinds.get("positive").unwrap_or(&empty);
    let negative = kinds.get("negative").unwrap_or(&empty);
    let ks = if one_sided {
        kolmogorov_smirnov_greater(positive, negative)
    } else {
        kolmogorov_smirnov(positive, negative)
    }
    .map(|(d, _)| d);
    let mut groups = vec![
        (format!("positive ({})", positive.len()), BLUE),
        (format!("negative ({})", negative.len()), VERMILLION),
    ];
    let mut samples: Vec<&[f64]> = vec![positive, negative];
    if let Some(reference) = reference {
        groups.push((format!("all ({})", reference.len()), GREY));
        samples.push(reference);
    }
    let binned = figures::bins(&samples, BINS);
    let ks_text = ks.map_or("-".to_string(), |d| fixed(d, 3));
    let heading = format!(
        "{title}: {} = {ks_text}",
        if one_sided { "D⁺" } else { "D" }
    );
    let svg = figures::histograms(&heading, x_label, &groups, &binned)?;
    let mut data = group.source.clone();
    data.extend([
        ("edges".into(), join(binned.edges.iter())),
        ("counts-positive".into(), join(binned.counts[0].iter())),
        ("counts-negative".into(), join(binned.counts[1].iter())),
        ("ks".into(), ks.map_or(String::new(), |d| d.to_string())),
    ]);
    if reference.is_some() {
        data.push(("counts-all".into(), join(binned.counts[2].iter())));
    }
    Ok(Figure {
        id,
        title,
        caption: String::new(),
        svg,
        data,
    })
}

/// Fig. 1 (one panel per method with interactions, with the reference distribution when the
/// stage wrote one) and the strongest negations by CD.
fn negation(files: &[TableFile]) -> Result<(Vec<FigureGroup>, Vec<TopTable>), ReportError> {
    let mut groups = Vec::new();
    let mut tops = Vec::new();
    for file in files_of(files, &negation_interactions_schema()) {
        let c = file.read(&["method", "variant", "kind", "interaction", "phrase"])?;
        let stage = file.stage_name();
        let reference = files_of(files, &interactions_schema())
            .find(|f| f.stage == file.stage)
            .map(|f| f.read(&["method", "variant", "interaction"]))
            .transpose()?;
        let mut figures = Vec::new();
        for group in by_method_and_kind(file, &c, "interaction") {
            let label = group.label.clone();
            let all: Option<Vec<f64>> = reference.as_ref().map(|r| {
                (0..r.rows)
                    .filter(|&k| method_label(r, k) == label)
                    .filter_map(|k| r.number("interaction", k))
                    .collect()
            });
            let scale = group
                .kinds
                .values()
                .flatten()
                .fold(0.0_f64, |m, x| m.max(x.abs()));
            if scale < 1e-9 {
                // Word-level methods: phrase = sum of words, every interaction is zero.
                continue;
            }
            figures.push(distribution_figure(
                format!("fig1-{}-{}", slug(&stage), slug(&label)),
                &group,
                "interaction",
                all.as_deref().filter(|a| !a.is_empty()),
                false,
            )?);
            if label.starts_with("cd") {
                let mut rows: Vec<(f64, String, String)> = (0..c.rows)
                    .filter(|&k| method_label(&c, k) == label)
                    .filter_map(|k| {
                        Some((
                            c.number("interaction", k)?,
                            c.text("phrase", k)?.to_string(),
                            c.text("kind", k)?.to_string(),
                        ))
                    })
                    .collect();
                rows.sort_by(|a, b| b.0.total_cmp(&a.0));
                let pick = |rows: &[(f64, String, String)]| {
                    rows.iter()
                        .map(|(x, p, k)| (p.clone(), k.clone(), fixed(*x, 3)))
                        .collect()
                };
                let n = rows.len().min(8);
                tops.push(TopTable {
                    title: format!("{stage}, {label}: the most positive interactions"),
                    rows: pick(&rows[..n]),
                });
                let mut lowest = rows[rows.len() - n..].to_vec();
                lowest.reverse();
                tops.push(TopTable {
                    title: format!("{stage}, {label}: the most negative interactions"),
                    rows: pick(&lowest),
                });
            }
        }
        groups.push(FigureGroup {
            caption: format!(
                "Fig. 1, negation: interactions of positive and negative negations ({stage}), with the two-sided KS statistic{}",
                if reference.is_some() {
                    "; grey: every phrase of the reference distribution"
                } else {
                    ""
                }
            ),
            stage,
            figures,
        });
    }
    Ok((groups, tops))
}

/// The highest and lowest CD scores of the phrases of the compositionality tables (constituents
/// of the other polarity than their sentence, scored in it).
fn top_phrases(files: &[TableFile]) -> Result<Vec<TopTable>, ReportError> {
    let mut tables = Vec::new();
    for file in files_of(files, &compositionality_schema()) {
        let c = file.read(&["method", "variant", "kind", "score", "phrase"])?;
        let Some(label) = (0..c.rows)
            .find(|&r| c.text("method", r) == Some("cd"))
            .map(|r| method_label(&c, r))
        else {
            continue;
        };
        let stage = file.stage_name();
        let mut rows: Vec<(f64, String, String)> = (0..c.rows)
            .filter(|&r| method_label(&c, r) == label)
            .filter_map(|r| {
                Some((
                    c.number("score", r)?,
                    c.text("phrase", r)?.to_string(),
                    c.text("kind", r)?.to_string(),
                ))
            })
            .collect();
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        let n = rows.len().min(8);
        let shown = |rows: &[(f64, String, String)]| {
            rows.iter()
                .map(|(x, p, k)| (p.clone(), k.clone(), fixed(*x, 3)))
                .collect()
        };
        tables.push(TopTable {
            title: format!("{stage}, {label}: the highest phrase scores"),
            rows: shown(&rows[..n]),
        });
        let mut lowest = rows[rows.len() - n..].to_vec();
        lowest.reverse();
        tables.push(TopTable {
            title: format!("{stage}, {label}: the lowest phrase scores"),
            rows: shown(&lowest),
        });
    }
    Ok(tables)
}

/// Figs. 2 and 3: one panel per method with the one-sided KS statistic D⁺.
fn distributions(
    files: &[TableFile],
    schema: &arrow_schema::SchemaRef,
    value: &str,
    prefix: &str,
    caption: &str,
) -> Result<Vec<FigureGroup>, ReportError> {
    let mut groups = Vec::new();
    for file in files_of(files, schema) {
        let c = file.read(&["method", "variant", "kind", value])?;
        let stage = file.stage_name();
        let mut figures = Vec::new();
        for group in by_method_and_kind(file, &c, value) {
            figures.push(distribution_figure(
                format!("{prefix}-{}-{}", slug(&stage), slug(&group.label)),
                &group,
                "score",
                None,
                true,
            )?);
        }
        groups.push(FigureGroup {
            caption: format!("{caption} ({stage}); D⁺ = sup [F_negative − F_positive]."),
            stage,
            figures,
        });
    }
    Ok(groups)
}

/// One method's word points: (coefficient, score).
struct MethodPoints {
    label: String,
    source: Vec<(String, String)>,
    points: Vec<(f64, f64)>,
}

/// Fig. 4: per method, word scores against the logistic-regression coefficients.
fn correlations(files: &[TableFile]) -> Result<Vec<FigureGroup>, ReportError> {
    let mut groups = Vec::new();
    for file in files_of(files, &word_points_schema()) {
        let c = file.read(&["method", "variant", "coefficient", "score"])?;
        let stage = file.stage_name();
        let mut by_method: Vec<MethodPoints> = Vec::new();
        for r in 0..c.rows {
            let (Some(x), Some(y)) = (c.number("coefficient", r), c.number("score", r)) else {
                continue;
            };
            let label = method_label(&c, r);
            match by_method.iter_mut().find(|m| m.label == label) {
                Some(method) => method.points.push((x, y)),
                None => by_method.push(MethodPoints {
                    label,
                    source: vec![
                        ("table".into(), file.stem.clone()),
                        (
                            "method".into(),
                            c.text("method", r).unwrap_or_default().into(),
                        ),
                        (
                            "variant".into(),
                            c.text("variant", r).unwrap_or_default().into(),
                        ),
                    ],
                    points: vec![(x, y)],
                }),
            }
        }
        let mut figures = Vec::new();
        for MethodPoints {
            label,
            source,
            points,
        } in by_method
        {
            let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
            let r = pearson(&xs, &ys);
            let line = least_squares(&points);
            let every = points.len().div_ceil(DRAWN_POINTS).max(1);
            let drawn: Vec<(f64, f64)> = points.iter().step_by(every).copied().collect();
            let title = format!(
                "{label}: r = {}",
                r.map_or("-".to_string(), |r| fixed(r, 3))
            );
            let svg = figures::scatter(
                &title,
                ("logistic-regression coefficient", "score"),
                &drawn,
                line,
            )?;
            figures.push(Figure {
                id: format!("fig4-{}-{}", slug(&stage), slug(&label)),
                caption: format!(
                    "{} of {} points drawn (1 in {every}); r and the line use all.",
                    drawn.len(),
                    points.len()
                ),
                title: label,
                svg,
                data: source
                    .into_iter()
                    .chain([
                        ("r".into(), r.map_or(String::new(), |r| r.to_string())),
                        ("points".into(), points.len().to_string()),
                    ])
                    .collect(),
            });
        }
        groups.push(FigureGroup {
            caption: format!(
                "Fig. 4, word scores against the logistic-regression coefficients, one point per token ({stage}), with the least-squares line and Pearson's r."
            ),
            stage,
            figures,
        });
    }
    Ok(groups)
}

/// Slope and intercept of the least-squares line, in f64.
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| {
        let slope = sxy / sxx;
        (slope, my - slope * mx)
    })
}

/// The sentences to show of an input, as (sentence id, tokens): those holding one of the
/// paper's phrases first, then the shortest of 8 to 25 words with a negation or contrast word.
fn chosen_sentences(
    files: &[TableFile],
    dataset: &str,
    options: &ReportOptions,
) -> Result<Vec<(String, Vec<String>)>, ReportError> {
    let all = all_sentences(files, dataset)?;
    if !options.sentences.is_empty() {
        return Ok(all
            .into_iter()
            .filter(|(id, _)| options.chooses(dataset, id))
            .collect());
    }
    let text = |tokens: &[String]| tokens.join(" ").to_lowercase();
    let mut chosen: Vec<(String, Vec<String>)> = all
        .iter()
        .filter(|(_, t)| PAPER_SENTENCES.iter().any(|p| text(t).contains(p)))
        .take(SENTENCES)
        .cloned()
        .collect();
    let mut others: Vec<&(String, Vec<String>)> = all
        .iter()
        .filter(|(id, t)| {
            (8..=25).contains(&t.len())
                && t.iter()
                    .any(|w| NEGATION_WORDS.contains(&w.to_lowercase().as_str()))
                && !chosen.iter().any(|(c, _)| c == id)
        })
        .collect();
    others.sort_by_key(|(_, t)| t.len());
    for sentence in others {
        if chosen.len() >= SENTENCES {
            break;
        }
        chosen.push(sentence.clone());
    }
    Ok(chosen)
}

/// Every sentence of an input's `<input>_sentences` table: id and tokens.
fn all_sentences(
    files: &[TableFile],
    dataset: &str,
) -> Result<Vec<(String, Vec<String>)>, ReportError> {
    let Some(file) =
        files_of(files, &sentences_schema()).find(|f| f.stem == format!("{dataset}_sentences"))
    else {
        return Ok(Vec::new());
    };
    let c = file.read(&["sentence_id", "tokens"])?;
    Ok((0..c.rows)
        .filter_map(|r| {
            Some((
                c.text("sentence_id", r)?.to_string(),
                c.texts("tokens", r)?.to_vec(),
            ))
        })
        .collect())
}

/// For each method of the rows of sentence `id` (in first-seen order), one slot per token,
/// filled by `fill` from each row.
fn per_method_slots<T: Clone>(
    c: &Columns,
    id: &str,
    tokens: usize,
    mut fill: impl FnMut(usize, &mut [Option<T>]),
) -> Vec<(String, Vec<Option<T>>)> {
    let mut by_method: Vec<(String, Vec<Option<T>>)> = Vec::new();
    for r in (0..c.rows).filter(|&r| c.text("sentence_id", r) == Some(id)) {
        let label = method_label(c, r);
        let position = match by_method.iter().position(|(l, _)| *l == label) {
            Some(p) => p,
            None => {
                by_method.push((label, vec![None; tokens]));
                by_method.len() - 1
            }
        };
        fill(r, &mut by_method[position].1);
    }
    by_method
}

/// Each method's row of the tokens, coloured by their scores on the method's own scale (its
/// largest |score| here); a token without one is uncoloured and titled `missing`.
fn coloured_rows(
    tokens: &[String],
    by_method: Vec<(String, Vec<Option<f64>>)>,
    missing: &str,
) -> Vec<(String, Vec<Coloured>)> {
    by_method
        .into_iter()
        .map(|(label, scores)| {
            let scale = scores.iter().flatten().fold(0.0_f64, |m, x| m.max(x.abs()));
            let words = tokens
                .iter()
                .zip(&scores)
                .map(|(word, score)| Coloured {
                    text: word.clone(),
                    colour: score
                        .map_or_else(|| "transparent".into(), |s| figures::diverging(s, scale)),
                    score: score.map_or_else(|| missing.into(), |s| fixed(s, 3)),
                    component: false,
                })
                .collect();
            (label, words)
        })
        .collect()
}

/// The shortest phrase holding a word: its length and its score.
type ShortestPhrase = (usize, f64);

/// Table 2: sentences with their compositionality phrases (constituents of the other polarity)
/// coloured by each method's score of the phrase in the sentence, the rest uncoloured: the chosen
/// sentences, else the paper's Table 2 sentence when present and the first others with phrases.
fn phrase_sentences(
    files: &[TableFile],
    options: &ReportOptions,
) -> Result<Vec<SentenceView>, ReportError> {
    let mut views = Vec::new();
    for file in files_of(files, &compositionality_schema()) {
        let c = file.read(&[
            "dataset",
            "sentence_id",
            "span_start",
            "span_end",
            "method",
            "variant",
            "score",
        ])?;
        let Some(dataset) = c.text("dataset", 0).map(str::to_string) else {
            continue;
        };
        let sentences = all_sentences(files, &dataset)?;
        let with_phrases = c.distinct_texts("sentence_id");
        let text = |tokens: &[String]| tokens.join(" ").to_lowercase();
        let chosen: Vec<&(String, Vec<String>)> = if options.sentences.is_empty() {
            let paper = sentences.iter().filter(|(id, t)| {
                with_phrases.contains(&id.as_str())
                    && PAPER_SENTENCES.iter().any(|p| text(t).contains(p))
            });
            let first = with_phrases
                .iter()
                .filter_map(|id| sentences.iter().find(|(s, _)| s == id));
            let mut chosen: Vec<&(String, Vec<String>)> = Vec::new();
            for sentence in paper.chain(first) {
                if chosen.len() < SENTENCES && !chosen.iter().any(|c| c.0 == sentence.0) {
                    chosen.push(sentence);
                }
            }
            chosen
        } else {
            sentences
                .iter()
                .filter(|(id, _)| options.chooses(&dataset, id))
                .collect()
        };
        for (id, tokens) in chosen {
            let by_method = per_method_slots(
                &c,
                id,
                tokens.len(),
                |r, slots: &mut [Option<ShortestPhrase>]| {
                    let (Some(start), Some(end), Some(score)) = (
                        c.number("span_start", r),
                        c.number("span_end", r),
                        c.number("score", r),
                    ) else {
                        return;
                    };
                    let (start, end) = (start as usize, end as usize);
                    for slot in slots.iter_mut().take(end).skip(start) {
                        if slot.is_none_or(|(length, _)| end - start < length) {
                            *slot = Some((end - start, score));
                        }
                    }
                },
            );
            let rows = coloured_rows(
                tokens,
                by_method
                    .into_iter()
                    .map(|(label, slots)| {
                        (label, slots.iter().map(|p| p.map(|(_, s)| s)).collect())
                    })
                    .collect(),
                "not in a phrase",
            );
            views.push(SentenceView {
                dataset: dataset.clone(),
                sentence_id: id.clone(),
                rows,
            });
        }
    }
    Ok(views)
}

/// Tables 1 and 2: chosen sentences, each word coloured by each method's score (from the word
/// points of a `unigram_correlation` stage).
fn sentences(
    files: &[TableFile],
    options: &ReportOptions,
) -> Result<Vec<SentenceView>, ReportError> {
    let mut views = Vec::new();
    for file in files_of(files, &word_points_schema()) {
        let c = file.read(&[
            "dataset",
            "sentence_id",
            "position",
            "method",
            "variant",
            "score",
        ])?;
        let Some(dataset) = c.text("dataset", 0).map(str::to_string) else {
            continue;
        };
        for (id, tokens) in chosen_sentences(files, &dataset, options)? {
            let by_method =
                per_method_slots(&c, &id, tokens.len(), |r, slots: &mut [Option<f64>]| {
                    if let (Some(position), Some(score)) =
                        (c.number("position", r), c.number("score", r))
                        && let Some(slot) = slots.get_mut(position as usize)
                    {
                        *slot = Some(score);
                    }
                });
            let rows = coloured_rows(&tokens, by_method, "no coefficient");
            views.push(SentenceView {
                dataset: dataset.clone(),
                sentence_id: id,
                rows,
            });
        }
    }
    Ok(views)
}

/// Table 3: each query's nearest phrases.
fn similar(files: &[TableFile]) -> Result<Vec<SimilarView>, ReportError> {
    let mut views = Vec::new();
    for file in files_of(files, &similar_phrases_schema()) {
        let c = file.read(&["category", "query", "neighbour", "similarity"])?;
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for r in 0..c.rows {
            let (Some(category), Some(query), Some(neighbour), Some(similarity)) = (
                c.text("category", r),
                c.text("query", r),
                c.text("neighbour", r),
                c.number("similarity", r),
            ) else {
                continue;
            };
            let entry = format!("{neighbour} ({similarity:.2})");
            match rows.iter_mut().find(|(_, q, _)| q == query) {
                Some((_, _, list)) => {
                    list.push_str(", ");
                    list.push_str(&entry);
                }
                None => rows.push((category.into(), query.into(), entry)),
            }
        }
        views.push(SimilarView {
            stage: file.stage_name(),
            rows,
        });
    }
    Ok(views)
}

/// ACD's hierarchies of chosen sentences, level by level, each span coloured by its CD score.
fn hierarchies(
    files: &[TableFile],
    options: &ReportOptions,
) -> Result<Vec<HierarchyView>, ReportError> {
    let mut views = Vec::new();
    for file in files_of(files, &hierarchy_schema()) {
        let c = file.read(&[
            "dataset",
            "sentence_id",
            "level",
            "span_start",
            "phrase",
            "component",
            "score",
            "method",
            "variant",
        ])?;
        let Some(dataset) = c.text("dataset", 0).map(str::to_string) else {
            continue;
        };
        let mut ids: Vec<String> = chosen_sentences(files, &dataset, options)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            ids = c
                .distinct_texts("sentence_id")
                .into_iter()
                .take(SENTENCES)
                .map(str::to_string)
                .collect();
        }
        for id in ids {
            let rows: Vec<usize> = (0..c.rows)
                .filter(|&r| c.text("sentence_id", r) == Some(id.as_str()))
                .collect();
            let Some(&first) = rows.first() else {
                continue;
            };
            let scale = rows
                .iter()
                .filter_map(|&r| c.number("score", r))
                .fold(0.0_f64, |m, x| m.max(x.abs()));
            let mut levels: BTreeMap<i64, Vec<(f64, Coloured)>> = BTreeMap::new();
            for &r in &rows {
                let (Some(level), Some(start), Some(phrase), Some(score)) = (
                    c.number("level", r),
                    c.number("span_start", r),
                    c.text("phrase", r),
                    c.number("score", r),
                ) else {
                    continue;
                };
                levels.entry(level as i64).or_default().push((
                    start,
                    Coloured {
                        text: phrase.to_string(),
                        colour: figures::diverging(score, scale),
                        score: fixed(score, 3),
                        component: c.flag("component", r).unwrap_or(false),
                    },
                ));
            }
            views.push(HierarchyView {
                stage: file.stage_name(),
                sentence_id: id,
                method: method_label(&c, first),
                levels: levels
                    .into_values()
                    .map(|mut spans| {
                        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
                        spans.into_iter().map(|(_, span)| span).collect()
                    })
                    .collect(),
            });
        }
    }
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_line() {
        let points: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 2.0 * x as f64 - 1.0)).collect();
        let (slope, intercept) = least_squares(&points).unwrap();
        assert!((slope - 2.0).abs() < 1e-12 && (intercept + 1.0).abs() < 1e-12);
    }
}
