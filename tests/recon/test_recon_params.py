"""Reconstruction backends own their parameters: Params, ranges, the block functions, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from skimage.data import shepp_logan_phantom
from skimage.transform import radon, rescale

from tomochunk.cli import main
from tomochunk.config import ReconConfig
from tomochunk.overrides import parse_settings, resolve_config
from tomochunk.recon import RECONSTRUCTORS, nufft_fbp
from tomochunk.recon.cufinufft_backend import CufinufftParams
from tomochunk.recon.gridrec import DEFAULT_EPS, NativeParams
from tomochunk.registry import ParamRangeError


@pytest.fixture(scope="module")
def block():
    """A two-row Shepp-Logan sinogram block (90 angles, 64 detector pixels) and its angles."""
    image = rescale(shepp_logan_phantom(), 64 / 400, anti_aliasing=True)
    theta_deg = np.linspace(0.0, 180.0, 90, endpoint=False)
    sino = radon(image, theta_deg, circle=False).T.astype(np.float32)  # (angle, det)
    rows = np.stack([sino, 0.5 * sino], axis=1)
    return rows, np.deg2rad(theta_deg), (rows.shape[-1] - 1) / 2


def test_backend_params_defaults() -> None:
    native = RECONSTRUCTORS.get_entry("native").obj
    assert native.params() == NativeParams(eps=DEFAULT_EPS, upsampfac=1.25)
    assert (DEFAULT_EPS, native.param_names()) == (2e-5, ["eps", "upsampfac"])
    gpu = RECONSTRUCTORS.get_entry("cufinufft").obj.params()
    assert gpu == CufinufftParams(eps=2e-5, upsampfac=None)
    for name in ("astra", "tomopy", "auto"):  # no parameters of their own
        assert RECONSTRUCTORS.get_entry(name).obj.param_names() == []
    assert RECONSTRUCTORS.get_entry("auto").obj.params_from == ("cufinufft", "native")
    assert NativeParams(upsampfac=2).upsampfac == 2.0 and isinstance(
        NativeParams(upsampfac=2).upsampfac, float)
    with pytest.raises(AttributeError):  # frozen
        native.params().eps = 1e-3  # type: ignore[misc]


@pytest.mark.parametrize("make, message", [
    (lambda: NativeParams(eps=1e-7), "recon.native.eps must be >= 1e-6 and < 0.1 (got 1e-07): "
                                     "single-precision finufft is not more accurate than 1e-6"),
    (lambda: NativeParams(eps=0.1), "recon.native.eps must be >= 1e-6 and < 0.1 (got 0.1)"),
    (lambda: NativeParams(eps="fine"), "recon.native.eps must be >= 1e-6 and < 0.1 (got 'fine')"),
    (lambda: NativeParams(upsampfac=1.5), "recon.native.upsampfac must be 1.25 or 2.0 (got 1.5)"),
    (lambda: NativeParams(upsampfac=None), "recon.native.upsampfac must be 1.25 or 2.0 (got None)"),
    (lambda: CufinufftParams(upsampfac=3.0),
     "recon.cufinufft.upsampfac must be 1.25, 2.0 or null (cufinufft's default, 2.0) (got 3.0)"),
    (lambda: CufinufftParams(eps=0.5), "recon.cufinufft.eps must be >= 1e-6 and < 0.1 (got 0.5)"),
])
def test_backend_params_ranges_are_one_line_errors(make, message) -> None:
    with pytest.raises(ParamRangeError) as err:
        make()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_set_reaches_the_block_function(block) -> None:
    rows, theta, center = block
    settings = parse_settings(["recon.native.upsampfac=2.0", "recon.native.eps=1e-6"])
    cfg = resolve_config(None, settings).recon  # as the CLI builds it from --set
    assert cfg.params_of("native") == NativeParams(eps=1e-6, upsampfac=2.0)
    native = RECONSTRUCTORS.get("native")
    fine = native(rows, theta, center, cfg, nthreads=1)
    default = native(rows, theta, center, ReconConfig(), nthreads=1)
    # defaults: bit-identical to calling the function as the backend did before its Params
    np.testing.assert_array_equal(default, nufft_fbp(rows, theta, center, nthreads=1))
    np.testing.assert_array_equal(
        fine, nufft_fbp(rows, theta, center, nthreads=1, eps=1e-6, upsampfac=2.0))
    assert not np.array_equal(fine, default)
    rel = np.linalg.norm(fine - default) / np.linalg.norm(default)
    assert 1e-7 < rel < 1e-3
    # auto without a GPU is native, with native's parameters
    auto = RECONSTRUCTORS.get("auto")(rows, theta, center, ReconConfig(
        backend="auto", native={"eps": 1e-6, "upsampfac": 2.0}, cufinufft={"eps": 1e-3}),
        nthreads=1)
    if not RECONSTRUCTORS.available()["cufinufft"]:
        np.testing.assert_array_equal(auto, fine)


def test_bad_backend_param_on_the_cli_is_one_line_exit_2(tmp_path) -> None:
    res = CliRunner().invoke(main, ["recon", str(tmp_path / "scan.zarr"),
                                    str(tmp_path / "r.zarr"), "--set",
                                    "recon.native.upsampfac=1.5"])
    assert res.exit_code == 2
    err = res.output.strip()
    assert err.startswith("Error: recon.native.upsampfac must be 1.25 or 2.0 (got 1.5)")
    assert len(err.splitlines()) == 1 and not (tmp_path / "r.zarr").exists()


def test_backends_lists_parameters_with_defaults() -> None:
    out = CliRunner().invoke(main, ["backends"]).output
    lines = out.splitlines()
    native = lines.index(next(ln for ln in lines if ln.lstrip().startswith("native ")))
    assert lines[native + 1].split() == ["parameters:", "eps=2e-05,", "upsampfac=1.25"]
    assert "parameters: eps=2e-05, upsampfac=null" in out
    assert "parameters: radius=2, footprint=ball" in out
    # scan readers are components too (their classes): their dataset paths and name patterns
    assert ("parameters: data=/exchange/data, flat=/exchange/data_white, "
            "dark=/exchange/data_dark, theta=/exchange/theta") in out
    assert "parameters: flat_pattern=flat|white|bright, dark_pattern=dark" in out
