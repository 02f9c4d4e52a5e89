//! `cd-pipeline`: the command line over the `cd_pipeline` library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cd_pipeline::attribution::{Convention, SpanSet};
use cd_pipeline::score::{ScoreJob, run_score};
use cd_pipeline::{EXIT_RUN_FAILURE, Error};
use clap::{Parser, Subcommand, ValueEnum};

/// Contextual Decomposition for LSTM sentiment models at dataset scale.
///
/// Exit codes: 0 success, 2 invalid configuration or input (nothing written), 1 failure while
/// running. Logs go to stderr; set RUST_LOG (for example RUST_LOG=debug) to change their level.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score spans of pre-tokenised sentences with CD and write them to a Parquet table.
    Score(ScoreArgs),
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
    /// CD convention(s): where the bias×bias product goes. Repeat for several.
    #[arg(long = "convention", value_enum, default_values_t = [ConventionChoice::Paper])]
    conventions: Vec<ConventionChoice>,
    /// Output Parquet file (written to a temporary name, then renamed into place).
    #[arg(long)]
    output: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SpanChoice {
    /// Every contiguous span.
    All,
    /// Every single token.
    Unigrams,
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let code = error
                .downcast_ref::<Error>()
                .map_or(EXIT_RUN_FAILURE, Error::exit_code);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Score(args) => score(args),
    }
}

fn score(args: ScoreArgs) -> anyhow::Result<()> {
    let mut conventions: Vec<Convention> = Vec::new();
    for c in args.conventions.into_iter().map(Convention::from) {
        if !conventions.contains(&c) {
            conventions.push(c);
        }
    }
    let job = ScoreJob {
        model: args.model,
        vocab: args.vocab,
        input: args.input,
        spans: match args.spans {
            SpanChoice::All => SpanSet::All,
            SpanChoice::Unigrams => SpanSet::Unigrams,
        },
        conventions,
        output: args.output,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let summary = pool.install(|| run_score(&job))?;
    tracing::info!(
        sentences = summary.sentences,
        rows = summary.rows,
        max_residual = summary.max_residual,
        seconds = format!("{:.2}", summary.seconds),
        "wrote {}",
        job.output.display()
    );
    Ok(())
}
