//! `cd-pipeline`: the command line over the `cd_pipeline` library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use cd_pipeline::attribution::{CdOptions, Convention, MethodConfig, SpanSet, Target};
use cd_pipeline::pipeline::{Pipeline, RunMode, Shard};
use cd_pipeline::score::{ScoreJob, run_score};
use cd_pipeline::{EXIT_RUN_FAILURE, Error};
use clap::{Parser, Subcommand, ValueEnum};

/// Contextual Decomposition for LSTM sentiment models at dataset scale.
///
/// Exit codes: 0 success, 2 invalid configuration or input (nothing written), 1 failure while
/// running, 75 output folder in use by another run. Logs go to stderr; set RUST_LOG (for example
/// RUST_LOG=debug) to change their level.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// How log lines are written to stderr: text for people, json (one JSON object per line) for
    /// Airflow and log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline file: read its inputs, run its stages, write its Parquet tables.
    Run(RunArgs),
    /// Check a pipeline file (keys, types, paths, models, stage references), print its plan, do no work.
    Validate(ValidateArgs),
    /// Score spans of pre-tokenised sentences (CD and the baselines) and write them to a Parquet table.
    Score(ScoreArgs),
    /// Print a run folder's manifest (what its tables were computed from, and what each stage
    /// did) readably; --json prints the file as it is.
    Manifest(ManifestArgs),
    /// Make the report of a run folder: one self-contained HTML page of the paper's figures and
    /// tables, and each figure as an SVG file beside it.
    Report(ReportArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// A run's output folder (its `output_dir`).
    run_dir: PathBuf,
    /// The HTML file to write (default: reports/<pipeline name>/index.html).
    #[arg(long)]
    output: Option<PathBuf>,
    /// A sentence to colour word by word and draw the hierarchy of, as ID or INPUT/ID (default:
    /// the paper's examples when present, else short ones with a negation). Repeatable.
    #[arg(long = "sentence", value_name = "ID")]
    sentences: Vec<String>,
}

#[derive(clap::Args)]
struct ManifestArgs {
    /// A run's output folder (its `output_dir`), or a manifest file.
    run_dir: PathBuf,
    /// The manifest of this shard (I/N) of a sharded run instead of the folder's own.
    #[arg(long, value_name = "I/N", value_parser = Shard::from_str)]
    shard: Option<Shard>,
    /// Print the JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The pipeline file (YAML).
    pipeline: PathBuf,
    /// Write the tables here instead of the file's `output_dir`.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Worker threads, at least 1 (default: all cores). Results do not depend on it.
    #[arg(long, value_parser = thread_count)]
    threads: Option<usize>,
    /// Override a value of the file, written in YAML, e.g. `stages.lstm.seed=2` or
    /// `models.mine={weights: /models/m.safetensors, vocab: /models/vocab.json}` (stages by name or
    /// index). Repeatable.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    overrides: Vec<String>,
    /// Compute the per-sentence stages (scoring, negation, ...) for shard I of N (from 0): the
    /// sentences whose id hashes to I, into <table>/shard=I/part-0.parquet. The whole-data
    /// stages they read (training) are reused or computed first.
    #[arg(long, value_name = "I/N", value_parser = Shard::from_str, group = "part")]
    shard: Option<Shard>,
    /// Compute only the whole-data stages that every shard reads (training), once, before the
    /// shards fan out.
    #[arg(long, group = "part")]
    prepare: bool,
    /// After every shard has run: compute the whole-data stages (aggregate statistics,
    /// correlations, the report) over all shards, and the run's other tables and manifest.
    #[arg(long, group = "part")]
    reduce: bool,
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// The pipeline file (YAML).
    pipeline: PathBuf,
    /// As for `run`: the output folder the plan shows.
    #[arg(long)]
    output: Option<PathBuf>,
    /// As for `run`.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    overrides: Vec<String>,
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// Model weights: a PyTorch `LSTMSentiment` state_dict saved as safetensors.
    #[arg(long)]
    model: PathBuf,
    /// Vocabulary: a JSON list of tokens, index = embedding row.
    #[arg(long)]
    vocab: PathBuf,
    /// Sentences, one JSON object per line: {"id": "...", "tokens": ["..."]}.
    #[arg(long)]
    input: PathBuf,
    /// Which spans of each sentence to score.
    #[arg(long, value_enum, default_value_t = SpanChoice::All)]
    spans: SpanChoice,
    /// Keep spans of at most this many tokens.
    #[arg(long, value_name = "N")]
    max_len: Option<usize>,
    /// An attribution method, repeatable: cd[:convention=paper|murdoch2018|acd], leave_one_out,
    /// gradient_x_input, cell_decomposition, or
    /// integrated_gradients[:steps=N,quadrature=gausslegendre|riemann_trapezoid,baseline=zero|token:TOKEN].
    /// Default: cd.
    #[arg(long = "method", value_name = "SPEC", value_parser = MethodConfig::from_str)]
    methods: Vec<MethodConfig>,
    /// What every method attributes: logit_diff, predicted, logit:K, log_prob:K or prob:K
    /// (default: each method's own; cd logit_diff, leave_one_out log_prob:1, the gradient methods
    /// prob:1).
    #[arg(long, value_parser = Target::from_str)]
    target: Option<Target>,
    /// Shorthand for --method cd:convention=C, repeatable.
    #[arg(long = "convention", value_enum)]
    conventions: Vec<ConventionChoice>,
    /// Output Parquet file (written to a temporary name, then renamed into place).
    #[arg(long)]
    output: PathBuf,
    /// Worker threads, at least 1 (default: all cores). Results do not depend on it.
    #[arg(long, value_parser = thread_count)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SpanChoice {
    /// Every contiguous span.
    All,
    /// Every single token.
    Unigrams,
    /// The whole sentence as one span.
    Sentence,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ConventionChoice {
    /// Always γ, as the paper states.
    Paper,
    /// β for start <= t < stop (inclusive stop), the authors' released code.
    Murdoch2018,
    /// β inside the span, ACD's cd_text.
    Acd,
}

impl From<ConventionChoice> for Convention {
    fn from(c: ConventionChoice) -> Self {
        match c {
            ConventionChoice::Paper => Convention::Paper,
            ConventionChoice::Murdoch2018 => Convention::Murdoch2018,
            ConventionChoice::Acd => Convention::Acd,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    init_logging(log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if log_format == LogFormat::Json {
                tracing::error!("{}", message(&error));
            } else {
                eprintln!("error: {}", message(&error));
            }
            let code = error
                .downcast_ref::<Error>()
                .map_or(EXIT_RUN_FAILURE, Error::exit_code);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

/// Logs to stderr; on a terminal, with progress bars of long work (`cd_pipeline::progress`)
/// drawn below them, and none of that when stderr is a file or a pipe.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if format == LogFormat::Json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .init();
    } else if std::io::stderr().is_terminal() {
        let bars = tracing_indicatif::IndicatifLayer::new().with_span_field_formatter(
            tracing_indicatif::filter::hide_indicatif_span_fields(
                tracing_subscriber::fmt::format::DefaultFields::new(),
            ),
        );
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(bars.get_stderr_writer()))
            .with(bars.with_filter(tracing_indicatif::filter::IndicatifFilter::new(false)))
            .init();
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .init();
    }
}

/// The error and its causes, leaving out a cause whose text the message already holds: the
/// library's errors include their source's text, which the chain would repeat.
fn message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run_pipeline(args, cli.log_format),
        Command::Validate(args) => validate(args),
        Command::Score(args) => score(args),
        Command::Report(args) => report(args),
        Command::Manifest(args) => manifest(args),
    }
}

fn manifest(args: ManifestArgs) -> anyhow::Result<()> {
    use cd_pipeline::pipeline::{MANIFEST, Manifest};
    let path = if args.run_dir.is_file() {
        args.run_dir
    } else {
        match args.shard {
            Some(shard) => args
                .run_dir
                .join("shards")
                .join(shard.partition())
                .join(MANIFEST),
            None => args.run_dir.join(MANIFEST),
        }
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if args.json {
        print!("{text}");
        return Ok(());
    }
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a manifest", path.display()))?;
    print!("{}", manifest.describe());
    Ok(())
}

fn report(args: ReportArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let options = cd_pipeline::report::ReportOptions {
        sentences: args.sentences,
    };
    let report = cd_pipeline::report::build(&args.run_dir, &options)?;
    let output = args
        .output
        .unwrap_or_else(|| cd_pipeline::report::default_output(&report));
    let written = cd_pipeline::report::write(&report, &output)?;
    tracing::info!(
        figures = report.figures.len(),
        bytes = report.html.len(),
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "wrote {}",
        output.display()
    );
    tracing::debug!(files = written.len(), "report files");
    Ok(())
}

fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let pipeline = Pipeline::open(&args.pipeline, &args.overrides)?;
    let output = args
        .output
        .unwrap_or_else(|| pipeline.config.output_dir.clone());
    print!("{}", pipeline.describe(&output)?);
    Ok(())
}

fn run_pipeline(args: RunArgs, log_format: LogFormat) -> anyhow::Result<()> {
    let pipeline = Pipeline::open(&args.pipeline, &args.overrides)?;
    let pool = worker_pool(args.threads)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| pipeline.config.output_dir.clone());
    let name = pipeline.config.name.clone();
    let mode = match (args.shard, args.prepare, args.reduce) {
        (Some(shard), _, _) => RunMode::Shard(shard),
        (None, true, _) => RunMode::Prepare,
        (None, false, true) => RunMode::Reduce,
        (None, false, false) => RunMode::Whole,
    };
    let summary = pool.install(|| pipeline.run(args.output.as_deref(), mode))?;
    for table in &summary.tables {
        tracing::info!("wrote {}", table.display());
    }
    tracing::info!(
        seconds = format!("{:.2}", summary.seconds),
        tables = summary.tables.len(),
        "pipeline done"
    );
    let mut lines = vec![format!(
        "{name}: {} files in {} in {:.1} s",
        summary.tables.len(),
        output.display(),
        summary.seconds
    )];
    if matches!(mode, RunMode::Whole | RunMode::Reduce) {
        lines.extend(cd_pipeline::report::headlines(&output)?);
    }
    // For people, a summary below the log; for machines, log lines like the others.
    if log_format == LogFormat::Json {
        for line in lines {
            tracing::info!("{line}");
        }
    } else {
        eprintln!("\n{}", lines[0]);
        for line in &lines[1..] {
            eprintln!("  {line}");
        }
    }
    Ok(())
}

/// `--threads`: a positive number; 0 is refused rather than given a meaning of its own.
fn thread_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (leave --threads out to use every core)".into()),
        Ok(threads) => Ok(threads),
        Err(e) => Err(e.to_string()),
    }
}

fn worker_pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .context("starting worker threads")
}

fn score(args: ScoreArgs) -> anyhow::Result<()> {
    let mut methods = args.methods;
    methods.extend(args.conventions.into_iter().map(|c| {
        MethodConfig::Cd(CdOptions {
            convention: c.into(),
            beta: false,
        })
    }));
    if methods.is_empty() {
        methods.push(MethodConfig::Cd(CdOptions::default()));
    }
    let job = ScoreJob {
        model: args.model,
        vocab: args.vocab,
        input: args.input,
        spans: match args.spans {
            SpanChoice::All => SpanSet::All,
            SpanChoice::Unigrams => SpanSet::Unigrams,
            SpanChoice::Sentence => SpanSet::Sentence,
        },
        max_len: args.max_len,
        methods,
        target: args.target,
        output: args.output,
    };
    let summary = worker_pool(args.threads)?.install(|| run_score(&job))?;
    tracing::info!(
        sentences = summary.sentences,
        rows = summary.rows,
        max_abs_delta = summary.max_delta,
        seconds = format!("{:.2}", summary.seconds),
        "wrote {}",
        job.output.display()
    );
    Ok(())
}
