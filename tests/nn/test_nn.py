"""Tests of tomochunk.nn: MSDNet against its naive peer, linear memory, receptive radii,
locality (tiles with the full halo equal the whole image), UNet, registry and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from tomochunk.config import TrainConfig
from tomochunk.errors import ConfigError, InputError
from tomochunk.nn import (
    NETWORKS,
    MSDNet,
    UNet,
    build_network,
    network_params_from_config,
    receptive_radius,
)
from tomochunk.nn import msd_kernel as msd_module


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors gain nothing from threads; on a busy machine OpenMP spin-waits dominate."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomise(
    net: torch.nn.Module, std: float = 0.2, seed: int = 0, positive: bool = False
) -> torch.nn.Module:
    """Give every parameter random non-zero values (the reference init zeroes the last layer).

    ``positive`` makes every weight positive, so that with a positive input every ReLU is
    active and every path through the network contributes (support = receptive field).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
            if positive:
                p.abs_()
    return net


@pytest.mark.parametrize(
    ("width", "depth", "dilations", "block_bytes"),
    [
        (1, 12, tuple(range(1, 11)), None),  # default blocks of 10 layers
        (2, 6, (1, 2, 3), None),
        (1, 7, (1, 2, 3), 1),  # one layer per block (the memory cap for huge images)
    ],
)
def test_msd_matches_naive_outputs_and_gradients(width, depth, dilations, block_bytes, monkeypatch):
    if block_bytes is not None:
        monkeypatch.setattr(msd_module, "_BLOCK_MAX_BYTES", block_bytes)
    torch.manual_seed(1)
    net = _randomise(MSDNet(3, 2, depth=depth, width=width, dilations=dilations))
    x = torch.randn(2, 3, 25, 18, requires_grad=True)
    y = net(x)
    y_ref = net.forward_reference(x)
    assert y.shape == (2, 2, 25, 18)
    assert (y - y_ref).abs().max().item() < 1e-4
    assert y.abs().max().item() > 0.1  # a non-trivial output
    g = torch.randn_like(y)
    params = list(net.parameters())
    grads = torch.autograd.grad(y, [x, *params], g)
    grads_ref = torch.autograd.grad(y_ref, [x, *params], g)
    for a, b in zip(grads, grads_ref, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 1e-4
    assert all(a.abs().max().item() > 0 for a in grads)  # every gradient is exercised
    with torch.no_grad():
        assert torch.equal(net(x), net(x))  # deterministic, grad and no-grad paths agree
        assert (net(x) - y).abs().max().item() < 1e-6


def test_msd_batch_equals_single_slices():
    """Chunks of different batch size (z-chunks of a volume) give the same slices."""
    net = _randomise(MSDNet(5, 1, depth=10), std=0.2).eval()
    x = torch.randn(3, 5, 40, 33)
    with torch.no_grad():
        whole = net(x)
        for i in range(3):
            assert (net(x[i : i + 1]) - whole[i : i + 1]).abs().max().item() < 1e-5


@pytest.mark.parametrize(("h", "w", "d"), [(11, 12, 10), (5, 4, 3), (30, 20, 1)])
def test_reflect_fold_is_the_adjoint_of_reflect_padding(h, w, d):
    from tomochunk.nn.msd_kernel import _reflect_fold

    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, h + 2 * d, w + 2 * d, dtype=torch.float64)
    padded = torch.nn.functional.pad(x, (d, d, d, d), mode="reflect")
    (expected,) = torch.autograd.grad(padded, x, g)
    out = torch.empty(2, 3, h, w, dtype=torch.float64)
    assert torch.allclose(_reflect_fold(g.clone(), d, out), expected, atol=1e-12)


def _saved_bytes(net: MSDNet, x: torch.Tensor, naive: bool) -> int:
    """Bytes of the tensors autograd saves for backward during one forward pass."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = net.forward_reference(x) if naive else net(x)
    y.sum().backward()
    return total


def test_msd_training_memory_grows_linearly_with_depth():
    x = torch.randn(1, 5, 32, 32)
    sizes = {}
    for naive in (False, True):
        sizes[naive] = [_saved_bytes(MSDNet(5, 1, depth=d), x, naive) for d in (10, 20, 40)]
    ours, peer = sizes[False], sizes[True]
    # linear: doubling the depth at most doubles the saved bytes (the input is a fixed part)
    assert ours[1] / ours[0] < 2.0 and ours[2] / ours[1] < 2.0
    # the per-layer torch.cat peer grows quadratically
    assert peer[2] / peer[1] > 3.0
    # channel buffer (5 + depth channels) plus the small weights, nothing else
    buffer_bytes = (5 + 40) * 32 * 32 * 4
    assert buffer_bytes <= ours[2] < 1.5 * buffer_bytes


def test_msd_reference_initialisation():
    net = MSDNet(5, 1, depth=100, width=1)
    std = math.sqrt(2 / (9 * (5 + 99) + 1))
    w = torch.cat([p.flatten() for p in net.weights])
    assert w.numel() == 9 * sum(5 + i for i in range(100))
    assert abs(w.std().item() - std) < 0.05 * std
    assert abs(w.mean().item()) < 0.05 * std
    assert all(torch.count_nonzero(b) == 0 for b in net.biases)
    assert torch.count_nonzero(net.final_weight) == 0
    assert torch.count_nonzero(net.final_bias) == 0
    assert net.channel_dilations()[:12] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]


def test_msd_width_dilations_follow_the_paper():
    net = MSDNet(1, 1, depth=4, width=3)
    # s_ij = ((i * w + j) mod 10) + 1
    assert net.channel_dilations() == [((i * 3 + j) % 10) + 1 for i in range(4) for j in range(3)]
    assert net.receptive_radius == 3 + 6 + 9 + 10


def test_receptive_radii():
    assert receptive_radius(build_network("msd", 5)) == 550
    assert build_network("msd", 5).alignment == 1
    assert build_network("unet", 5, depth=3).alignment == 8
    assert receptive_radius(build_network("msd", 5, depth=10)) == 55
    assert receptive_radius(build_network("unet", 5, depth=3, features=4)) == 51
    with pytest.raises(ConfigError, match="does not declare a receptive_radius"):
        receptive_radius(torch.nn.Conv2d(1, 1, 3))


def _support(net: torch.nn.Module, x: torch.Tensor, positions) -> int:
    """Largest one-sided distance from an output pixel to an input pixel it depends on."""
    x = x.clone().requires_grad_(True)
    y = net(x)
    reach = 0
    for p in positions:
        (g,) = torch.autograd.grad(y[0, 0, p, p], x, retain_graph=True)
        nz = (g.abs().sum((0, 1)) > 0).nonzero()
        reach = max(reach, int((nz - p).abs().max()))
    return reach


def test_receptive_radius_is_the_true_support():
    msd = _randomise(MSDNet(2, 1, depth=7, dilations=(1, 2, 3)), positive=True)
    x = torch.rand(1, 2, 40, 40) + 0.5
    assert _support(msd, x, [20]) == msd.receptive_radius == 1 + 2 + 3 + 1 + 2 + 3 + 1
    unet = _randomise(UNet(2, 1, depth=2, features=3), std=0.5, positive=True)
    x = torch.rand(1, 2, 48, 48) + 0.5
    assert _support(unet, x, range(20, 28)) == unet.receptive_radius


def test_msd_tile_with_full_halo_equals_whole_image():
    """Reflect padding only matters within the receptive radius of the border."""
    net = _randomise(MSDNet(3, 1, depth=8, dilations=(1, 2, 3, 4)), std=0.15).double()
    r = net.receptive_radius
    x = torch.randn(1, 3, 80, 75, dtype=torch.float64)
    with torch.no_grad():
        whole = net(x)
        y0, y1, x0, x1 = 30, 50, 28, 47  # the tile whose output we want
        tile = net(x[:, :, y0 - r : y1 + r, x0 - r : x1 + r])[:, :, r:-r, r:-r]
        assert (tile - whole[:, :, y0:y1, x0:x1]).abs().max().item() < 1e-12
        short = r // 2  # a halo shorter than the radius sees mirrored data: different output
        tile = net(x[:, :, y0 - short : y1 + short, x0 - short : x1 + short])
        diff = tile[:, :, short:-short, short:-short] - whole[:, :, y0:y1, x0:x1]
        assert diff.abs().max().item() > 1e-4


def _any_size_and_aligned_tile(net, channels: int, sizes, shape, y0: int, x0: int):
    """``net`` keeps any image size, and a 16-px tile on its alignment grid, extended by the
    receptive radius rounded up to that grid, equals the whole image there. Returns the input
    and the whole image's output."""
    for h, w in sizes:
        assert net(torch.randn(2, channels, h, w, dtype=torch.float64)).shape == (2, 1, h, w)
    r, a = net.receptive_radius, net.alignment
    x = torch.randn(1, channels, *shape, dtype=torch.float64)
    with torch.no_grad():
        whole = net(x)
        halo = -(-r // a) * a  # the radius rounded up to the alignment grid
        tile = net(x[:, :, y0 - halo : y0 + 16 + halo, x0 - halo : x0 + 16 + halo])
        diff = tile[:, :, halo:-halo, halo:-halo] - whole[:, :, y0:y0 + 16, x0:x0 + 16]
        assert diff.abs().max().item() < 1e-9 * whole.abs().max().item()
        assert torch.equal(net(x), whole)
    return x, whole


def test_unet_any_size_and_aligned_tiles():
    net = _randomise(UNet(5, 1, depth=2, features=4), std=0.3).double().eval()
    _any_size_and_aligned_tile(net, 5, [(30, 21), (17, 64), (5, 9)], (100, 96), 40, 36)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._NormBase) for m in net.modules())


def test_space_to_depth_unet_tiles_receptive_field_and_config():
    torch.manual_seed(0)
    net = _randomise(UNet(3, 1, depth=2, features=4, space_to_depth=2), std=0.3).double().eval()
    assert net.alignment == 8 and net.config["space_to_depth"] == 2
    x, whole = _any_size_and_aligned_tile(net, 3, [(30, 21), (17, 64), (9, 12)], (208, 200),
                                          96, 88)
    r = net.receptive_radius
    with torch.no_grad():
        # the radius bounds the reach: a change r+1 pixels away leaves the pixel unchanged,
        # while a change next to it changes the pixels around it
        far, near = x.clone(), x.clone()
        far[:, :, 104, 96 + r + 1] += 10.0
        near[:, :, 104, 97] += 10.0
        assert net(far)[0, 0, 104, 96] == whole[0, 0, 104, 96]
        assert (net(near) - whole)[0, 0, 102:107, 94:99].abs().max() > 1e-6
    # the plain UNet's weights (and saved models without the key) are unchanged by the option
    plain = UNet(3, 1, depth=2, features=4)
    assert [k for k in plain.state_dict()] == [k for k in net.state_dict()]
    assert build_network("unet", 3, 1, depth=2, features=4).config["space_to_depth"] == 1
    with pytest.raises(ConfigError, match="space_to_depth"):
        UNet(3, 1, space_to_depth=0)


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    target = x[:, 1:2] * 0.5 + 0.1
    for name, params in (
        ("msd", {"depth": 6, "dilations": (1, 2, 3)}),
        ("unet", {"depth": 2, "features": 4}),
        ("unet", {"depth": 1, "features": 8, "space_to_depth": 2}),
    ):
        torch.manual_seed(0)
        net = build_network(name, 3, 1, **params)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        losses = []
        for _ in range(25):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], (name, losses)


def test_registry_and_build_network():
    assert NETWORKS.names() == ["msd", "unet"]
    assert NETWORKS.available() == {"msd": True, "unet": True}
    net = build_network("msd", 5, 1, depth=3, width=2)
    assert isinstance(net, MSDNet) and net.config["depth"] == 3 and net.config["width"] == 2
    net2 = build_network(**{"name": "msd", **net.config})
    net2.load_state_dict(net.state_dict())
    assert isinstance(build_network("unet", 5, depth=2, features=8), UNet)
    with pytest.raises(
        ConfigError,
        match=r"unknown parameter\(s\) features for network 'msd'; "
        r"valid parameters are: depth, width, dilations",
    ):
        build_network("msd", 5, features=3)
    with pytest.raises(ConfigError, match="unknown network 'resnet'; valid names are: msd, unet"):
        build_network("resnet", 5)
    with pytest.raises(ConfigError, match="MSDNet depth must be a positive integer, got 0"):
        build_network("msd", 5, depth=0)
    with pytest.raises(ConfigError, match="UNet features must be a positive integer"):
        build_network("unet", 5, features=-1)


def test_network_params_from_config():
    cfg = TrainConfig(depth=30, width=2, unet_depth=4, unet_features=16)
    assert network_params_from_config(cfg) == {"depth": 30, "width": 2}
    cfg = TrainConfig(network="unet", unet_depth=4, unet_features=16)
    assert network_params_from_config(cfg) == {"depth": 4, "features": 16, "space_to_depth": 1}
    with pytest.raises(ConfigError, match="unknown network 'foo'"):
        network_params_from_config(TrainConfig(network="foo"))


def test_bad_input_errors():
    msd = MSDNet(5, 1, depth=3)
    with pytest.raises(
        InputError,
        match=r"expects input of shape \(batch, 5, H, W\), got "
        r"\(1, 3, 20, 20\)",
    ):
        msd(torch.zeros(1, 3, 20, 20))
    with pytest.raises(InputError, match="too small for reflect padding with dilation 3"):
        msd(torch.zeros(1, 5, 3, 20))
    with pytest.raises(InputError, match="convert with"):
        msd(torch.zeros(1, 5, 20, 20, dtype=torch.float64))
    unet = UNet(5, 1, depth=3, features=4)
    with pytest.raises(InputError, match="too small for a UNet of depth 3"):
        unet(torch.zeros(1, 5, 8, 40))
