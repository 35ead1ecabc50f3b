"""Bad inputs and faults (issue 13): each gives exit status 2, one line, and no changed bytes.

Every case runs the real CLI on real stores. ``_refused`` asserts the exit status, that the
error is a single ``Error:`` line holding the expected words (no traceback), and that the
bytes of every file under the watched folders are unchanged. Commands that reach a cluster
use one LocalCluster of real worker processes shared by the module (``--scheduler``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import tomochunk as tc
from tomochunk import pipeline
from tomochunk.cli import main
from tomochunk.config import RunConfig
from tomochunk.errors import CorruptStoreError, LockedError
from tomochunk.faults import explain
from tomochunk.io import store
from tomochunk.io.identity import input_identity
from tomochunk.io.lock import exclusive, lock_path
from tomochunk.io.manifest import MANIFEST_FILE

BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------------------
# fixtures and helpers


def _tree_hash(*roots: Path) -> str:
    """A digest of every file (path and bytes) and folder under ``roots``."""
    h = hashlib.sha256()
    for root in roots:
        if not root.exists() and not root.is_symlink():
            h.update(f"absent:{root}".encode())
            continue
        if root.is_file():
            h.update(root.read_bytes())
            continue
        for dirpath, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            h.update(f"d:{Path(dirpath).relative_to(root)}".encode())
            for name in sorted(files):
                p = Path(dirpath) / name
                h.update(f"f:{p.relative_to(root)}".encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def _write_scan(path: Path, *, proj=None, theta=None, units="degrees", flat=True,
                flat_value=None, n_angles=24) -> Path:
    """A small simulated scan as a DXchange file (real counts, flats and darks)."""
    from tomochunk.phantom import ScanSpec, simulate_scan

    scan, _ = simulate_scan(ScanSpec(n_z=4, n_xy=32, n_angles=n_angles, photons=3000, seed=1,
                                     ring_defects=0))
    with h5py.File(path, "w") as f:
        f["exchange/data"] = scan.projections.values if proj is None else proj
        if flat:
            fl = scan.flat.values
            f["exchange/data_white"] = fl if flat_value is None else np.full_like(fl,
                                                                                flat_value)
            f["exchange/data_dark"] = scan.dark.values
        th = np.degrees(scan.theta.values) if theta is None else np.asarray(theta)
        f["exchange/theta"] = th
        if units:
            f["exchange/theta"].attrs["units"] = units
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """raw.h5, its scan.zarr and recon.zarr (K=2), and a model folder of random bytes."""
    from tomochunk.recon.volume import reconstruct

    root = tmp_path_factory.mktemp("bad")
    raw = _write_scan(root / "raw.h5")
    tc.ingest(raw, root / "scan.zarr", rows_per_chunk=2)
    reconstruct(root / "scan.zarr", root / "recon.zarr", splits=2, stripe="none",
                rows_per_block=2)
    (root / "model").mkdir()
    (root / "model" / "model.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    return root


@pytest.fixture(scope="module")
def scheduler():
    """The address of a real LocalCluster (one worker process) shared by the module."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _invoke(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


def _refused(args: list[str], words: list[str], watch: list[Path], *, code: int = 2):
    """Run the CLI; assert exit ``code``, one ``Error:`` line with ``words``, same bytes."""
    before = _tree_hash(*watch)
    res = _invoke([*args, "-q"] if args[0] not in ("config",) else args)
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert res.exit_code == code, (res.exit_code, res.output[-2000:], res.exc_info)
    assert len(errors) == 1, res.output[-2000:]
    assert "Traceback" not in res.output
    for w in words:
        assert w in errors[0], errors[0]
    assert len(errors[0]) < 600, errors[0]
    assert _tree_hash(*watch) == before, "bytes on disk changed"
    return errors[0]


def _copy(base: Path, tmp: Path, *names: str) -> Path:
    for n in names:
        src = base / n
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / n)
    return tmp


def _first_chunk(store: Path, var: str) -> Path:
    chunks = sorted(p for p in (store / var).rglob("*") if p.is_file() and p.name != "zarr.json")
    return chunks[0]


# ---------------------------------------------------------------------------------------
# failure 1: an output that is, contains or resolves to the input


@pytest.mark.parametrize("cmd", [
    ["filter", "{b}/recon.zarr", "{b}/recon.zarr", "--method", "median", "--overwrite"],
    ["filter", "{b}/recon.zarr", "{b}", "--method", "median", "--overwrite"],
    ["filter", "{b}/recon.zarr", "{b}/recon.zarr/median.zarr", "--method", "median"],
    ["recon", "{b}/scan.zarr", "{b}/scan.zarr", "--overwrite"],
    ["recon", "{b}/scan.zarr", "{b}", "--overwrite"],
    ["denoise", "{b}/recon.zarr", "{b}/model", "{b}/recon.zarr", "--overwrite"],
    ["denoise", "{b}/recon.zarr", "{b}/model", "{b}/model", "--overwrite"],
    ["train", "{b}/recon.zarr", "{b}/recon.zarr", "--overwrite"],
    ["ingest", "{b}/raw.h5", "{b}/raw.h5", "--overwrite"],
    ["run", "{b}/raw.h5", "--out", "{b}", "--overwrite"],
], ids=["filter-same", "filter-parent", "filter-inside", "recon-same", "recon-parent",
        "denoise-recon", "denoise-model", "train-same", "ingest-same", "run-parent"])
def test_output_that_is_or_holds_the_input_is_refused(base, cmd):
    args = [a.format(b=base) for a in cmd]
    _refused(args, ["the input", "destroy"], [base])


def test_symlinked_output_resolving_to_the_input_is_refused(base, tmp_path):
    link = tmp_path / "link.zarr"
    link.symlink_to(base / "recon.zarr")
    msg = _refused(["filter", base / "recon.zarr", link, "--method", "median", "--overwrite"],
                   ["symbolic link", "the input"], [base, tmp_path])
    assert "link.zarr" in msg
    assert not list(tmp_path.glob(".link.zarr.old-*"))


# ---------------------------------------------------------------------------------------
# failure 2: corrupt or implausible data


def test_missing_chunk_is_refused_naming_the_store_and_chunk(base, tmp_path, scheduler):
    _copy(base, tmp_path, "scan.zarr")
    chunk = _first_chunk(tmp_path / "scan.zarr", "projections")
    chunk.unlink()
    rel = chunk.relative_to(tmp_path / "scan.zarr").as_posix()
    _refused(["recon", tmp_path / "scan.zarr", tmp_path / "r.zarr", "--scheduler", scheduler],
             ["scan.zarr", rel, "missing", "re-create it with tomochunk ingest"], [tmp_path])


def test_chunk_of_random_bytes_is_refused(base, tmp_path, scheduler):
    _copy(base, tmp_path, "scan.zarr")
    chunk = _first_chunk(tmp_path / "scan.zarr", "projections")
    chunk.write_bytes(np.random.default_rng(1).bytes(100))
    _refused(["recon", tmp_path / "scan.zarr", tmp_path / "r.zarr", "--scheduler", scheduler],
             ["scan.zarr", "bytes", "re-create it with tomochunk ingest"], [tmp_path])


def test_chunk_of_same_size_garbage_is_a_one_line_error(base, tmp_path, scheduler):
    _copy(base, tmp_path, "recon.zarr")
    chunk = _first_chunk(tmp_path / "recon.zarr", "full")
    chunk.write_bytes(np.random.default_rng(2).bytes(chunk.stat().st_size))
    _refused(["filter", tmp_path / "recon.zarr", tmp_path / "m.zarr", "--method", "median",
              "--scheduler", scheduler], ["recon.zarr"], [tmp_path])


def test_unreadable_manifest_is_refused(base, tmp_path):
    _copy(base, tmp_path, "recon.zarr")
    (tmp_path / "recon.zarr" / "full" / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(CorruptStoreError, match="manifest"):
        store.open_recon(tmp_path / "recon.zarr")


def test_every_completed_store_has_a_manifest_of_its_chunks(base):
    scan = base / "scan.zarr"
    listed = {f"{var}/{rel}" for var in ("projections", "flat", "dark", "theta")
              for rel in json.loads((scan / var / MANIFEST_FILE).read_text())["files"]}
    on_disk = {p.relative_to(scan).as_posix() for p in scan.rglob("*") if p.is_file()
               and p.name not in ("zarr.json", MANIFEST_FILE)}
    assert listed == on_disk and len(listed) >= 5
    assert not (scan / MANIFEST_FILE).exists()  # nothing at group level: zarr would warn


@pytest.mark.parametrize("kind,words", [
    ("zeros", ["every projection value is 0"]),
    ("negated", ["all <= 0", "negated"]),
    ("complex", ["complex"]),
    ("nan", ["no projection value is finite"]),
])
def test_implausible_projection_values_are_refused(tmp_path, kind, words):
    shape = (24, 4, 32)
    proj = {"zeros": np.zeros(shape, np.float32),
            "negated": -np.random.default_rng(0).uniform(0.2, 1, shape).astype(np.float32),
            "complex": (np.ones(shape) + 1j).astype(np.complex64),
            "nan": np.full(shape, np.nan, np.float32)}[kind]
    raw = _write_scan(tmp_path / "raw.h5", proj=proj, flat=False)
    _refused(["ingest", raw, tmp_path / "scan.zarr"], words, [tmp_path])


def _counts_without_flats(tmp_path: Path) -> Path:
    proj = np.random.default_rng(0).integers(100, 4000, (24, 4, 32)).astype(np.uint16)
    return _write_scan(tmp_path / "raw.h5", proj=proj, flat=False)


def test_raw_counts_without_flats_are_refused_before_anything_is_written(tmp_path):
    raw = _counts_without_flats(tmp_path)
    msg = _refused(["ingest", raw, tmp_path / "scan.zarr"],
                   ["no flats or darks", "raw counts, not transmission", "99th percentile",
                    "--flats/--darks", "--assume-transmission"], [tmp_path])
    p99 = float(msg.split("99th percentile ")[1].split()[0])
    assert 3800 < p99 < 4000  # uniform counts in [100, 4000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5"]


def test_raw_counts_without_flats_stop_a_run_before_its_cluster(tmp_path):
    raw = _counts_without_flats(tmp_path)
    t0 = time.perf_counter()
    _refused(["run", raw, "--out", tmp_path / "run"],
             ["raw counts", "--set ingest.assume_transmission=true", "--set ingest.flats="],
             [tmp_path])
    assert time.perf_counter() - t0 < 5  # a LocalCluster takes 6-16 s to start
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("proj,option,words", [
    (np.random.default_rng(0).integers(100, 4000, (24, 4, 32)).astype(np.uint16),
     ["--assume-transmission"], ["look like raw counts", "as --assume-transmission asks"]),
    (np.random.default_rng(0).uniform(0.2, 1.0, (24, 4, 32)).astype(np.float32), [],
     ["taken as transmission", "99th percentile 0.99"]),
], ids=["counts-declared", "transmission"])
def test_scan_without_flats_proceeds_with_one_warning(tmp_path, proj, option, words):
    raw = _write_scan(tmp_path / "raw.h5", proj=proj, flat=False)
    res = _invoke(["ingest", raw, tmp_path / "scan.zarr", "--pixel-size-um", "1", "-q",
                   *option])
    assert res.exit_code == 0, res.output[-2000:]
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "WARNING" in lines[0], res.output  # no Python copy, no more
    for w in words:
        assert w in lines[0], lines[0]
    np.testing.assert_array_equal(tc.open_scan(tmp_path / "scan.zarr").projections.values,
                                  proj)


# ---------------------------------------------------------------------------------------
# failure 3: a replaced input re-does the stages


def test_replaced_input_changes_the_ingest_hash(tmp_path):
    raw = _write_scan(tmp_path / "raw.h5")
    cfg = RunConfig()
    h1 = pipeline._stages(raw, tmp_path / "run", cfg)[0].hash
    assert pipeline._stages(raw, tmp_path / "run", cfg)[0].hash == h1  # stable
    ident = input_identity(raw)
    data = bytearray(raw.read_bytes())
    data[-100] ^= 0xFF  # same size, new content
    raw.write_bytes(bytes(data))
    st = os.stat(raw)
    os.utime(raw, ns=(st.st_atime_ns, int(ident.split(":")[2])))  # even the same mtime
    assert input_identity(raw) != ident
    assert pipeline._stages(raw, tmp_path / "run", cfg)[0].hash != h1


def test_large_input_is_identified_by_samples_not_read_whole(tmp_path):
    from tomochunk.io import identity

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(identity.WHOLE_FILE_BYTES * 2)
    a = input_identity(big)
    with open(big, "r+b") as f:  # change a byte inside the first MiB (the header)
        f.seek(10)
        f.write(b"x")
    assert input_identity(big) != a


# ---------------------------------------------------------------------------------------
# failure 4: locks


@pytest.fixture
def holder():
    """A live process of this host (its pid stands for another tomochunk run)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p.pid
    p.kill()
    p.wait()


def _hold(path: Path, pid: int, host: str | None = None) -> Path:
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "since": time.time()}))
    return lock


def test_run_folder_held_by_a_live_run_is_refused_naming_it(base, tmp_path, holder):
    out = tmp_path / "run"
    _hold(out, holder)
    _refused(["run", base / "raw.h5", "--out", out], [f"pid {holder}", socket.gethostname(),
                                                       "in use"], [tmp_path, base])


def test_stage_output_held_by_a_live_process_is_refused(base, tmp_path, holder):
    _hold(tmp_path / "m.zarr", holder)
    _refused(["filter", base / "recon.zarr", tmp_path / "m.zarr", "--method", "median"],
             [f"pid {holder}", "in use"], [tmp_path, base])


def test_lock_of_a_dead_pid_on_this_host_is_cleared(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    lock = _hold(tmp_path / "out", p.pid)
    with exclusive(tmp_path / "out") as held:
        assert json.loads(held.read_text())["pid"] == os.getpid()
        with exclusive(tmp_path / "out"):  # re-entrant in this process
            pass
        assert held.exists()
    assert not lock.exists()


def test_lock_of_another_host_is_not_cleared(tmp_path):
    _hold(tmp_path / "out", 1, host="some-other-host")
    with pytest.raises(LockedError, match="some-other-host"), exclusive(tmp_path / "out"):
        pass


# ---------------------------------------------------------------------------------------
# failure 5: YAML


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines)


def test_yaml_alias_bomb_is_refused_at_once(base, tmp_path):
    body = _bomb().replace("\n", "\n  ")
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(f"ingest:\n  format: &fmt\n    x: 1\n  {body}\n")
    bomb = tmp_path / "bomb2.yaml"
    bomb.write_text(_bomb() + "\ningest:\n  format: *a8\n")
    t0 = time.perf_counter()
    _refused(["run", base / "raw.h5", "--out", tmp_path / "r", "--config", bomb],
             ["expands to more than", "aliases"], [tmp_path, base])
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("text,words", [
    ("ingest:\n  format: " + "x" * 100_000 + "\n", ["ingest.format", "..."]),
    ("train: [1, 2\n", ["not valid YAML"]),
    ("train: !!python/object/apply:os.system ['echo hi']\n", ["not valid YAML"]),
    ("- just\n- a list\n", ["must hold a mapping"]),
    ("train:\n  depth: 0\n", ["depth must be >= 1"]),
    ("train:\n  depth: deep\n", ["train.depth", "expected an integer"]),
], ids=["huge-value", "syntax", "python-tag", "list", "depth0", "wrong-type"])
def test_bad_config_files_are_one_line_errors(base, tmp_path, text, words):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    msg = _refused(["run", base / "raw.h5", "--out", tmp_path / "r", "--config", cfg], words,
                   [tmp_path, base])
    assert "x" * 200 not in msg


def test_config_path_that_is_a_folder_is_refused(base, tmp_path):
    _refused(["run", base / "raw.h5", "--out", tmp_path / "r", "--config", tmp_path],
             ["is not a file"], [tmp_path, base])


# ---------------------------------------------------------------------------------------
# failure 6: environment faults


@pytest.mark.parametrize("code,words", [
    (errno.EROFS, ["read-only"]), (errno.ENOSPC, ["no space left"]),
    (errno.EACCES, ["permission denied"]), (errno.EDQUOT, ["quota"]),
])
def test_os_faults_map_to_one_line_errors_with_the_fix(code, words):
    exc = OSError(code, os.strerror(code), "/data/run/scan.zarr")
    err = explain(exc)
    assert err is not None and all(w in str(err) for w in words)
    assert "/data/run/scan.zarr" in str(err) and "\n" not in str(err)


def _limited(nbytes: int):
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def test_full_disk_during_ingest_is_one_line_and_leaves_nothing(tmp_path):
    # a file-size limit makes writes fail as on a full disk (EFBIG instead of ENOSPC)
    proj = np.random.default_rng(0).uniform(0.1, 1, (48, 8, 64)).astype(np.float32)
    raw = _write_scan(tmp_path / "raw.h5", proj=proj, flat=False, n_angles=48)
    out = tmp_path / "out"
    out.mkdir()
    before = _tree_hash(out)
    res = subprocess.run([str(BIN / "tomochunk"), "ingest", str(raw), str(out / "scan.zarr"),
                          "--rows-per-chunk", "8", "-q"], capture_output=True, text=True,
                         preexec_fn=_limited(32 * 1024), timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "ulimit" in lines[0] or "space" in lines[0]
    assert _tree_hash(out) == before


@pytest.mark.slow
def test_full_disk_during_run_is_written_to_the_log(tmp_path):
    proj = np.random.default_rng(0).uniform(0.1, 1, (48, 8, 64)).astype(np.float32)
    raw = _write_scan(tmp_path / "raw.h5", proj=proj, flat=False, n_angles=48)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"ingest": {"rows_per_chunk": 8}}))
    out = tmp_path / "run"
    res = subprocess.run([str(BIN / "tomochunk"), "run", str(raw), "--out", str(out),
                          "--config", str(cfg), "--workers", "1", "-q"], capture_output=True,
                         text=True, preexec_fn=_limited(32 * 1024), timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    log = (out / "tomochunk.log").read_text()
    assert "run failed" in log and ("ulimit" in log or "space" in log)
    assert not list(out.glob(".*.partial-*"))
    assert not (out / "scan.zarr").exists()


@pytest.mark.parametrize("address,words", [
    ("not a url", ["not a scheduler address", "tcp://HOST:PORT"]),
    ("ftp://host:8786", ["unsupported scheme"]),
    ("tcp://127.0.0.1:1", ["no Dask scheduler answers", "127.0.0.1:1"]),
])
def test_bad_or_dead_scheduler_is_refused_at_once(base, tmp_path, address, words):
    t0 = time.perf_counter()
    _refused(["filter", base / "recon.zarr", tmp_path / "m.zarr", "--method", "median",
              "--scheduler", address], words, [tmp_path, base])
    _refused(["run", base / "raw.h5", "--out", tmp_path / "r", "--scheduler", address], words,
             [tmp_path, base])
    assert time.perf_counter() - t0 < 12


def test_out_that_is_an_existing_file_is_refused(base, tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("keep me")
    _refused(["run", base / "raw.h5", "--out", f], ["is an existing file"], [tmp_path, base])
    _refused(["run", base / "raw.h5", "--out", f, "--overwrite"], ["is an existing file"],
             [tmp_path, base])


# ---------------------------------------------------------------------------------------
# weak items


@pytest.mark.parametrize("args,words", [
    (["train", "{b}/recon.zarr", "{t}/m", "--depth", "0"], ["--depth must be >= 1"]),
    (["train", "{b}/recon.zarr", "{t}/m", "--context", "4"], ["context must be an odd"]),
    (["train", "{b}/recon.zarr", "{t}/m", "--workers", "0"], ["--workers must be >= 1"]),
    (["recon", "{b}/scan.zarr", "{t}/r.zarr", "--splits", "1"], ["--splits must be >= 2"]),
    (["filter", "{b}/recon.zarr", "{t}/m.zarr", "--method", "median", "--radius", "0"],
     ["--radius must be >= 1"]),
    (["filter", "{b}/recon.zarr", "{t}/m.zarr", "--method", "median", "--chunk-z", "0"],
     ["--chunk-z must be >= 1"]),
    (["denoise", "{b}/recon.zarr", "{b}/model", "{t}/d.zarr", "--chunk-z", "0"],
     ["chunk_z must be >= 1"]),
    (["ingest", "{b}/raw.h5", "{t}/s.zarr", "--rows-per-chunk", "0"],
     ["--rows-per-chunk must be >= 1"]),
    (["run", "{b}/raw.h5", "--out", "{t}/r", "--depth", "0"], ["--depth must be >= 1"]),
    (["run", "{b}/raw.h5", "--out", "{t}/r", "--workers", "0"], ["--workers must be >= 1"]),
    (["run", "{b}/raw.h5", "--out", "{t}/r", "--set", "train.context"], ["SECTION.KEY=VALUE"]),
    (["run", "{b}/raw.h5", "--out", "{t}/r", "--set", "nosuch.key=1"], ["nosuch.key"]),
    (["run", "{b}/raw.h5", "--out", "{t}/r", "--set", "train.nokey=1"],
     ["unknown config key(s) train.nokey"]),
    (["run", "{b}/raw.h5", "--out", "{t}/r", "--context", "2"], ["context must be an odd"]),
    (["filter", "{b}/recon.zarr", "{b}/recon.zarr.out", "--method", "median"],
     ["already exists"]),
    (["recon", "{t}/nothing.zarr", "{t}/r.zarr"], ["does not exist"]),
], ids=["depth0", "context-even", "workers0", "splits1", "radius0", "filter-chunk0",
        "denoise-chunk0", "rows0", "run-depth0", "run-workers0", "set-no-eq", "set-section",
        "set-key", "run-context", "exists", "missing-input"])
def test_bad_options_fail_before_any_cluster_starts(base, tmp_path, args, words):
    if "{b}/recon.zarr.out" in args:
        (base / "recon.zarr.out").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    _refused([a.format(b=base, t=tmp_path) for a in args], words, [base, tmp_path])
    assert time.perf_counter() - t0 < 5  # a LocalCluster takes 6-16 s to start


@pytest.mark.parametrize("theta,units,words", [
    (np.linspace(0, 180, 24, endpoint=False), "radians", ["labelled rad", "--angles-unit deg"]),
    (np.linspace(0, np.pi / 8, 24, endpoint=False), "degrees",
     ["labelled deg", "--angles-unit rad"]),
], ids=["deg-as-rad", "rad-as-deg"])
def test_angles_whose_span_contradicts_their_unit_are_refused(tmp_path, theta, units, words):
    raw = _write_scan(tmp_path / "raw.h5", theta=theta, units=units)
    _refused(["ingest", raw, tmp_path / "scan.zarr"], words, [tmp_path])


def test_single_projection_does_not_advise_an_impossible_split(tmp_path, scheduler):
    raw = _write_scan(tmp_path / "raw.h5", n_angles=24)
    with h5py.File(raw, "r+") as f:
        one = f["exchange/data"][:1]
        del f["exchange/data"], f["exchange/theta"]
        f["exchange/data"] = one
        f["exchange/theta"] = np.array([0.0])
        f["exchange/theta"].attrs["units"] = "degrees"
    tc.ingest(raw, tmp_path / "scan.zarr")
    msg = _refused(["recon", tmp_path / "scan.zarr", tmp_path / "r.zarr", "--scheduler",
                    scheduler], ["only 1 projection", "at least 4"], [tmp_path])
    assert "--splits 1" not in msg and "splits=1" not in msg


def test_model_of_random_bytes_never_suggests_weights_only_false(base, tmp_path, scheduler):
    msg = _refused(["denoise", base / "recon.zarr", base / "model", tmp_path / "d.zarr",
                    "--scheduler", scheduler], ["not a loadable tomochunk model"],
                   [base, tmp_path])
    assert "weights_only" not in msg


def test_all_zero_flats_name_the_pixels_checked(tmp_path, scheduler):
    raw = _write_scan(tmp_path / "raw.h5", flat_value=0)
    tc.ingest(raw, tmp_path / "scan.zarr", rows_per_chunk=2)
    msg = _refused(["recon", tmp_path / "scan.zarr", tmp_path / "r.zarr", "--scheduler",
                    scheduler, "--rows-per-block", "2"], ["flat - dark", "32 columns"],
                   [tmp_path])
    assert "of the detector pixels (64 of 64)" not in msg


# ---------------------------------------------------------------------------------------
# Ctrl-C


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """recon.zarr (16 x 32 x 32, K=2) and a depth-4 model trained in-process for 1 epoch."""
    from tomochunk.phantom import ScanSpec, simulate_scan
    from tomochunk.recon.volume import reconstruct
    from tomochunk.training import n2i

    root = tmp_path_factory.mktemp("ctrlc")
    scan, _ = simulate_scan(ScanSpec(n_z=16, n_xy=32, n_angles=40, photons=3000, seed=3,
                                     ring_defects=0))
    reconstruct(scan, root / "recon.zarr", splits=2, stripe="none",
                center=scan.attrs["phantom_center"])
    n2i.train(root / "recon.zarr", root / "model", network="msd", depth=4, context=3,
              epochs=1, patch_size=32, batch_size=2, patches_per_epoch=4)
    return root


def _cli(*args: object) -> subprocess.Popen:
    """The real ``tomochunk`` in its own process group, as a terminal's foreground job.

    Tests started in the background (``pytest &`` in a script) inherit SIGINT ignored, and
    so would the command: a handler here makes it start with the default disposition.
    """
    old = signal.getsignal(signal.SIGINT)
    if old is not None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([str(BIN / "tomochunk"), *map(str, args), "-q"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def _ignores_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def _ctrl_c(proc: subprocess.Popen, ready, what: str, limit: float = 120) -> tuple[str, list]:
    """Wait for ``ready()``, then Ctrl-C the whole process group; return stderr and the
    processes (the client's LocalCluster workers) that ran under it."""
    import psutil

    try:
        assert not _ignores_sigint(proc.pid), "the command was started with SIGINT ignored"
        t0 = time.time()
        while not ready() and time.time() - t0 < limit:
            if proc.poll() is not None:
                pytest.fail(f"finished before {what}: {proc.communicate()[1][-2000:]}")
            time.sleep(0.1)
        assert ready(), f"never reached {what}"
        assert proc.poll() is None, f"finished before it could be interrupted ({what})"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "no worker processes under the command"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failed test leaves no command running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert out == "", out[-2000:]
    return err, children


def _one_interrupted_line(proc: subprocess.Popen, err: str, children: list) -> None:
    """Exit status 130, stderr one "Interrupted" line, no worker process left behind."""
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "distributed" not in err, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Interrupted:"), err[-3000:]
    time.sleep(0.5)
    alive = [p.pid for p in children if p.is_running() and p.status() != "zombie"]
    assert not alive, f"worker processes still running after the command exited: {alive}"


@pytest.mark.slow
def test_ctrl_c_during_denoise_stops_workers_and_leaves_nothing(small, tmp_path):
    before = _tree_hash(small)
    out = tmp_path / "d.zarr"
    # 16 one-slice tasks of an 8-fold ensemble over 16-pixel tiles: seconds of work, so
    # the Ctrl-C lands while chunks are being written
    proc = _cli("denoise", small / "recon.zarr", small / "model", out, "--chunk-z", "1",
                "--ensemble", "8", "--tile", "16", "--tile-halo", "2", "--workers", "1",
                "--device", "cpu")

    def chunk_written() -> bool:
        return any(p.is_file() for d in tmp_path.glob(".d.zarr.partial-*")
                   for p in (d / "denoised" / "c").rglob("*"))

    err, children = _ctrl_c(proc, chunk_written, "the first denoised chunk")
    _one_interrupted_line(proc, err, children)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "partial output left behind"
    assert _tree_hash(small) == before, "the input changed"


@pytest.mark.slow
def test_ctrl_c_during_training_writes_no_model(small, tmp_path):
    before = _tree_hash(small / "recon.zarr")
    model = tmp_path / "model"
    proc = _cli("train", small / "recon.zarr", model, "--depth", "4", "--context", "3",
                "--patch-size", "32", "--batch-size", "2",
                "--epochs", "5000", "--patience", "5000", "--workers", "1", "--device", "cpu")
    err, children = _ctrl_c(proc, (model / "checkpoint.pt").exists, "the first checkpoint",
                            limit=240)
    _one_interrupted_line(proc, err, children)  # the worker that trained is gone too
    stamp = (model / "checkpoint.pt").stat().st_mtime_ns
    time.sleep(2)  # a training that went on would update its checkpoint every epoch
    assert (model / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in model.iterdir()) == [".tomochunk-cancelled",
                                                         "checkpoint.pt"]
    assert _tree_hash(small / "recon.zarr") == before, "the input changed"


def _children(proc: subprocess.Popen) -> list:
    import psutil

    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
@pytest.mark.parametrize("when", ["importing", "starting the cluster"])
def test_ctrl_c_while_starting_prints_one_line(small, tmp_path, when):
    """A Ctrl-C before the command is up (while Python imports tomochunk, or while the local
    cluster's workers start) ends it with the one line too: no KeyboardInterrupt traceback
    from an import, none from a half-started worker, none from Dask's exit handler."""
    proc = _cli("denoise", small / "recon.zarr", small / "model", tmp_path / "d.zarr",
                "--workers", "1", "--device", "cpu")
    children: list = []
    try:
        t0 = time.time()
        if when == "importing":
            time.sleep(0.3)  # importing NumPy, Dask, xarray and zarr takes longer than this
            assert not _children(proc), "the cluster started already"
        else:
            while not children and proc.poll() is None and time.time() - t0 < 120:
                children = _children(proc)  # the first process the cluster start spawns
                time.sleep(0.02)
            assert children, "the local cluster never started"
        assert proc.poll() is None, "finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert out == ""
    _one_interrupted_line(proc, err, children + _children(proc))
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "output left behind"
