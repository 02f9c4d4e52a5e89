//! Progress bars in a real terminal: a pipeline that trains a small LSTM on SST dev runs inside
//! `tmux`, whose screen (`capture-pane`) shows the training bar with counts, rate and ETA while
//! it runs and the run's summary at the end; the same run with stderr in a file writes the log
//! lines and the summary, and no bar.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::shared_dir;

const BINARY: &str = env!("CARGO_BIN_EXE_cd-pipeline");

fn pipeline(dir: &Path, output: &str) -> String {
    let data = shared_dir().join("data");
    let text = format!(
        "name: progress
data_dir: {data}
output_dir: {output}
model_cache: {cache}
inputs:
  dev: {{format: sst_trees, path: sst/dev.txt, split: dev}}
stages:
  - name: lstm
    kind: train_lstm
    train: dev
    dev: dev
    hidden: 96
    epochs: 8
    batch_size: 10
    eval_every: 100000
",
        data = data.display(),
        cache = dir.join(format!("cache-{output}")).display(),
    );
    let path = dir.join(format!("{output}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn tmux(socket: &Path, args: &[&str]) -> String {
    let output = Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux runs (apt-get install tmux)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn progress_bars_on_a_terminal_and_none_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tmux.socket");
    let terminal_pipeline = pipeline(dir.path(), "terminal");
    let command = format!(
        "cd {} && {BINARY} run {terminal_pipeline}; echo exit=$?; sleep 60",
        dir.path().display()
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "run",
            "-x",
            "200",
            "-y",
            "50",
            &command,
        ],
    );
    let started = Instant::now();
    let mut bar = None;
    let mut screen = String::new();
    while started.elapsed() < Duration::from_secs(120) {
        screen = tmux(&socket, &["capture-pane", "-p", "-t", "run"]);
        // The latest bar that has moved: it is redrawn in place as training goes.
        if let Some(line) = screen
            .lines()
            .find(|l| l.starts_with("training") && l.contains("steps") && !l.contains("] 0/"))
        {
            bar = Some(line.to_string());
        }
        if screen.contains("exit=") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux(&socket, &["kill-server"]);
    let bar = bar.unwrap_or_else(|| panic!("no training bar on the screen:\n{screen}"));
    println!("bar: {bar}\nend screen:\n{screen}");
    assert!(
        bar.contains('[') && bar.contains("/s") && bar.contains("ETA"),
        "{bar}"
    );
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(
        screen.contains("progress: ") && screen.contains(" files in "),
        "{screen}"
    );
    assert!(
        screen.contains("lstm: dev "),
        "the summary's accuracy:\n{screen}"
    );

    let file_pipeline = pipeline(dir.path(), "file");
    let log = dir.path().join("stderr.log");
    let run = Command::new(BINARY)
        .current_dir(dir.path())
        .args(["run", &file_pipeline])
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(run.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("training: iteration") && text.contains(" files in "),
        "{text}"
    );
    for bar_mark in ["ETA", "steps,", "\u{1b}["] {
        assert!(
            !text.contains(bar_mark),
            "`{bar_mark}` in the log file:\n{text}"
        );
    }
}
