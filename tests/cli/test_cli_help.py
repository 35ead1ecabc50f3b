"""The CLI contract: ``tomochunk --help`` lists the contract's commands."""

from __future__ import annotations

from click.testing import CliRunner

from tomochunk.cli import main


def test_cli_help_lists_contract_commands():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    for cmd in ("ingest", "recon", "train", "denoise", "filter", "report", "run", "demo"):
        assert cmd in res.output
