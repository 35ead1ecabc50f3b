"""IngestConfig holds its readers' parameters as component sections (issue 14)."""

from __future__ import annotations

import pytest

from tomochunk import config as C
from tomochunk.errors import ConfigError
from tomochunk.overrides import apply_overrides
from tomochunk.pipeline import build_stages
from tomochunk.safe_yaml import load_yaml

#: Computed on main before the readers had parameters (commit 12cc1db): a default ingest
#: config must keep these hashes, so existing run folders stay complete.
MAIN_DEFAULT_HASH = "bf2246e7ee02e412"  # stage_hash("scan.h5", IngestConfig())
MAIN_OTHER_HASH = "50da2f0d0c2148aa"  # ... IngestConfig(format="tiff", rows_per_chunk=16, ...)


def test_reader_params_defaults():
    cfg = C.IngestConfig()
    assert cfg.components == {}
    dx = cfg.params_of("dxchange")
    assert (dx.data, dx.flat, dx.dark, dx.theta) == (
        "/exchange/data", "/exchange/data_white", "/exchange/data_dark", "/exchange/theta")
    nx = cfg.params_of("nexus")
    assert (nx.entry, nx.data, nx.image_key, nx.rotation_angle) == (None, None, None, None)
    assert nx.paths("data") == ("instrument/detector/data", "data/data")
    tf = cfg.params_of("tiff")
    assert (tf.flat_pattern, tf.dark_pattern) == ("flat|white|bright", "dark")
    # readers without parameters have no section (an empty one would read back as null)
    assert "numpy" not in C.to_dict(cfg) and "xarray" not in C.to_dict(cfg)


@pytest.mark.parametrize("section, message", [
    ({"dxchange": {"data": "exchange/data"}},
     "ingest.dxchange.data must be an HDF5 path from the file's root, starting with '/' "
     "(got 'exchange/data'); e.g. data: /exchange/data"),
    ({"dxchange": {"theta": ""}}, "ingest.dxchange.theta must be a non-empty HDF5 path"),
    ({"nexus": {"entry": "entry1"}}, "ingest.nexus.entry must be an HDF5 path from the file's"),
    ({"nexus": {"data": "/entry/data/data"}},
     "ingest.nexus.data must be an HDF5 path relative to the NXtomo entry (no leading '/')"),
    ({"tiff": {"flat_pattern": "ff_("}},
     "ingest.tiff.flat_pattern: 'ff_(' is not a valid regular expression (missing )"),
    ({"tiff": {"dark_pattern": ""}}, "ingest.tiff.dark_pattern must be a non-empty regular"),
    ({"nexus": {"frames": "x"}}, "unknown parameter(s) frames for scan reader 'nexus'; valid "
     "parameters are: entry, data, image_key, rotation_angle"),
    ({"dxchange": {"data": 3}}, "ingest.dxchange.data: expected a string, got 3"),
])
def test_reader_params_errors_are_one_line_and_name_the_key(section, message):
    with pytest.raises(ConfigError) as err:
        C.from_dict(C.RunConfig, {"ingest": section})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_sections_from_yaml_set_and_replace():
    text = "ingest:\n  format: dxchange\n  dxchange: {data: /exchange/data_raw}\n"
    cfg = C.from_dict(C.RunConfig, load_yaml(text, "cfg.yaml"))
    assert cfg.ingest.params_of("dxchange").data == "/exchange/data_raw"
    assert cfg.ingest.params_of("dxchange").flat == "/exchange/data_white"  # the default
    # --set SECTION.COMPONENT.PARAM over the file's section
    cfg2 = apply_overrides(cfg, {"ingest.dxchange.theta": "/exchange/angles",
                                 "ingest.nexus.entry": "/scan/tomo"})
    assert cfg2.ingest.params_of("dxchange").data == "/exchange/data_raw"
    assert cfg2.ingest.params_of("dxchange").theta == "/exchange/angles"
    assert cfg2.ingest.params_of("nexus").entry == "/scan/tomo"
    # replace, and a round trip through to_dict
    ing = C.replace(C.IngestConfig(), tiff={"flat_pattern": "^ff_"}, rows_per_chunk=4)
    assert ing.params_of("tiff").flat_pattern == "^ff_" and ing.rows_per_chunk == 4
    assert C.from_dict(C.IngestConfig, C.to_dict(ing)) == ing
    # a section set to its defaults is no change at all
    assert C.IngestConfig(dxchange={"data": "/exchange/data"}) == C.IngestConfig()


def test_default_ingest_hash_is_the_one_of_main():
    assert C.stage_hash("scan.h5", C.IngestConfig()) == MAIN_DEFAULT_HASH
    other = C.IngestConfig(format="tiff", rows_per_chunk=16, flats="f/*.tif")
    assert C.stage_hash("scan.h5", other) == MAIN_OTHER_HASH
    assert C.stage_hash("scan.h5", C.IngestConfig(tiff={"dark_pattern": "dark"})) == (
        MAIN_DEFAULT_HASH)


def test_a_reader_param_changes_the_ingest_stage_and_those_after_it(tmp_path):
    src = tmp_path / "scan.h5"
    src.write_bytes(b"not read: only its identity is hashed")
    base = {st.name: st.hash for st in build_stages(src, tmp_path / "run", C.RunConfig())}
    for change in ({"dxchange": {"data": "/exchange/data_raw"}},
                   {"nexus": {"entry": "/entry2"}}, {"tiff": {"flat_pattern": "^ff_"}}):
        cfg = C.from_dict(C.RunConfig, {"ingest": change})
        hashes = {st.name: st.hash for st in build_stages(src, tmp_path / "run", cfg)}
        assert hashes["ingest"] != base["ingest"], change
        assert hashes["recon"] != base["recon"], change  # chained
