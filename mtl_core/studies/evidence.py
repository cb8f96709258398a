"""How sure a check is: its verdict on one run, and over seeds the effect, its spread and whether chance
would produce it.

Every check states a margin per seed, positive where its statement holds: a prediction's distance past the
threshold it names (a loss ratio minus 1, a share minus the share it promised), or a model's difference
from its control. Over seeds the margins are an `Effect`; it is *beyond chance* when a one-sided Wilcoxon
signed-rank test (scipy.stats.wilcoxon, zero margins dropped) gives p < ALPHA: the margins are positive
more often, and by more, than margins symmetric around 0 with the same spread would be. The test uses
only the margins' signs and ranks, so a run that diverged (a margin of +inf) counts as the largest one.
With n seeds the smallest possible p is 2**-n: fewer than 5 seeds can never pass at 5%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, wilcoxon

ALPHA = 0.05


@dataclass(frozen=True)
class Verdict:
    """`effect`: the check's margin on this run, positive when it held, in `unit`."""

    held: bool
    evidence: str   # the numbers behind it, in words
    effect: float = math.nan
    unit: str = ""


@dataclass(frozen=True)
class Effect:
    """Margins over seeds (NaN ones left out), positive where the statement holds."""

    values: tuple[float, ...]
    unit: str = ""
    over: str = "seeds"   # what one value is

    @classmethod
    def of(cls, values, unit: str = "", over: str = "seeds") -> "Effect":
        return cls(tuple(float(v) for v in values if not math.isnan(float(v))), unit, over)

    @property
    def p(self) -> float:
        """One-sided Wilcoxon signed-rank p that margins this positive came by chance (1 if none is non-zero)."""
        margins = np.array(self.values)
        margins = margins[margins != 0]
        if len(margins) == 0:
            return 1.0
        finite = np.abs(margins[np.isfinite(margins)])
        ceiling = 2 * (finite.max() if len(finite) else 1.0) + 1   # ranks only: an infinite margin is the largest
        return float(wilcoxon(np.clip(margins, -ceiling, ceiling), alternative="greater").pvalue)

    @property
    def beyond_chance(self) -> bool:
        return self.p < ALPHA

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.values, q, method="nearest")) if self.values else math.nan

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return (f"median {self.quantile(0.5):+.3g}{unit} (quartiles {self.quantile(0.25):+.3g} to {self.quantile(0.75):+.3g}, "
                f"{len(self.values)} {self.over}), Wilcoxon p = {self.p:.2g}")


def seeds_needed(difference: float, spread: float, power: float = 0.8) -> float:
    """How many seeds a paired comparison needs to find `difference` beyond chance (one-sided, ALPHA) `power`
    of the time, when the per-seed differences have standard deviation `spread`: ((z[1 - ALPHA] + z[power]) *
    spread / difference) ** 2, the normal approximation. A rule of thumb: for normal differences Wilcoxon's
    test needs about 5% more seeds, for heavy-tailed ones (a few seeds far off, as here) fewer."""
    if difference == 0 or math.isnan(difference) or math.isnan(spread):
        return math.inf
    return ((norm.ppf(1 - ALPHA) + norm.ppf(power)) * spread / abs(difference)) ** 2
