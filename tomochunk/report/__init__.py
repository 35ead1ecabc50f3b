"""The comparison report of a run: metrics, PNG figures and a static HTML page.

:func:`make_report` reads a run directory lazily (:func:`collect_run`), measures CNR,
PSNR/SSIM, line-profile FWHMs, PSDs, FRC of the halves and the noise map
(:func:`analyse`), and writes ``index.html``, the figures and ``metrics.json`` atomically.
"""

from .build import analyse, make_report
from .collect import LABELS, METHODS, RunData, collect_run, load_truth

__all__ = ["make_report", "analyse", "collect_run", "load_truth", "RunData", "METHODS", "LABELS"]
