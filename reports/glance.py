"""The "At a glance" box: plain-language findings computed from the sections' data.

Each finding is a level (`warn`: something to act on, `good`, `info`) and a
sentence with its key number in `strong`. Thresholds are stated here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from curator.reports.data import LIKELY

WARN_QUARANTINE = 0.05  # share of source rows quarantined
WARN_EASY = 0.40  # share of examples easy from the start
WARN_NEVER = 0.10  # share never solved
WARN_UNLEARNABLE = 0.10  # share unlearnable
WARN_UNSTABLE = 0.15  # share on which the runs disagree


@dataclass
class Finding:
    level: str  # warn | good | info
    strong: str  # the key number or phrase, shown in bold
    text: str  # the rest of the sentence


def _name(label: str) -> str:
    return label.replace("_", " ")


def _prediction_finding(p) -> Finding:
    """What a prediction set says about unlabelled data, and how far to trust it, in one sentence."""
    cv = (f"cross-validated macro AUROC {p.macro_auroc:.3f}" if p.macro_auroc is not None
          else "no cross-validated AUROC")
    learned = f"{cv} on {p.n_labelled:,} labelled examples" if p.n_labelled is not None else cv
    hard = {row["label"]: row["not_easy"] for row in p.per_label if row["not_easy"] is not None}
    if "unlearnable" in hard:
        learned += f", {hard['unlearnable']:.2f} for unlearnable among the examples that are not easy"
    warned = f" The predictor warns: {p.warnings[0]}" + ("" if p.warnings[0].endswith(".") else ".") \
        if p.warnings else ""
    level = "warn" if p.warnings else "info"
    if not p.n_predicted:
        return Finding(level, "Label predictor", f"{p.prediction_set}: {learned}. No probed example is without a "
                                                 "label, so nothing was predicted; probe new data, then run "
                                                 "curator predict." + warned)
    by = {c["label"]: c for c in p.counts}
    likely = [f"{by[lab]['likely']:,} likely {_name(lab)}" for lab in ("unlearnable", "never_solved") if lab in by]
    text = " and ".join(likely) + f" (probability \u2265 {LIKELY:g}); " if likely else ""
    text += "by the most probable label, " + ", ".join(f"{c['predicted']:,} {_name(c['label'])}" for c in p.counts)
    text += f". Estimates from the probe alone, not labels: {learned}." + warned
    n = p.n_predicted
    return Finding(level, f"{n:,} unlabelled example{'s' if n != 1 else ''} {'have' if n != 1 else 'has'} "
                          "predicted labels:", text)


def findings(overview, labels, dynamics, gradsim, reasoning, exports, predictions=None) -> list[Finding]:
    out: list[Finding] = []
    if overview is not None:
        rows = overview.n_examples + overview.n_quarantined
        share = overview.n_quarantined / rows if rows else 0.0
        n_ds = len(overview.datasets)
        text = (f"examples from {n_ds} dataset{'s' if n_ds != 1 else ''}; {overview.n_quarantined:,} rows "
                f"quarantined ({share:.1%})")
        if overview.quarantine:
            text += f", most often for \u201c{overview.quarantine[0]['reason']}\u201d"
        out.append(Finding("warn" if share > WARN_QUARANTINE else "info", f"{overview.n_examples:,}", text + "."))
    if labels is not None:
        by = {c["label"]: c for c in labels.counts}
        tau = labels.info.tau

        def share(lab):
            return by[lab]["share"] if lab in by else 0.0

        if "easy" in by:
            out.append(Finding("warn" if share("easy") > WARN_EASY else "info", f"{share('easy'):.0%} are easy",
                               f"(initial pass@1 above {tau:g}): the model already solves them, so RL learns "
                               "little from them."))
        if "never_solved" in by:
            out.append(Finding("warn" if share("never_solved") > WARN_NEVER else "info",
                               f"{share('never_solved'):.0%} were never solved",
                               "in any training step of any run: they give GRPO no reward signal at all."))
        if "unlearnable" in by:
            out.append(Finding("warn" if share("unlearnable") > WARN_UNLEARNABLE else "info",
                               f"{share('unlearnable'):.0%} are unlearnable",
                               f"solved at least once during training, yet final pass@1 stays at or below {tau:g} "
                               "in every run."))
        if "learnable" in by:
            out.append(Finding("good", f"{share('learnable'):.0%} are learnable",
                               f"hard at first, above {tau:g} after training in every run: where RL pays off."))
        if "unstable" in by:
            out.append(Finding("warn" if share("unstable") > WARN_UNSTABLE else "info",
                               f"{share('unstable'):.0%} are unstable",
                               "the runs disagree on them; more seeds would settle their label."))
    if dynamics is not None and dynamics.by_run:
        firsts, lasts = [], []
        for pts in dynamics.by_run.values():
            k = max(1, len(pts) // 10)
            firsts.append(sum(y for _, y, _ in pts[:k]) / k)
            lasts.append(sum(y for _, y, _ in pts[-k:]) / k)
        a, b = sum(firsts) / len(firsts), sum(lasts) / len(lasts)
        verb = "rose" if b > a + 0.005 else ("fell" if b < a - 0.005 else "stayed flat")
        out.append(Finding("good" if verb == "rose" else "warn", f"Training reward {verb}",
                           f"from {a:.3f} (first 10% of steps) to {b:.3f} (last 10%), mean over "
                           f"{len(dynamics.by_run)} run{'s' if len(dynamics.by_run) != 1 else ''}."))
    if gradsim is not None:
        m = {b.label: b.mean for b in gradsim.boxes}
        if "unlearnable" in m and "learnable" in m:
            lower = m["unlearnable"] < m["learnable"]
            out.append(Finding("info", f"Gradient similarity: unlearnable {m['unlearnable']:+.4f}, "
                                       f"learnable {m['learnable']:+.4f}",
                               "(mean similarity to all other examples): unlearnable examples are "
                               + ("the less typical ones, as the paper found." if lower else
                                  "not less typical than learnable ones here.")))
    if reasoning is not None:
        m = {b.label: b.mean for b in reasoning.boxes}
        if "unlearnable" in m and "learnable" in m:
            out.append(Finding("info", f"Judge score: unlearnable {m['unlearnable']:.2f}, learnable "
                                       f"{m['learnable']:.2f}",
                               f"(out of 5, mean per example, judge {reasoning.judge}): "
                               + ("unlearnable examples reach right answers through weaker reasoning."
                                  if m["unlearnable"] < m["learnable"] - 0.05 else
                                  "no sign of weaker reasoning behind their right answers.")))
    if predictions is not None:
        out.append(_prediction_finding(predictions))
    if exports is not None and exports.exports:
        e = exports.exports[0]
        out.append(Finding("info", f"Last export kept {e['n_kept']:,} of {e['n_in']:,}",
                           f"examples ({e['n_dropped']:,} dropped) to {e['destination']}."))
    return out
