"""The predict stage: guess an example's learnability label before training it.

    predict(workspace, PredictConfig()) -> PredictSummary

A scikit-learn classifier learns the labels of a label set from features that
cost nothing but a probe, then labels the examples that have a probe and no
label yet. Features (`build_features`, a pure function over DataFrames):

- the probe's initial eval: pass@1, its binomial standard error and its Beta(1, 1)
  posterior std, a smoothed log-odds, unbiased pass@4 and pass@8 (when n allows),
  p(1 - p), the sample count and the timeout/error share;
- the mean length of the probe's stored correct completions, when there are some;
- `gradsim.mean_sim` (similarity to every other example's initial-rollout gradient), when present;
- the judge's mean score of the *probe's* rollouts (`judgments` of the probe run), when present;
- prompt characters, words, digits and numbers; answer characters; digits, magnitude
  and sign of a numeric answer; reference solution characters;
- the dataset (one-hot) and the flat fields of `examples.meta`: numbers as they
  are, strings with few distinct values one-hot.

Nothing comes from training: not `history`, not the runs' final evals, not the
judge scores of training rollouts (an example with such scores was solved in
training, which is half of a label), and not `gradsim.sim_by_group` (its groups
are the labels themselves). A missing value is imputed with the median and
flagged in a `<feature>_missing` column; the summary lists every feature used
and every one left out, with the reason.

Evaluation: stratified k-fold cross-validation gives out-of-fold probabilities,
from which one-vs-rest AUROC per label (with a 200-resample bootstrap 95% CI),
macro AUROC, accuracy and the confusion matrix. `holdout` first sets aside a
stratified fraction of the labelled examples and scores the model trained on
the rest on it. `train_runs` learns from labels computed over those train runs
only (the label stage's own query, kept in memory so the latest label set does
not change) and also scores the held-out examples against the reference label
set (by default the latest, e.g. all seeds). Labels with fewer than
`min_per_label` examples are merged into "other", or left out when even merged
they are too few; fewer than 50 labelled examples in all gets a plain warning.

Predictions for unlabelled probed examples go to `predictions` and the run's
config and metrics to `prediction_sets`, under an id hashed from the inputs, so
the same command rewrites the same rows (in one transaction).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from curator.errors import CuratorError
from curator.store import Workspace, utcnow

MODELS = ("forest", "boosting", "logreg")
MIN_TRUSTED = 50  # fewer labelled examples than this gets the "too few to trust" warning
BOOTSTRAP = 200  # resamples behind each AUROC's 95% interval
MAX_LEVELS = 20  # a string meta field with more distinct values than this is free text, not a category
PASS_K = (4, 8)  # pass@k features beside pass@1
OTHER = "other"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NUMERIC = re.compile(r"[+-]?\d+(?:\.\d+)?")


@dataclass
class PredictConfig:
    label_set: str | None = None  # labels to learn (default: the latest); with train_runs, the reference
    probe_run: str | None = None  # run whose step-0 eval gives the features (default: the labels' initial run)
    model: str = "forest"  # forest | boosting | logreg
    folds: int = 5
    seed: int = 0
    min_per_label: int = 10
    test_size: float = 0.25  # fraction held out when holdout (or train_runs) is set
    holdout: bool = False
    train_runs: tuple[str, ...] = ()  # learn from labels over only these train runs
    tau: float | None = None  # threshold for train_runs labels (default: the reference label set's, else 0.1)
    features: tuple[str, ...] | None = None  # names or prefixes to keep (default: every available feature)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise CuratorError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.folds < 2:
            raise CuratorError(f"--folds must be at least 2, got {self.folds}")
        if not 0 < self.test_size < 1:
            raise CuratorError(f"--holdout must be a fraction in (0, 1), got {self.test_size}")
        if self.min_per_label < 2:
            raise CuratorError(f"--min-per-label must be at least 2, got {self.min_per_label}")
        self.train_runs = tuple(self.train_runs)
        if self.features is not None:
            self.features = tuple(self.features)


@dataclass
class LabelMetrics:
    label: str
    n: int  # examples of this label in the cross-validated set
    auroc: float | None  # one-vs-rest, out-of-fold
    ci: tuple[float, float] | None
    auroc_not_easy: float | None = None  # the same, among examples not labelled easy (easy is a probe threshold)
    holdout_n: int = 0
    holdout_auroc: float | None = None
    holdout_ci: tuple[float, float] | None = None
    holdout_auroc_not_easy: float | None = None
    reference_n: int = 0  # held-out examples with this label in the reference label set
    reference_auroc: float | None = None
    reference_ci: tuple[float, float] | None = None
    reference_auroc_not_easy: float | None = None


@dataclass
class PredictSummary:
    prediction_set: str
    label_set: str  # the labels learned from
    probe_run: str
    model: str
    train_runs: list[str]
    reference_label_set: str | None
    n_labelled: int  # labelled examples used (after rare labels were merged or left out)
    n_cv: int  # of which cross-validated (all but the held-out ones)
    n_holdout: int
    folds: int
    classes: list[str]
    per_label: list[LabelMetrics]
    macro_auroc: float | None
    accuracy: float
    confusion: dict[str, dict[str, int]]
    holdout_macro_auroc: float | None = None
    holdout_accuracy: float | None = None
    reference_macro_auroc: float | None = None
    reference_accuracy: float | None = None
    reference_agreement: float | None = None  # held-out examples whose train labels equal the reference's
    features: list[str] = field(default_factory=list)
    not_used: dict[str, str] = field(default_factory=dict)  # feature (group) -> why it is not used
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_predicted: int = 0
    predicted: dict[str, int] = field(default_factory=dict)
    apply_runs: list[str] = field(default_factory=list)  # probes of unlabelled examples (same eval settings)


# -- features (pure) ----------------------------------------------------------


@dataclass
class FeatureSet:
    frame: pd.DataFrame  # index example_id, float columns, no missing values
    not_used: dict[str, str]  # feature (group) -> reason

    @property
    def names(self) -> list[str]:
        return list(self.frame.columns)


def _pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    from curator.analysis.scores import pass_at_k

    return np.array([np.nan if (v := pass_at_k(int(a), int(b), k)) is None else v for a, b in zip(n, c)])


def probe_features(probe: pd.DataFrame) -> pd.DataFrame:
    """probe: example_id, n, n_correct[, n_timeout, n_error] of the initial eval."""
    n = probe["n"].to_numpy(float)
    c = probe["n_correct"].to_numpy(float)
    p = c / n
    out = pd.DataFrame(index=pd.Index(probe["example_id"], name="example_id"))
    out["pass1"] = p
    out["pass1_se"] = np.sqrt(p * (1 - p) / n)  # binomial standard error of the n-sample estimate
    a, b = c + 1, n - c + 1  # Beta(1, 1) posterior: nonzero spread even at 0 or n correct
    out["pass1_posterior_std"] = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    out["pass1_logit"] = np.log((c + 0.5) / (n - c + 0.5))
    for k in PASS_K:
        out[f"pass_at_{k}"] = _pass_at_k(n, c, k)
    out["pass1_variance"] = p * (1 - p)
    out["probe_samples"] = n
    failed = np.zeros_like(n)
    for col in ("n_timeout", "n_error"):
        if col in probe:
            failed += probe[col].fillna(0).to_numpy(float)
    out["probe_fail_share"] = failed / n
    return out


def text_features(examples: pd.DataFrame) -> pd.DataFrame:
    """examples: example_id, prompt, answer[, solution]."""
    prompts = [p if isinstance(p, str) else "" for p in examples["prompt"]]
    answers = [a.strip().replace(",", "").replace(" ", "") if isinstance(a, str) else "" for a in examples["answer"]]
    out = pd.DataFrame(index=pd.Index(examples["example_id"], name="example_id"))
    out["prompt_chars"] = [float(len(p)) for p in prompts]
    out["prompt_words"] = [float(len(p.split())) for p in prompts]
    out["prompt_digits"] = [float(sum(ch.isdigit() for ch in p)) for p in prompts]
    out["prompt_numbers"] = [float(len(_NUMBER.findall(p))) for p in prompts]
    out["answer_chars"] = [float(len(a)) if isinstance(a, str) else np.nan for a in examples["answer"]]
    numeric = [bool(_NUMERIC.fullmatch(a)) for a in answers]
    values = [float(a) if ok else np.nan for a, ok in zip(answers, numeric)]
    out["answer_numeric"] = np.asarray(numeric, float)
    out["answer_digits"] = [float(sum(ch.isdigit() for ch in a)) if ok else np.nan for a, ok in zip(answers, numeric)]
    out["answer_log_magnitude"] = np.log10(1 + np.abs(np.asarray(values)))
    out["answer_negative"] = [float(v < 0) if not math.isnan(v) else np.nan for v in values]
    if "solution" in examples and examples["solution"].notna().any():
        out["solution_chars"] = [float(len(s)) if isinstance(s, str) else np.nan for s in examples["solution"]]
    return out


def _parse_meta(value) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def source_features(examples: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Dataset one-hot and flat `meta` fields; returns the frame and the fields left out, with why."""
    out = pd.DataFrame(index=pd.Index(examples["example_id"], name="example_id"))
    skipped: dict[str, str] = {}
    if "dataset" in examples:
        for name in sorted(examples["dataset"].dropna().unique()):
            out[f"dataset={name}"] = (examples["dataset"] == name).to_numpy(float)
    if "meta" not in examples:
        return out, skipped
    metas = [_parse_meta(m) for m in examples["meta"]]
    for key in sorted({k for m in metas for k in m}):
        values = [m.get(key) for m in metas]
        present = [v for v in values if v is not None]
        col = f"meta.{key}"
        if all(isinstance(v, (bool, int, float)) for v in present):
            out[col] = [float(v) if v is not None else np.nan for v in values]
        elif all(isinstance(v, str) for v in present):
            levels = sorted(set(present))
            if len(levels) == 1:
                skipped[col] = "one value wherever present"
                continue
            if len(levels) > MAX_LEVELS or len(levels) > len(present) / 2:
                skipped[col] = f"text with {len(levels)} distinct values, not a category"
                continue
            for level in levels:
                out[f"{col}={level}"] = [float(v == level) for v in values]
            if len(present) < len(values):
                out[f"{col}_missing"] = [float(v is None) for v in values]
        else:
            skipped[col] = "nested or mixed-type values"
    return out, skipped


def build_features(probe: pd.DataFrame, examples: pd.DataFrame, gradsim: pd.DataFrame | None = None,
                   judge: pd.DataFrame | None = None, probe_lengths: pd.DataFrame | None = None,
                   not_used: dict[str, str] | None = None) -> FeatureSet:
    """Features of every probed example, indexed by example_id.

    probe: example_id, n, n_correct[, n_timeout, n_error] (the step-0 eval);
    examples: example_id, dataset, prompt, answer[, solution, meta];
    gradsim: example_id, mean_sim; judge: example_id, score (mean judge score of probe rollouts);
    probe_lengths: example_id, length (mean length of the probe's stored correct completions).
    Optional inputs that are None or empty are reported in `not_used`.
    """
    notes = dict(not_used or {})
    ids = pd.Index(sorted(probe["example_id"]), name="example_id")
    frame = probe_features(probe).reindex(ids)
    ex = examples[examples["example_id"].isin(ids)]
    frame = frame.join(text_features(ex))
    source, skipped = source_features(ex)
    frame = frame.join(source)
    notes.update(skipped)
    for name, extra, column, missing in (
        ("grad_mean_sim", gradsim, "mean_sim", "no gradient similarity for this workspace (`curator gradsim`)"),
        ("judge_probe_score", judge, "score", "no judge scores of the probe's rollouts"),
        ("probe_correct_length", probe_lengths, "length", "the probe kept no correct completions"),
    ):
        if extra is None or not len(extra) or not extra["example_id"].isin(ids).any():
            notes.setdefault(name, missing)
            continue
        frame[name] = extra.set_index("example_id")[column].astype(float).reindex(ids)
    return impute(frame, notes)


def impute(frame: pd.DataFrame, notes: dict[str, str]) -> FeatureSet:
    """Median-impute missing values with a `<col>_missing` flag; leave out empty and constant columns, saying so."""
    frame = frame.astype(float)
    out = {}
    for col in frame.columns:
        values = frame[col]
        missing = values.isna()
        if missing.all():
            notes[col] = "no example has a value"
            continue
        if missing.any():
            out[col] = values.fillna(values.median())
            out[f"{col}_missing"] = missing.astype(float)
        else:
            out[col] = values
    result = pd.DataFrame(out, index=frame.index)
    for col in list(result.columns):
        if result[col].nunique() <= 1:
            notes.setdefault(col, "the same value for every example")
            result = result.drop(columns=col)
    return FeatureSet(result, notes)


def select_features(fs: FeatureSet, wanted: tuple[str, ...] | None) -> FeatureSet:
    """Keep the columns named in `wanted`, or starting with one of them (their missing flags ride along)."""
    if not wanted:
        return fs
    keep = [c for c in fs.names if any(c == w or c.startswith(w) for w in wanted)]
    unknown = [w for w in wanted if not any(c == w or c.startswith(w) for c in fs.names)]
    if unknown:
        raise CuratorError(f"--features: no feature named or starting with {', '.join(unknown)}; "
                           f"available: {', '.join(fs.names)}")
    notes = dict(fs.not_used) | {c: "not chosen with --features" for c in fs.names if c not in keep}
    return FeatureSet(fs.frame[keep], notes)


# -- workspace inputs ---------------------------------------------------------


def _tables(ws: Workspace) -> set[str]:
    return {r[0] for r in ws.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")}


def load_features(ws: Workspace, probe_run: str, apply_runs: tuple[str, ...] = ()) -> FeatureSet:
    """Read the inputs of `build_features` (reads only).

    Features come from `probe_run`'s step-0 eval; examples it did not probe
    take theirs from the first of `apply_runs` that did (probes of new data,
    made with the same eval settings), so they can be predicted.
    """
    tables = _tables(ws)
    runs = [probe_run, *apply_runs]
    probe = ws.df("SELECT example_id, n, n_correct, n_timeout, n_error, run_id FROM evals "
                  "WHERE list_contains(?, run_id) AND step = 0 AND n > 0 "
                  "QUALIFY row_number() OVER (PARTITION BY example_id ORDER BY list_position(?, run_id)) = 1 "
                  "ORDER BY example_id", [runs, runs])
    if not (probe["run_id"] == probe_run).any():
        raise CuratorError(f"run {probe_run} has no initial (step 0) eval; `curator probe` makes one")
    source_run = probe.pop("run_id")
    examples = ws.df("SELECT example_id, dataset, prompt, answer, solution, meta::VARCHAR AS meta FROM examples "
                     "WHERE list_contains(?, example_id)", [probe["example_id"].tolist()])
    notes = {"gradsim.sim_by_group": "its groups are the labels (would leak them)",
             "history, final evals, training judgments": "they come from training (would leak the label)"}
    gradsim = None
    if {"gradsim", "gradient_configs"} <= tables:
        config = ws.sql("SELECT c.config_id FROM gradient_configs c WHERE c.config_id IN "
                        "(SELECT config_id FROM gradsim) ORDER BY c.created_at DESC, c.config_id LIMIT 1").fetchone()
        if config:
            gradsim = ws.df("SELECT example_id, mean_sim FROM gradsim WHERE config_id = ?", [config[0]])
    elif "gradsim" not in tables:
        notes["grad_mean_sim"] = "the workspace has no gradsim table"
    judge = None
    if "judgments" in tables:
        judge = ws.df("SELECT example_id, avg(score) AS score FROM judgments "
                      "WHERE list_contains(?, run_id) AND status = 'ok' GROUP BY example_id", [runs])
        if judge.empty and ws.sql("SELECT count(*) FROM judgments WHERE status = 'ok'").fetchone()[0]:
            notes["judge_probe_score"] = ("the judgments are of training rollouts, not the probe's "
                                          "(would leak the label)")
    else:
        notes["judge_probe_score"] = "the workspace has no judgments table"
    lengths = None
    if "rollouts" in tables:
        lengths = ws.df("SELECT r.example_id, avg(r.length) AS length FROM rollouts r JOIN "
                        "(SELECT unnest(?) AS example_id, unnest(?) AS run_id) p USING (example_id, run_id) "
                        "WHERE r.phase = 'eval' AND r.step = 0 AND r.status = 'correct' GROUP BY r.example_id",
                        [probe["example_id"].tolist(), source_run.tolist()])
    return build_features(probe, examples, gradsim, judge, lengths, notes)


@dataclass
class TrainingLabels:
    labels: pd.DataFrame  # example_id, label
    label_set: str
    initial_run: str | None
    runs: list[str]
    tau: float


def _stored_label_set(ws: Workspace, name: str | None) -> tuple[str, float, list[str], str | None] | None:
    row = ws.sql("SELECT label_set, tau, run_ids, config FROM label_sets "
                 + ("WHERE label_set = ? " if name else "") + "ORDER BY created_at DESC, label_set LIMIT 1",
                 [name] if name else []).fetchone()
    if row is None:
        if name:
            raise CuratorError(f"no label set {name}; `curator sql \"SELECT label_set FROM label_sets\"` lists them")
        return None
    runs = json.loads(row[2])
    initial = json.loads(row[3]).get("initial_run") if row[3] else None
    if initial is None and runs:
        found = ws.sql("SELECT DISTINCT initial_run FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                       [runs]).fetchall()
        initial = found[0][0] if len(found) == 1 else None
    return row[0], float(row[1]), runs, initial


def training_labels(ws: Workspace, config: PredictConfig) -> tuple[TrainingLabels, TrainingLabels | None]:
    """The labels to learn and, with train_runs, the reference labels to score the held-out examples against.

    With train_runs the labels come from the label stage's own query over those
    runs (`curator.analysis.labels.compute_labels`), computed in memory: nothing
    is written to label_sets, so the latest label set stays what it was. Their
    id is the one `curator label --runs` would give them.
    """
    from curator.analysis.labels import chosen_runs, compute_labels, label_set_id

    stored = _stored_label_set(ws, config.label_set)
    reference = None
    if stored is not None:
        ls, tau, runs, initial = stored
        frame = ws.df("SELECT example_id, label FROM labels WHERE label_set = ? ORDER BY example_id", [ls])
        reference = TrainingLabels(frame, ls, initial, runs, tau)
    if not config.train_runs:
        if reference is None:
            raise CuratorError("no label set in the workspace; run `curator label` first, or pass --train-runs")
        return reference, None
    runs, initial = chosen_runs(ws, config.train_runs)
    tau = config.tau if config.tau is not None else (reference.tau if reference is not None else 0.1)
    frame = compute_labels(ws, runs, initial, tau)[["example_id", "label"]]
    own = TrainingLabels(frame, label_set_id(tau, runs), initial, runs, tau)
    if reference is not None and reference.label_set == own.label_set:
        reference = None
    return own, reference


def default_probe_run(ws: Workspace, labels: TrainingLabels, wanted: str | None) -> str:
    if wanted:
        if not ws.sql("SELECT 1 FROM runs WHERE run_id = ?", [wanted]).fetchone():
            raise CuratorError(f"no such run: {wanted}; `curator sql \"SELECT run_id, kind FROM runs\"` lists them")
        return wanted
    if labels.initial_run:
        return labels.initial_run
    row = ws.sql("SELECT run_id FROM runs WHERE kind = 'probe' AND status = 'finished' "
                 "ORDER BY coalesce(finished_at, started_at) DESC, run_id LIMIT 1").fetchone()
    if row is None:
        raise CuratorError("no probe run to take features from; run `curator probe` first or pass --probe-run")
    return row[0]


def apply_probe_runs(ws: Workspace, probe_run: str) -> tuple[str, ...]:
    """Other finished probe runs made with the same eval n and temperature as `probe_run`, newest first:
    where examples without a label get their features."""
    def settings(config: str) -> tuple:
        ev = json.loads(config).get("eval", {})
        return ev.get("n"), ev.get("temperature")

    row = ws.sql("SELECT config FROM runs WHERE run_id = ?", [probe_run]).fetchone()
    if row is None:
        return ()
    want = settings(row[0])
    rows = ws.sql("SELECT run_id, config FROM runs WHERE kind = 'probe' AND status = 'finished' AND run_id <> ? "
                  "ORDER BY coalesce(finished_at, started_at) DESC, run_id", [probe_run]).fetchall()
    return tuple(r for r, c in rows if settings(c) == want)


# -- models and metrics -------------------------------------------------------


def make_model(kind: str, seed: int):
    """An unfitted classifier; class weights balanced, one thread."""
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=300, min_samples_leaf=2, max_features="sqrt",
                                      class_weight="balanced_subsample", random_state=seed, n_jobs=1)
    if kind == "boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_leaf_nodes=8,
                                              min_samples_leaf=5, l2_regularization=1.0,
                                              class_weight="balanced", random_state=seed)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000))


def _proba(model, x: np.ndarray, classes: list[str]) -> np.ndarray:
    """Probabilities in the order of `classes` (a class the model never saw gets 0)."""
    got = model.predict_proba(x)
    out = np.zeros((len(x), len(classes)))
    for j, c in enumerate(model.classes_):
        out[:, classes.index(c)] = got[:, j]
    return out


def auroc(y: np.ndarray, score: np.ndarray) -> float | None:
    """One-vs-rest AUROC of a boolean target, ties counted half; None when one side is empty."""
    from scipy.stats import rankdata

    y = np.asarray(y, bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def bootstrap_ci(y: np.ndarray, score: np.ndarray, seed: int, n: int = BOOTSTRAP) -> tuple[float, float] | None:
    """Percentile 95% interval of the AUROC over `n` resamples of the examples."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        v = auroc(y[idx], score[idx])
        if v is not None:
            values.append(v)
    if len(values) < n // 2:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def per_label_auroc(truth: np.ndarray, proba: np.ndarray, classes: list[str], seed: int):
    """{label: (n positives, AUROC, CI, AUROC among the examples not labelled easy)}, one-vs-rest.

    "easy" is a threshold on the probe's own pass@1, so telling it apart is
    trivial when the features come from that probe; the AUROC among the rest
    says whether the model tells the hard labels apart.
    """
    out = {}
    hard = truth != "easy"
    for j, c in enumerate(classes):
        y = truth == c
        not_easy = auroc(y[hard], proba[hard, j]) if "easy" in classes and c != "easy" else None
        out[c] = (int(y.sum()), auroc(y, proba[:, j]), bootstrap_ci(y, proba[:, j], seed + j), not_easy)
    return out


def _macro(values) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None


def merge_rare(labels: pd.Series, min_per_label: int) -> tuple[pd.Series, list[str]]:
    """Labels with fewer than min_per_label examples become "other"; if even merged they are too few, NaN."""
    counts = labels.value_counts()
    rare = sorted(counts[counts < min_per_label].index)
    if not rare:
        return labels, []
    total = int(counts[rare].sum())
    listing = ", ".join(f"{r} ({counts[r]})" for r in rare)
    if total >= min_per_label and len(rare) > 1:
        return labels.where(~labels.isin(rare), OTHER), [
            f"fewer than {min_per_label} examples: {listing}; merged into '{OTHER}'"]
    return labels.where(~labels.isin(rare)), [
        f"fewer than {min_per_label} examples: {listing}; left out (too few to learn, even merged)"]


# -- the stage ----------------------------------------------------------------


def prediction_set_id(config: PredictConfig, label_set: str, probe_run: str, reference: str | None,
                      apply_runs: tuple[str, ...] = ()) -> str:
    blob = {"config": asdict(config), "label_set": label_set, "probe_run": probe_run, "reference": reference}
    if apply_runs:  # ids of prediction sets without other probes stay as they were
        blob["apply_runs"] = sorted(apply_runs)
    blob = json.dumps(blob, sort_keys=True, default=list)
    return "ps-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def predict(ws: Workspace, config: PredictConfig) -> PredictSummary:
    own, reference = training_labels(ws, config)
    probe_run = default_probe_run(ws, own, config.probe_run)
    apply_runs = apply_probe_runs(ws, probe_run)
    fs = select_features(load_features(ws, probe_run, apply_runs), config.features)
    y, notes = _usable_labels(own, fs.frame, probe_run, config.min_per_label)
    classes = sorted(y.unique())
    warnings = []
    if len(y) < MIN_TRUSTED:
        warnings.append(f"too few labelled examples to trust ({len(y)}); the AUROCs below have wide error")
    cv_ids, ho_ids = _split(y, config, len(classes))

    per_label, summary = _cross_validate(fs.frame, y.loc[cv_ids], classes, config, notes)
    summary.update(prediction_set="", label_set=own.label_set, probe_run=probe_run, model=config.model,
                   train_runs=list(own.runs) if config.train_runs else [],
                   reference_label_set=reference.label_set if reference is not None else None,
                   n_labelled=len(y), n_holdout=len(ho_ids), classes=classes, per_label=per_label,
                   features=fs.names, not_used=fs.not_used, warnings=warnings, notes=notes)
    s = PredictSummary(**summary)
    if len(ho_ids):
        _score_holdout(s, fs.frame, y, cv_ids, ho_ids, reference, config)

    # apply: a model fitted on every usable labelled example, to the probed examples without a label
    unlabelled = fs.frame.index[~fs.frame.index.isin(own.labels["example_id"])]
    rows = pd.DataFrame(columns=["example_id", "predicted_label", "probabilities"])
    if len(unlabelled):
        final = make_model(config.model, config.seed).fit(fs.frame.loc[y.index].to_numpy(float), y.to_numpy())
        proba = _proba(final, fs.frame.loc[unlabelled].to_numpy(float), classes)
        rows = pd.DataFrame({
            "example_id": unlabelled.to_numpy(),
            "predicted_label": np.asarray(classes)[proba.argmax(1)],
            "probabilities": [json.dumps(dict(zip(classes, map(float, row)))) for row in proba],
        })
        s.predicted = {c: int((rows["predicted_label"] == c).sum()) for c in classes}
    s.n_predicted = len(rows)
    s.apply_runs = list(apply_runs)
    s.prediction_set = prediction_set_id(config, own.label_set, probe_run, s.reference_label_set, apply_runs)
    _write(ws, s, rows, config, own)
    return s


def _usable_labels(own: TrainingLabels, features: pd.DataFrame, probe_run: str,
                   min_per_label: int) -> tuple[pd.Series, list[str]]:
    """Labels of the probed labelled examples, rare ones merged or left out, indexed by example_id."""
    notes = []
    labelled = own.labels.set_index("example_id")["label"]
    no_probe = int((~labelled.index.isin(features.index)).sum())
    if no_probe:
        notes.append(f"{no_probe} labelled examples have no eval in probe run {probe_run}; left out")
    labelled = labelled[labelled.index.isin(features.index)].sort_index()
    y, merged = merge_rare(labelled, min_per_label)
    y = y.dropna()
    if y.nunique() < 2:
        raise CuratorError(f"need at least two labels with {min_per_label} or more examples to learn from, "
                           f"found {dict(labelled.value_counts())}; lower --min-per-label or label more examples")
    return y, notes + merged


def _split(y: pd.Series, config: PredictConfig, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(cross-validated ids, held-out ids): a stratified split when holding out, else everything is CV."""
    from sklearn.model_selection import train_test_split

    ids = y.index.to_numpy()
    if not (config.holdout or config.train_runs):
        return ids, ids[:0]
    try:
        cv_ids, ho_ids = train_test_split(ids, test_size=config.test_size, random_state=config.seed,
                                          stratify=y.to_numpy())
    except ValueError as e:  # too few examples for a stratified split of this size
        raise CuratorError(f"cannot hold out {config.test_size:g} of {len(ids)} labelled examples in "
                           f"{n_classes} labels: {e}") from None
    return np.sort(cv_ids), np.sort(ho_ids)


def _cross_validate(features: pd.DataFrame, y: pd.Series, classes: list[str], config: PredictConfig,
                    notes: list[str]) -> tuple[list[LabelMetrics], dict]:
    """Out-of-fold probabilities -> per-label metrics and the summary's CV fields."""
    from sklearn.model_selection import StratifiedKFold

    x, labels = features.loc[y.index].to_numpy(float), y.to_numpy()
    smallest = int(y.value_counts().min())
    folds = min(config.folds, smallest)
    if folds < 2:
        raise CuratorError(f"a label has only {smallest} example(s) left for cross-validation; "
                           "lower --holdout or --min-per-label")
    if folds < config.folds:
        notes.append(f"{folds} folds instead of {config.folds}: the rarest label has {smallest} examples")
    oof = np.zeros((len(y), len(classes)))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=config.seed).split(x, labels):
        model = make_model(config.model, config.seed).fit(x[train], labels[train])
        oof[test] = _proba(model, x[test], classes)
    cv = per_label_auroc(labels, oof, classes, config.seed)
    predicted = np.asarray(classes)[oof.argmax(1)]
    confusion = {t: {p: int(((labels == t) & (predicted == p)).sum()) for p in classes} for t in classes}
    return [LabelMetrics(c, *cv[c]) for c in classes], {
        "n_cv": len(y), "folds": folds, "macro_auroc": _macro(v[1] for v in cv.values()),
        "accuracy": float((predicted == labels).mean()), "confusion": confusion}


def _score_holdout(s: PredictSummary, features: pd.DataFrame, y: pd.Series, cv_ids: np.ndarray,
                   ho_ids: np.ndarray, reference: TrainingLabels | None, config: PredictConfig) -> None:
    """Fit on the CV part, score the held-out part against its own labels and, if given, the reference's."""
    classes = s.classes
    model = make_model(config.model, config.seed).fit(features.loc[cv_ids].to_numpy(float), y.loc[cv_ids].to_numpy())
    proba = _proba(model, features.loc[ho_ids].to_numpy(float), classes)
    y_ho = y.loc[ho_ids].to_numpy()
    predicted = np.asarray(classes)[proba.argmax(1)]
    ho = per_label_auroc(y_ho, proba, classes, config.seed + 100)
    for m in s.per_label:
        m.holdout_n, m.holdout_auroc, m.holdout_ci, m.holdout_auroc_not_easy = ho[m.label]
    s.holdout_macro_auroc = _macro(v[1] for v in ho.values())
    s.holdout_accuracy = float((predicted == y_ho).mean())
    thin = [f"{m.label} ({m.holdout_n})" for m in s.per_label if m.holdout_n < config.min_per_label]
    if thin:
        s.warnings.append(f"held-out labels with fewer than {config.min_per_label} examples: {', '.join(thin)}; "
                          "their held-out AUROCs rest on a handful of positives")
    if reference is None:
        return
    ref = reference.labels.set_index("example_id")["label"]
    keep = np.isin(ho_ids, ref.index)
    ref_y = ref.reindex(ho_ids[keep]).to_numpy()
    ref_y = np.where(np.isin(ref_y, classes), ref_y, OTHER if OTHER in classes else ref_y)
    rm = per_label_auroc(ref_y, proba[keep], classes, config.seed + 200)
    for m in s.per_label:
        m.reference_n, m.reference_auroc, m.reference_ci, m.reference_auroc_not_easy = rm[m.label]
    s.reference_macro_auroc = _macro(v[1] for v in rm.values())
    s.reference_accuracy = float((predicted[keep] == ref_y).mean())
    s.reference_agreement = float((y_ho[keep] == ref_y).mean())


def _write(ws: Workspace, s: PredictSummary, rows: pd.DataFrame, config: PredictConfig, own: TrainingLabels) -> None:
    """Replace the prediction set's rows in one transaction."""
    now = utcnow()
    with ws.transaction():
        ws.execute("DELETE FROM predictions WHERE prediction_set = ?", [s.prediction_set])
        ws.execute("DELETE FROM prediction_sets WHERE prediction_set = ?", [s.prediction_set])
        ws.write("prediction_sets", pd.DataFrame([{
            "prediction_set": s.prediction_set, "label_set": own.label_set, "probe_run": s.probe_run,
            "config": json.dumps(asdict(config) | {"train_label_runs": own.runs, "tau": own.tau}),
            "metrics": json.dumps(metrics_dict(s)), "created_at": now}]))
        if len(rows):
            ws.write("predictions", rows.assign(prediction_set=s.prediction_set, created_at=now))


def metrics_dict(s: PredictSummary) -> dict:
    """The summary as JSON-ready data, as stored in prediction_sets.metrics."""
    out = asdict(s)
    out.pop("prediction_set")
    return out
