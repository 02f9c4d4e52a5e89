"""cd-pipeline on Airflow 3: validate, train once, score N shards as mapped tasks, reduce, report.

Each task is one `cd-pipeline` command (BashOperator), so the scheduler (Celery or Kubernetes
executors) fans the shards out over its workers and the tool does the work of one shard:

    validate -> train (--prepare) -> score_shard[0..N-1] (--shard I/N) -> reduce (--reduce) -> report

The output folder must be shared by the workers (a network file system or one machine): the
shards write `<table>/shard=<i>/part-0.parquet` and their stage results into it, the reduce
reads them there. Rerunning a failed task resumes: every stage whose key is complete in the
output folder is reused, and a scoring stage restarts from its last checkpointed part.

Params (trigger with a config to change them): `binary` (the cd-pipeline executable), `workdir`
(the folder relative paths resolve against: this checkout by default), `pipeline` (the YAML
file), `output` (the output folder), `shards` (N), `threads` (per task), `sets` (`--set`
overrides, one per line).
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param, task

# Relative `pipeline` and `output` params resolve against `workdir` (default: this checkout, or
# CD_PIPELINE_HOME): BashOperator runs each command in a temporary folder of its own.
DEFAULT_WORKDIR = os.environ.get("CD_PIPELINE_HOME", str(Path(__file__).resolve().parents[2]))

# The params reach each command as environment variables, quoted by the shell, never pasted
# into it. `sets` becomes one `--set` per non-empty line.
ENVIRONMENT = {
    "CD_PIPELINE_WORKDIR": "{{ params.workdir }}",
    "CD_PIPELINE_BIN": "{{ params.binary }}",
    "CD_PIPELINE_FILE": "{{ params.pipeline }}",
    "CD_PIPELINE_OUTPUT": "{{ params.output }}",
    "CD_PIPELINE_SHARDS": "{{ params.shards }}",
    "CD_PIPELINE_THREADS": "{{ params.threads }}",
    "CD_PIPELINE_SETS": "{{ params.sets }}",
}

# One JSON object per log line, for Airflow's task logs and log collectors.
PREAMBLE = (
    'set -euo pipefail; cd "$CD_PIPELINE_WORKDIR"; sets=(); while IFS= read -r line; do '
    '[ -n "$line" ] && sets+=(--set "$line"); done <<< "$CD_PIPELINE_SETS"; '
)


def cd_pipeline(verb: str, extra: str = "") -> str:
    """A bash command running `cd-pipeline VERB PIPELINE --output OUTPUT [--set ...] EXTRA`."""
    return (
        PREAMBLE
        + f'"$CD_PIPELINE_BIN" --log-format json {verb} "$CD_PIPELINE_FILE" '
        # `${sets[@]+...}`: an empty array under `set -u` on bash before 4.4.
        + '--output "$CD_PIPELINE_OUTPUT" ${sets[@]+"${sets[@]}"}'
        + extra
    )


with DAG(
    dag_id="cd_pipeline",
    description="Contextual Decomposition at dataset scale, sharded",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "binary": Param(os.environ.get("CD_PIPELINE_BIN", "cd-pipeline"), type="string"),
        "workdir": Param(DEFAULT_WORKDIR, type="string"),
        "pipeline": Param("pipelines/sst_negation.yaml", type="string"),
        "output": Param("out/sst_negation", type="string"),
        "shards": Param(4, type="integer", minimum=1),
        "threads": Param(2, type="integer", minimum=1),
        "sets": Param("", type="string", description="--set overrides, one KEY=VALUE per line"),
    },
    tags=["cd-pipeline"],
) as dag:
    validate = BashOperator(
        task_id="validate", bash_command=cd_pipeline("validate"), env=ENVIRONMENT, append_env=True
    )
    train = BashOperator(
        task_id="train",
        bash_command=cd_pipeline("run", ' --threads "$CD_PIPELINE_THREADS" --prepare'),
        env=ENVIRONMENT,
        append_env=True,
    )

    @task
    def shard_environments(params=None) -> list[dict[str, str]]:
        """One environment per shard for the mapped scoring tasks: the params, and SHARD."""
        base = {
            "CD_PIPELINE_WORKDIR": str(params["workdir"]),
            "CD_PIPELINE_BIN": str(params["binary"]),
            "CD_PIPELINE_FILE": str(params["pipeline"]),
            "CD_PIPELINE_OUTPUT": str(params["output"]),
            "CD_PIPELINE_SHARDS": str(params["shards"]),
            "CD_PIPELINE_THREADS": str(params["threads"]),
            "CD_PIPELINE_SETS": str(params["sets"]),
        }
        return [{**base, "SHARD": str(index)} for index in range(int(params["shards"]))]

    score = BashOperator.partial(
        task_id="score_shard",
        bash_command=cd_pipeline(
            "run", ' --threads "$CD_PIPELINE_THREADS" --shard "$SHARD/$CD_PIPELINE_SHARDS"'
        ),
        append_env=True,
    ).expand(env=shard_environments())

    reduce = BashOperator(
        task_id="reduce",
        bash_command=cd_pipeline("run", ' --threads "$CD_PIPELINE_THREADS" --reduce'),
        env=ENVIRONMENT,
        append_env=True,
    )
    report = BashOperator(
        task_id="report",
        bash_command=(
            'set -euo pipefail; cd "$CD_PIPELINE_WORKDIR"; '
            '"$CD_PIPELINE_BIN" --log-format json report "$CD_PIPELINE_OUTPUT" '
            '--output "$CD_PIPELINE_OUTPUT/report/index.html"'
        ),
        env=ENVIRONMENT,
        append_env=True,
    )

    validate >> train >> score >> reduce >> report
