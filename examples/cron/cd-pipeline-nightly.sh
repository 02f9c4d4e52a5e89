#!/usr/bin/env bash
# Nightly cd-pipeline run for cron: one run at a time (flock), a dated output folder per day,
# logs as JSON lines in a dated file, the tool's exit code passed on; on a failure or a skip it
# prints why (and the end of the log) to stderr, which cron mails.
#
#   crontab -e, then (every night at 02:30; see crontab.example):
#   30 2 * * * /opt/cd-pipeline/examples/cron/cd-pipeline-nightly.sh pipelines/sst_negation.yaml
#
# Exit codes: 0 done; 1 failure while running; 2 invalid configuration or input; 75 the output
# folder is in use by another cd-pipeline run; 76 the previous night's run still holds this
# script's lock (this run is skipped). A rerun on the same day reuses every completed stage.
set -euo pipefail

pipeline="${1:?usage: $0 PIPELINE.yaml [cd-pipeline run options...]}"
shift
binary="${CD_PIPELINE_BIN:-cd-pipeline}"
root="${CD_PIPELINE_RUNS:-$HOME/cd-pipeline-runs}"
name="$(basename "$pipeline" .yaml)"
day="$(date -u +%Y-%m-%d)"
output="$root/$name/$day"
logs="$root/logs"
mkdir -p "$output" "$logs"

# One run of this pipeline at a time: a night that overruns makes the next one skip, not pile up.
exec 9> "$root/$name.lock"
if ! flock --nonblock 9; then
  # cron mails what a job prints: say why this night did nothing.
  echo "$(date -u +%FT%TZ) $name: the previous run still holds $root/$name.lock; skipped" >&2
  exit 76
fi

log="$logs/$name-$day.jsonl"
status=0
"$binary" --log-format json run "$pipeline" --output "$output" "$@" 2>> "$log" || status=$?
if [ "$status" -eq 0 ]; then
  # The latest complete run, for readers that want a fixed path.
  ln -sfn "$output" "$root/$name/latest"
else
  echo "$(date -u +%FT%TZ) $name: cd-pipeline exited $status; the end of $log:" >&2
  tail -n 20 "$log" >&2
fi
exit "$status"
