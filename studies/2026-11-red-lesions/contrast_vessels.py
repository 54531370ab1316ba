"""How the contrast prior finds the vessels it takes out of its dark side, judged on the proxy validation set only
(no test photograph):

    python studies/2026-11-red-lesions/contrast_vessels.py --runs CONTRAST_RUN [CONTRAST_RUN ...] [--save CSV]

The opening by a line (the default until this measurement) erases a haemorrhage wider than the line along with the
vessels; the line detector (``vessel_detector: mean``: a line's mean above its square's) keeps it. For each fitted
``contrast`` run (the cell statistics depend on none of these options), every candidate scores the run's proxy set
(its validation normals with :mod:`wdmt.synth`'s painted lesions, 3 variants each, the run's seed): pixel AUROC and AP
inside the FOV, and the seconds per 768 px picture on this machine's CPU (one thread). The rule, fixed before the
first run: the line detector's best length by mean proxy AUROC becomes the default if its mean proxy AUROC and AP are
both at least the opening's (docs/methods.md).
"""

from __future__ import annotations

from contrast_line import score  # the study's own script beside this one

from wdmt.measure.reports import report_runs

CANDIDATES = [{"vessel_detector": "opening", "vessel_line": 31, "blob_width": 17}] + [
    {"vessel_detector": "mean", "vessel_line": n, "blob_width": 0} for n in (15, 21, 31, 41)]

if __name__ == "__main__":
    report_runs(__doc__, lambda run: score(run, CANDIDATES))
