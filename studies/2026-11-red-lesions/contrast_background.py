"""The contrast prior's background width, judged on the proxy validation set only (no test photograph):

    for s in 5 6 7; do for b in 12 18 24 32 48; do
      wdmt train --data DATA --model contrast --preset cpu --seed $s --set background_sigma=$b --out runs/c-bg$b-s$s
    done; done
    python studies/2026-11-red-lesions/contrast_background.py --runs runs/c-bg*-s* [--save CSV]

Unlike the polarity, line and blob width (``contrast_line.py``), the background's Gaussian width changes the fitted
cell statistics, so each candidate is a run of its own, scored as fitted: pixel AUROC and AP inside the FOV on the
run's proxy set (its validation normals with :mod:`wdmt.synth`'s painted lesions, 3 variants each, the run's seed),
and the seconds per 768 px picture on this machine's CPU (one thread). The width with the best mean proxy AUROC over
the seeds became the model's default (docs/methods.md).
"""

from __future__ import annotations

from contrast_line import score  # the study's own script beside this one

from wdmt.measure.reports import report_runs

if __name__ == "__main__":
    report_runs(__doc__, lambda run: score(run, None))
