"""The runtime layer: one thread policy, one logging set-up for the CLI and run."""

from __future__ import annotations

import logging
import os

from tomochunk.runtime.logs import session_logging
from tomochunk.runtime.threads import thread_count


def test_thread_policy_outside_a_cluster():
    cores = os.cpu_count() or 1
    assert thread_count("recon_task", requested=3, n_tasks=8) == 3  # the user's number wins
    assert thread_count("recon_task", n_tasks=1) == cores
    assert thread_count("recon_task", n_tasks=10 * cores) == 1
    assert thread_count("local_workers") == cores
    assert thread_count("inference_task") is None  # not on a worker: torch's default
    assert thread_count("training_stage", local_cluster=False) is None  # the worker decides
    assert thread_count("training_stage", local_cluster=True) >= 1
    assert thread_count("training", requested=2) == 2


def test_session_logging_writes_the_file_and_restores_the_loggers(tmp_path):
    root = logging.getLogger("tomochunk")
    handlers, level = list(root.handlers), root.level
    log_file = tmp_path / "t.log"
    stage_log = logging.getLogger("tomochunk.pipeline")  # a stage module's logger
    with session_logging(quiet=True, verbose=False, log_file=log_file):
        stage_log.info("kept in the file")
        assert root.getEffectiveLevel() == logging.WARNING  # bars off with --quiet
        with session_logging(quiet=True, verbose=False, log_file=log_file):  # nested: kept
            stage_log.info("nested")
    assert root.handlers == handlers and root.level == level
    text = log_file.read_text()
    assert "kept in the file" in text and text.count("nested") == 1
