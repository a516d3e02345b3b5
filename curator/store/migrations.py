"""The workspace schema, as numbered migrations.

The schema is created and evolved only here. Each migration runs in one
transaction and is recorded in `schema_version`; a workspace written by a newer
curator (a version this list does not know) is refused rather than guessed at.
To change the schema, append a migration: never edit one that has shipped.

The tables are a public interface (users query them with SQL); the README's
"Workspace schema" section documents each one. A newcomer looking for where a
table is written can search for `ws.write("<table>"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from curator.errors import SchemaTooNew


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_INITIAL = """
CREATE TABLE datasets (
    dataset            VARCHAR PRIMARY KEY,  -- name given at ingest (default: file stem or hub name)
    source             VARCHAR NOT NULL,     -- local path or hub dataset name
    split              VARCHAR,              -- hub split, when the source is a hub dataset
    revision           VARCHAR,              -- hub revision, or sha256 prefix of a local file's bytes
    mapping            JSON NOT NULL,        -- how source fields became prompt / answer / id
    n_rows             INTEGER NOT NULL,     -- rows read at the last ingest
    n_kept             INTEGER NOT NULL,     -- rows now in `examples` from this dataset
    n_quarantined      INTEGER NOT NULL,     -- rows in `quarantine` (duplicates included)
    first_ingested_at  TIMESTAMP NOT NULL,
    last_ingested_at   TIMESTAMP NOT NULL
);

CREATE TABLE examples (
    example_id   VARCHAR PRIMARY KEY,  -- the user's id column, else a hash of normalized prompt + answer
    dataset      VARCHAR NOT NULL,
    row_index    INTEGER NOT NULL,     -- 0-based position in the source
    prompt       VARCHAR NOT NULL,
    answer       VARCHAR NOT NULL,     -- the gold answer as a string
    solution     VARCHAR,              -- reference solution or trace, when the source has one
    meta         JSON,                 -- every other source field, verbatim
    ingested_at  TIMESTAMP NOT NULL
);

CREATE TABLE quarantine (
    dataset      VARCHAR NOT NULL,
    row_index    INTEGER NOT NULL,
    reason       VARCHAR NOT NULL,     -- human-readable; several reasons joined by '; '
    raw          VARCHAR,              -- the source row (cut at 64 KiB, with a note)
    ingested_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, row_index)
);

CREATE TABLE runs (
    run_id       VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,     -- train | probe | import
    model        VARCHAR,
    backend      VARCHAR,              -- hf | openai | vllm | the importer's name
    seed         INTEGER,
    config       JSON NOT NULL,        -- the run's full config, as given
    status       VARCHAR NOT NULL,     -- running | finished | failed
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP
);

CREATE TABLE history (
    run_id               VARCHAR NOT NULL,
    step                 INTEGER NOT NULL,
    example_id           VARCHAR NOT NULL,
    n                    INTEGER NOT NULL,  -- rollouts sampled for the example at this step
    n_correct            INTEGER NOT NULL,
    n_timeout            INTEGER NOT NULL,
    n_error              INTEGER NOT NULL,
    mean_length          DOUBLE,            -- mean completion length in tokens
    clip_frac_correct    DOUBLE,            -- share of tokens clipped by PPO, correct rollouts
    clip_frac_incorrect  DOUBLE,            -- same, incorrect rollouts
    kept                 BOOLEAN NOT NULL,  -- false: dropped by dynamic sampling (all rewards equal)
    PRIMARY KEY (run_id, step, example_id)
);

CREATE TABLE evals (
    run_id       VARCHAR NOT NULL,
    step         INTEGER NOT NULL,     -- checkpoint step; 0 is the initial model
    example_id   VARCHAR NOT NULL,
    n            INTEGER NOT NULL,
    n_correct    INTEGER NOT NULL,
    n_timeout    INTEGER NOT NULL,
    n_error      INTEGER NOT NULL,
    temperature  DOUBLE NOT NULL,
    PRIMARY KEY (run_id, step, example_id)
);

CREATE TABLE rollouts (
    run_id        VARCHAR NOT NULL,
    step          INTEGER NOT NULL,    -- training step, or checkpoint step for eval samples
    example_id    VARCHAR NOT NULL,
    sample_index  INTEGER NOT NULL,
    phase         VARCHAR NOT NULL,    -- train | eval | gradsim
    completion    VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,    -- correct | incorrect | no_answer | timeout | error
    reward        DOUBLE NOT NULL,
    length        INTEGER NOT NULL,    -- tokens
    PRIMARY KEY (run_id, phase, step, example_id, sample_index)
);

CREATE TABLE label_sets (
    label_set    VARCHAR PRIMARY KEY,
    tau          DOUBLE NOT NULL,
    run_ids      JSON NOT NULL,
    config       JSON NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE labels (
    label_set        VARCHAR NOT NULL,
    example_id       VARCHAR NOT NULL,
    label            VARCHAR NOT NULL,  -- easy | learnable | unlearnable | never_solved | unstable
    initial_pass1    DOUBLE,
    final_pass1_min  DOUBLE,
    final_pass1_max  DOUBLE,
    train_correct    INTEGER,           -- correct rollouts seen in training, all runs
    PRIMARY KEY (label_set, example_id)
);

CREATE TABLE gradients (
    config_id    VARCHAR NOT NULL,     -- hash of the gradient config (model, adapter, projection)
    example_id   VARCHAR NOT NULL,
    n_rollouts   INTEGER NOT NULL,     -- correct rollouts averaged
    dim          INTEGER NOT NULL,
    vector       FLOAT[] NOT NULL,
    PRIMARY KEY (config_id, example_id)
);

CREATE TABLE gradsim (
    config_id    VARCHAR NOT NULL,
    example_id   VARCHAR NOT NULL,
    mean_sim     DOUBLE NOT NULL,      -- mean cosine similarity to every other example
    PRIMARY KEY (config_id, example_id)
);

CREATE TABLE judgments (
    example_id      VARCHAR NOT NULL,
    run_id          VARCHAR,
    step            INTEGER,
    sample_index    INTEGER,
    judge           VARCHAR NOT NULL,  -- step_checker | openai
    model           VARCHAR,
    rubric_version  VARCHAR NOT NULL,
    text_hash       VARCHAR NOT NULL,  -- cache key with judge model and rubric version
    score           DOUBLE,            -- 0..5; NULL unless status = ok
    status          VARCHAR NOT NULL,  -- ok | judge_error | refused
    rationale       VARCHAR,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE exports (
    export_id    VARCHAR PRIMARY KEY,
    created_at   TIMESTAMP NOT NULL,
    destination  VARCHAR NOT NULL,     -- folder or hub repo
    formats      JSON NOT NULL,
    config       JSON NOT NULL,
    n_in         INTEGER NOT NULL,
    n_kept       INTEGER NOT NULL,
    n_dropped    INTEGER NOT NULL
);

CREATE TABLE export_drops (
    export_id    VARCHAR NOT NULL,
    example_id   VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    PRIMARY KEY (export_id, example_id)
);
"""

_RUN_PROGRESS = """
ALTER TABLE runs ADD COLUMN last_step INTEGER DEFAULT 0;   -- steps whose records are all written
ALTER TABLE runs ADD COLUMN initial_run VARCHAR;           -- the probe run holding the initial-model eval
ALTER TABLE runs ADD COLUMN steps INTEGER;                 -- steps planned
"""

_SCORES = """
CREATE TABLE scores (
    label_set           VARCHAR NOT NULL,
    example_id          VARCHAR NOT NULL,
    initial_pass1       DOUBLE,    -- n_correct / n of the initial-model eval
    final_pass1_mean    DOUBLE,    -- mean over runs of the last-step eval
    final_pass1_by_run  JSON,      -- {run_id: pass@1}
    initial_pass_at_k   JSON,      -- {k: unbiased pass@k} of the initial eval
    final_pass_at_k     JSON,      -- {k: mean over runs of the last-step eval's pass@k}
    train_draws         INTEGER,   -- times drawn in training, all runs
    train_correct       INTEGER,   -- correct rollouts in training, all runs
    limr                DOUBLE,    -- LIMR learning impact, mean over runs
    hist_std            DOUBLE,    -- One-Shot RLVR: std of per-draw training accuracy, mean over runs
    confidence          DOUBLE,    -- Dataset Cartography: mean per-draw training accuracy, all runs
    variability         DOUBLE,    -- Dataset Cartography: std of per-draw training accuracy, all runs
    learnability        DOUBLE,    -- p (1 - p) with p the initial pass@1
    slope               DOUBLE,    -- least-squares slope of per-draw accuracy over steps, mean over runs
    PRIMARY KEY (label_set, example_id)
);
"""

_GRADSIM = """
CREATE TABLE gradient_configs (
    config_id    VARCHAR PRIMARY KEY,
    config       JSON NOT NULL,          -- model, adapter, rollout source, projection
    created_at   TIMESTAMP NOT NULL
);
ALTER TABLE gradsim ADD COLUMN label_set VARCHAR;      -- the labels its groups come from
ALTER TABLE gradsim ADD COLUMN label VARCHAR;          -- the example's label in that set
ALTER TABLE gradsim ADD COLUMN sim_by_group JSON;      -- {label: mean cosine similarity to that group}
CREATE TABLE gradsim_groups (
    config_id    VARCHAR NOT NULL,
    label_set    VARCHAR NOT NULL,
    group_a      VARCHAR NOT NULL,
    group_b      VARCHAR NOT NULL,
    mean_sim     DOUBLE,                 -- mean cosine similarity over pairs (a in A, b in B, a != b)
    n_pairs      BIGINT NOT NULL,
    PRIMARY KEY (config_id, label_set, group_a, group_b)
);
"""

_JUDGE = """
CREATE TABLE judge_cache (
    cache_key       VARCHAR PRIMARY KEY,   -- sha256 of judge, model, rubric version and the judged text
    judge           VARCHAR NOT NULL,
    model           VARCHAR,
    rubric_version  VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,      -- ok | refused (judge errors are never cached)
    score           DOUBLE,
    rationale       VARCHAR,
    created_at      TIMESTAMP NOT NULL
);
CREATE TABLE reasoning (
    example_id      VARCHAR NOT NULL,
    judge           VARCHAR NOT NULL,
    model           VARCHAR NOT NULL,      -- '' for judges without a model
    rubric_version  VARCHAR NOT NULL,
    n_judged        INTEGER NOT NULL,      -- rollouts with an ok judgment
    n_failed        INTEGER NOT NULL,      -- judge_error or refused
    mean_score      DOUBLE,
    std_score       DOUBLE,
    PRIMARY KEY (example_id, judge, model, rubric_version)
);
"""

_PREDICTIONS = """
CREATE TABLE prediction_sets (
    prediction_set  VARCHAR PRIMARY KEY,   -- hash of the config, the labels learned and the probe run
    label_set       VARCHAR NOT NULL,      -- labels learned (with --train-runs: the id `curator label --runs` gives them)
    probe_run       VARCHAR NOT NULL,      -- run whose initial eval gave the features
    config          JSON NOT NULL,         -- model, folds, seed, holdout, train runs, tau, features asked for
    metrics         JSON NOT NULL,         -- per-label AUROC (CV, held-out) with 95% CIs, accuracy, confusion, features used
    created_at      TIMESTAMP NOT NULL
);
CREATE TABLE predictions (
    prediction_set   VARCHAR NOT NULL,
    example_id       VARCHAR NOT NULL,     -- a probed example without a label in the label set
    predicted_label  VARCHAR NOT NULL,     -- the most probable label ('other': rare labels merged)
    probabilities    JSON NOT NULL,        -- {label: probability}, summing to 1
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (prediction_set, example_id)
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "run progress: last_step, initial_run, steps", _RUN_PROGRESS),
    Migration(3, "continuous learnability scores", _SCORES),
    Migration(4, "gradient similarity by group", _GRADSIM),
    Migration(5, "judge cache and per-example reasoning quality", _JUDGE),
    Migration(6, "learnability predictions from probe-time features", _PREDICTIONS),
)

LATEST = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to this database (0 for a new file)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]


def migrate(con: duckdb.DuckDBPyConnection, path: str = "workspace") -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    ).fetchall()
    have = current_version(con)
    if have > LATEST:
        raise SchemaTooNew(
            f"{path} has schema version {have}, newer than this curator knows ({LATEST}); "
            "upgrade curator (pip install -U curator-rlvr) to open it"
        )
    applied = []
    for m in MIGRATIONS:
        if m.version <= have:
            continue
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            con.execute(m.sql).fetchall()
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [m.version, m.name, datetime.now(timezone.utc).replace(tzinfo=None)],
            ).fetchall()
            con.execute("COMMIT").fetchall()
        except BaseException:
            con.execute("ROLLBACK").fetchall()
            raise
        applied.append(m)
    return applied
