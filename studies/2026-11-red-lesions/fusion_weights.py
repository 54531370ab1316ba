"""How the proxy set's choice of a fusion weight compares with the test set's, read after the choice (never to choose):

    python studies/2026-11-red-lesions/fusion_weights.py --runs FUSED_RUN [FUSED_RUN ...] [--save CSV]

For each fused run (``wdmt fuse``), every candidate weight of its ``fusion.json``: the proxy's pixel AUROC and AP
(recorded when the weight was chosen) beside the same figures on the run's annotated test photographs (FOV pixels,
the run's own map post-processing). The proxy's choice is marked, and so is the weight the test set would have
picked by the same rule; the gap between the two rows is what a better proxy set could win. Nothing is written into
the runs.
"""

from __future__ import annotations

from pathlib import Path

from wdmt.fuse import FUSION_FILE, choose_weight, member_maps
from wdmt.measure.reports import report_runs
from wdmt.pipeline import load_samples
from wdmt.rundir import RunDir


def run_rows(run: Path) -> list[dict]:
    rd = RunDir(run)
    cfg, info = rd.config(), rd.read_json(FUSION_FILE)
    idx, _ = rd.dataset()
    items = load_samples([s for s in idx.split("test") if s.has_mask], cfg.preprocess, None, progress=False)
    seg, prior = member_maps(rd.load_model("best")[0].eval(), items)
    # the proxy's own rule and candidates, applied to the test photographs instead
    test_choice, on_test = choose_weight(seg, prior, items, info["scale"], cfg.eval)
    return [{"run": run.name, "prior": cfg.model_options["prior"], "seed": cfg.seed, "weight": cand["weight"],
             "proxy_auroc": round(cand["proxy_auroc"], 4), "proxy_ap": round(cand["proxy_ap"], 4),
             "test_auroc": round(t["proxy_auroc"], 4), "test_ap": round(t["proxy_ap"], 4),
             "proxy_choice": "yes" if cand["weight"] == info["proxy_choice"] else "",
             "test_rule_choice": "yes" if cand["weight"] == test_choice else ""}
            for cand, t in zip(info["candidates"], on_test, strict=True)]


def main() -> None:
    report_runs(__doc__, run_rows)


if __name__ == "__main__":
    main()
