"""One colour per learnability label, the same in every figure, safe for colour-blind readers.

The hues are the Okabe-Ito set (distinguishable under the common colour-vision
deficiencies). Labels curator does not know (from an importer, say) take the
remaining Okabe-Ito hues in order of first appearance, then a neutral grey.
Lines also get a dash pattern per label, so a chart printed in grey still reads.

Page colours (text, grid, background) are CSS custom properties switched by
`prefers-color-scheme` in the stylesheet; chart text and axes use CSS classes
and `currentColor`, so charts follow light and dark mode without a second copy.
"""

from __future__ import annotations

LABEL_ORDER = ("easy", "learnable", "unlearnable", "never_solved", "unstable")

LABEL_COLOURS = {
    "easy": "#56B4E9",  # sky blue
    "learnable": "#009E73",  # bluish green
    "unlearnable": "#D55E00",  # vermillion
    "never_solved": "#CC79A7",  # reddish purple
    "unstable": "#E69F00",  # orange
}
SPARE_COLOURS = ("#0072B2", "#F0E442")  # blue, yellow: for labels curator does not define
NEUTRAL = "#8C8C8C"
UNLABELLED = "unlabelled"  # examples outside the label set (e.g. in gradient similarity)

LABEL_DASHES = {
    "easy": "",
    "learnable": "8 3",
    "unlearnable": "2 2",
    "never_solved": "8 3 2 3",
    "unstable": "4 4",
}

# what each label means, in one line (used in legends' tooltips and the labels table)
LABEL_MEANINGS = {
    "easy": "initial pass@1 above tau: RL has little to teach",
    "learnable": "hard at first, final pass@1 above tau in every run",
    "unlearnable": "solved during training, yet final pass@1 at most tau in every run",
    "never_solved": "no correct rollout in any training step of any run",
    "unstable": "the runs disagree",
}


# judge scores 0..5: one blue ramp, light (0) to dark (5); kept apart from the label hues
SCORE_COLOURS = ("#DCE5EE", "#B9CFE3", "#8DB3D6", "#5F95C2", "#3471A6", "#0F4C81")


def order_labels(labels) -> list[str]:
    """Known labels in their canonical order, then any others alphabetically, "unlabelled" last."""
    present = set(labels)
    rest = sorted(present - set(LABEL_ORDER) - {UNLABELLED})
    return [lab for lab in LABEL_ORDER if lab in present] + rest + ([UNLABELLED] if UNLABELLED in present else [])


def colour_map(labels) -> dict[str, str]:
    """A colour for every label given, stable for a given set of labels."""
    out = {}
    spare = list(SPARE_COLOURS)
    for lab in order_labels(labels):
        if lab in LABEL_COLOURS:
            out[lab] = LABEL_COLOURS[lab]
        elif lab == UNLABELLED:
            out[lab] = NEUTRAL
        else:
            out[lab] = spare.pop(0) if spare else NEUTRAL
    return out


def dash(label: str) -> str:
    return LABEL_DASHES.get(label, "6 2 1 2")


def diverging(value: float, limit: float) -> str:
    """Blue (negative) through light grey (0) to orange-red (positive); value clipped to [-limit, limit].

    Blue-to-vermillion stays readable for red-green colour-blind readers.
    """
    lo, mid, hi = (33, 102, 172), (240, 240, 240), (213, 94, 0)
    t = 0.0 if limit <= 0 else max(-1.0, min(1.0, value / limit))
    a, b = (mid, hi) if t >= 0 else (mid, lo)
    t = abs(t)
    rgb = tuple(round(x + (y - x) * t) for x, y in zip(a, b))
    return "#%02X%02X%02X" % rgb


def text_on(fill: str) -> str:
    """Black or white, whichever reads better on the fill colour (relative luminance)."""
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#111111" if lum > 0.22 else "#FFFFFF"
