"""The Stage interface: one stage per filter method, hashes from each stage's own settings."""

from __future__ import annotations

import json
import shutil

import pytest

import tomochunk as tc
from tomochunk import config as C
from tomochunk.pipeline import build_stages

from .test_pipeline import FAST


def _hashes(src, run, cfg):
    return {st.name: st.hash for st in build_stages(src, run, cfg)}


def test_each_filter_method_is_a_stage_of_its_own(tmp_path):
    src = tmp_path / "scan.npy"
    src.write_bytes(b"not read: only its identity is hashed")
    cfg = C.from_dict(C.RunConfig, {"filters": {"methods": ["median", "nlm"]}})
    before = _hashes(src, tmp_path / "run", cfg)
    assert list(before) == ["ingest", "recon", "train", "denoise", "filter:median",
                            "filter:nlm", "report"]
    more = _hashes(src, tmp_path / "run", C.replace(
        cfg, filters=C.replace(cfg.filters, methods=["median", "nlm", "iternlm"])))
    assert "filter:iternlm" in more and more["report"] != before["report"]
    assert {k: more[k] for k in before if k != "report"} == {
        k: v for k, v in before.items() if k != "report"}
    # a setting of one method changes its stage only (and the report)
    nlm_h = _hashes(src, tmp_path / "run", C.replace(cfg, filters=C.replace(cfg.filters,
                                                                            nlm_h=0.5)))
    assert [k for k in before if nlm_h[k] != before[k]] == ["filter:nlm", "report"]
    # the stages know their inputs; only the report reads every output
    stages = {st.name: st for st in build_stages(src, tmp_path / "run", cfg)}
    assert stages["filter:nlm"].inputs == ("recon",)
    assert stages["denoise"].inputs == ("train",)
    assert stages["report"].inputs == tuple(list(before)[:-1])


@pytest.mark.slow
def test_adding_a_filter_method_reruns_nothing_else(fast_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fast_run.run, run)  # the shared run is read by other tests: change a copy
    before = json.loads((run / "run.json").read_text())["stages"]
    more = {**FAST, "train": {**FAST["train"], "epochs": 4},
            "filters": {**FAST["filters"], "methods": ["median", "iternlm"],
                        "iternlm_iterations": 1, "iternlm_patch_distance": 1}}
    tc.run(fast_run.src, run, config=more, cluster=tc.ClusterConfig(n_workers=1), quiet=True)
    after = json.loads((run / "run.json").read_text())["stages"]
    for st in ("ingest", "recon", "train", "denoise", "filter:median"):
        assert after[st] == before[st], st  # skipped: the very same record
    assert "filter:iternlm" in after and "filter:iternlm" not in before
    assert after["report"]["hash"] != before["report"]["hash"]
    log = (run / "tomochunk.log").read_text()
    assert "filter:median: complete and configuration unchanged, skipping" in log
    assert "train: complete and configuration unchanged, skipping" in log
