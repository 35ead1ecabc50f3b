"""Mixed-scale dense convolutional network (MSDNet) with memory linear in depth.

The network of Pelt & Sethian (2018): every hidden channel is a 3x3 dilated convolution over
*all* previous channels (the input included) followed by a ReLU, and a final 1x1 convolution
over all channels (input and hidden) gives the output. There is no batch normalisation, so the
output at a pixel is a pure function of the input within :attr:`MSDNet.receptive_radius`.

Implementation
--------------
A naive implementation concatenates every new channel to the previous ones
(:meth:`MSDNet.forward_reference`); autograd then keeps a copy of the growing stack per layer,
so training memory grows quadratically with depth, and oneDNN runs the many 1-output-channel
dilated convolutions slowly on CPU. Here all channels live in one preallocated buffer of shape
``(C, B, H, W)`` (channel first, so the first ``n`` channels are one ``(n, B*H*W)`` matrix) and
each hidden channel is computed as

1. a matrix product ``Z = W @ X`` of its 9 taps (3x3 kernel flattened, shape ``(9, n)``) with
   the previous channels ``X`` (shape ``(n, B*H*W)``), which reduces the channels *before*
   shifting; for a block of consecutive layers the products with the channels that precede the
   whole block are done in one larger matrix product (far better vectorised);
2. a reflect padding of the 9 tap images by the dilation and a sum of 9 shifted slices (a
   convolution's shift-and-add, exact because reflect padding commutes with the channel sum);
3. bias and ReLU, written in place into the buffer.

Training goes through a custom :class:`torch.autograd.Function` that saves only the buffer
(``C`` channels) and computes gradients block by block backwards, as the reference msdnet code
does: memory is linear in depth.

Dilations
---------
Hidden channel ``j`` of layer ``i`` uses dilation ``dilations[(i * width + j) % len(dilations)]``
(Pelt & Sethian 2018, eq. 5 with ``s_ij = ((i w + j) mod 10) + 1`` for the default
``dilations = (1, ..., 10)``); for ``width = 1`` this is ``1 + i % 10``.

Padding and tiling
------------------
Every convolution pads by reflection (mirroring). The output is translation-consistent, but
the mirrored border means that an output pixel closer than :attr:`MSDNet.receptive_radius` to
a tile edge sees mirrored data that differs from the true neighbours: in-plane tiling that
must equal whole-slice inference needs a halo of the full receptive radius (550 px for the
default MSD-100).

References
----------
D. M. Pelt and J. A. Sethian, "A mixed-scale dense convolutional neural network for image
analysis", PNAS 115(2):254-259, 2018. doi:10.1073/pnas.1715832114
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..errors import ConfigError, InputError

__all__ = ["MSDNet"]

_DEFAULT_DILATIONS: tuple[int, ...] = tuple(range(1, 11))
# Hidden channels per block of the blocked matrix products (9 taps each: 90-row GEMMs), and
# the most memory the block's tap images may take (fewer channels per block on huge images).
_BLOCK_CHANNELS = 10
_BLOCK_MAX_BYTES = 512 * 2**20


def _shift_sum(
    z: torch.Tensor, d: int, out: torch.Tensor, work: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum the 9 taps of a dilated 3x3 convolution: ``out = sum_t shift_t(pad(z_t))``.

    ``z`` has shape ``(9, B, H, W)`` (tap ``t = 3*ky + kx``); ``out`` has shape ``(B, H, W)``.
    ``work`` is an optional flat scratch tensor of at least :func:`_shift_sum_work_size`
    elements, reused across calls to avoid allocating (and page-faulting) per layer.
    """
    _, b, h, w = z.shape
    hp, wp = h + 2 * d, w + 2 * d
    if work is None:
        work = z.new_empty(_shift_sum_work_size(b, h, w, d))
    zp = work[: 9 * b * hp * wp].view(9, b, hp, wp)
    torch.ops.aten.reflection_pad2d.out(z, [d, d, d, d], out=zp)
    zp = zp.view(3, 3, b, hp, wp)
    rows = work[9 * b * hp * wp : 9 * b * hp * wp + 3 * b * hp * w].view(3, b, hp, w)
    torch.add(zp[:, 0, :, :, 0:w], zp[:, 1, :, :, d : d + w], out=rows)
    rows += zp[:, 2, :, :, 2 * d : 2 * d + w]
    torch.add(rows[0, :, 0:h], rows[1, :, d : d + h], out=out)
    out += rows[2, :, 2 * d : 2 * d + h]
    return out


def _shift_sum_work_size(b: int, h: int, w: int, d: int) -> int:
    """Scratch elements :func:`_shift_sum` needs for dilations up to ``d``."""
    return 9 * b * (h + 2 * d) * (w + 2 * d) + 3 * b * (h + 2 * d) * w


def _shift_sum_adjoint(
    g: torch.Tensor, d: int, out: torch.Tensor, work: torch.Tensor | None = None
) -> torch.Tensor:
    """Adjoint of :func:`_shift_sum`: the gradient ``(9, B, H, W)`` of the 9 tap images."""
    b, h, w = g.shape
    hp, wp = h + 2 * d, w + 2 * d
    if work is None:
        work = g.new_empty(9 * b * hp * wp)
    gp = work[: 9 * b * hp * wp].view(3, 3, b, hp, wp).zero_()
    for ky in range(3):
        for kx in range(3):
            gp[ky, kx, :, ky * d : ky * d + h, kx * d : kx * d + w] = g
    return _reflect_fold(gp.view(9, b, hp, wp), d, out)


def _reflect_fold(gp: torch.Tensor, d: int, out: torch.Tensor) -> torch.Tensor:
    """Adjoint of reflect padding by ``d`` (last two dims); overwrites the scratch ``gp``.

    Each padded row/column is added back onto the pixel it mirrors (the pad column ``m`` on
    the left mirrors column ``d - m`` of the image), then the interior is copied to ``out``.
    """
    h, w = gp.shape[-2] - 2 * d, gp.shape[-1] - 2 * d
    gp[..., :, d + 1 : 2 * d + 1] += gp[..., :, 0:d].flip(-1)
    gp[..., :, w - 1 : w - 1 + d] += gp[..., :, d + w : 2 * d + w].flip(-1)
    cols = gp[..., :, d : d + w]
    cols[..., d + 1 : 2 * d + 1, :] += cols[..., 0:d, :].flip(-2)
    cols[..., h - 1 : h - 1 + d, :] += cols[..., d + h : 2 * d + h, :].flip(-2)
    out.copy_(cols[..., d : d + h, :])
    return out


def _tap_matrix(weight: torch.Tensor) -> torch.Tensor:
    """Conv weight ``(w, n, 3, 3)`` -> tap-major matrix ``(w, 9, n)``."""
    w, n = weight.shape[:2]
    return weight.permute(0, 2, 3, 1).reshape(w, 9, n)


def _tap_matrix_to_weight(mat: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_tap_matrix`: ``(w, 9, n)`` -> ``(w, n, 3, 3)``."""
    w, _, n = mat.shape
    return mat.view(w, 3, 3, n).permute(0, 3, 1, 2).contiguous()


class _Plan:
    """Static layout of an MSDNet: channel counts, dilations and layer blocks."""

    def __init__(self, in_channels: int, depth: int, width: int, dilations: Sequence[int]):
        self.cin = in_channels
        self.depth = depth
        self.width = width
        self.channels = in_channels + depth * width
        self.dil = [int(dilations[k % len(dilations)]) for k in range(depth * width)]

    def blocks(self, npix: int, itemsize: int) -> list[tuple[int, int]]:
        """Layer ranges ``[l0, l1)`` whose products with earlier channels are done at once.

        Up to ``_BLOCK_CHANNELS`` hidden channels per block, fewer when the block's tap
        images (9 per channel) would exceed ``_BLOCK_MAX_BYTES``.
        """
        fit = _BLOCK_MAX_BYTES // (9 * npix * itemsize)
        per_block = max(1, min(_BLOCK_CHANNELS, fit) // self.width)
        return [(l0, min(l0 + per_block, self.depth)) for l0 in range(0, self.depth, per_block)]

    def n_in(self, layer: int) -> int:
        """Channels read by ``layer`` (input plus all earlier hidden channels)."""
        return self.cin + layer * self.width


def _msd_forward(
    plan: _Plan,
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    final_w: torch.Tensor,
    final_b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Buffer-based forward pass without autograd; returns ``(output, buffer)``."""
    bsz, _, h, w = x.shape
    npix = bsz * h * w
    wd = plan.width
    buf = x.new_empty(plan.channels, bsz, h, w)
    buf[: plan.cin].copy_(x.transpose(0, 1))
    flat = buf.view(plan.channels, npix)
    blocks = plan.blocks(npix, x.element_size())
    max_block = max(l1 - l0 for l0, l1 in blocks) * wd
    zbuf = x.new_empty(max_block * 9 * npix)
    work = x.new_empty(_shift_sum_work_size(bsz, h, w, max(plan.dil)))
    for l0, l1 in blocks:
        n0 = plan.n_in(l0)
        m = (l1 - l0) * wd
        mats = [_tap_matrix(weights[layer]) for layer in range(l0, l1)]
        wpre = torch.cat([mat[:, :, :n0].reshape(wd * 9, n0) for mat in mats])
        z = zbuf[: m * 9 * npix].view(m * 9, npix)
        torch.mm(wpre, flat[:n0], out=z)
        z = z.view(m, 9, bsz, h, w)
        for layer in range(l0, l1):
            n = plan.n_in(layer)
            zl = z[(layer - l0) * wd : (layer - l0 + 1) * wd]
            if n > n0:
                intra = mats[layer - l0][:, :, n0:n].reshape(wd * 9, n - n0)
                zl.view(wd * 9, npix).addmm_(intra, flat[n0:n])
            for j in range(wd):
                k = layer * wd + j
                out = buf[plan.cin + k]
                _shift_sum(zl[j], plan.dil[k], out, work)
                out.add_(biases[layer][j]).clamp_(min=0)
    y = torch.addmm(final_b[:, None], final_w, flat)
    return y.view(-1, bsz, h, w).transpose(0, 1), buf


def _msd_backward(
    plan: _Plan,
    grad_y: torch.Tensor,
    buf: torch.Tensor,
    weights: Sequence[torch.Tensor],
    final_w: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Gradients of the buffer-based forward, block by block backwards (linear memory)."""
    c, bsz, h, w = buf.shape
    npix = bsz * h * w
    wd = plan.width
    flat = buf.view(c, npix)
    gy = grad_y.transpose(0, 1).reshape(-1, npix)
    g_final_w = gy @ flat.T
    g_final_b = gy.sum(1)
    gbuf = final_w.T @ gy  # (C, npix): gradient w.r.t. every channel of the buffer
    g_w: list[torch.Tensor] = [torch.empty(0)] * plan.depth
    g_b: list[torch.Tensor] = [torch.empty(0)] * plan.depth
    blocks = plan.blocks(npix, buf.element_size())
    max_block = max(l1 - l0 for l0, l1 in blocks) * wd
    gz_buf = buf.new_empty(max_block * 9 * npix)
    dmax = max(plan.dil)
    work = buf.new_empty(9 * bsz * (h + 2 * dmax) * (w + 2 * dmax))
    for l0, l1 in reversed(blocks):
        n0 = plan.n_in(l0)
        m = (l1 - l0) * wd
        mats = [_tap_matrix(weights[layer]) for layer in range(l0, l1)]
        gz = gz_buf[: m * 9 * npix].view(m, 9, bsz, h, w)
        g_mats = [torch.zeros_like(mat) for mat in mats]
        for layer in reversed(range(l0, l1)):
            n = plan.n_in(layer)
            gzl = gz[(layer - l0) * wd : (layer - l0 + 1) * wd]
            gbias = buf.new_empty(wd)
            for j in range(wd):
                k = layer * wd + j
                g_pre = gbuf[plan.cin + k] * (flat[plan.cin + k] > 0)
                gbias[j] = g_pre.sum()
                _shift_sum_adjoint(g_pre.view(bsz, h, w), plan.dil[k], gzl[j], work)
            g_b[layer] = gbias
            if n > n0:
                gzl2 = gzl.reshape(wd * 9, npix)
                g_mats[layer - l0][:, :, n0:n] = (gzl2 @ flat[n0:n].T).view(wd, 9, n - n0)
                intra = mats[layer - l0][:, :, n0:n].reshape(wd * 9, n - n0)
                gbuf[n0:n].addmm_(intra.T, gzl2)
        gzf = gz.view(m * 9, npix)
        g_pre_mat = (gzf @ flat[:n0].T).view(m, 9, n0)
        wpre = torch.cat([mat[:, :, :n0].reshape(wd * 9, n0) for mat in mats])
        gbuf[:n0].addmm_(wpre.T, gzf)
        for layer in range(l0, l1):
            i = layer - l0
            g_mats[i][:, :, :n0] = g_pre_mat[i * wd : (i + 1) * wd]
            g_w[layer] = _tap_matrix_to_weight(g_mats[i])
    g_x = gbuf[: plan.cin].view(plan.cin, bsz, h, w).transpose(0, 1)
    return g_x, g_w, g_b, g_final_w, g_final_b


class _MSDFunction(torch.autograd.Function):
    """Autograd wrapper: saves only the channel buffer; gradients computed backwards."""

    @staticmethod
    def forward(ctx, plan, x, final_w, final_b, *params):  # type: ignore[override]
        weights, biases = params[: plan.depth], params[plan.depth :]
        y, buf = _msd_forward(plan, x, weights, biases, final_w, final_b)
        ctx.plan = plan
        ctx.save_for_backward(buf, final_w, *weights)
        return y.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):  # type: ignore[override]
        plan = ctx.plan
        buf, final_w, *weights = ctx.saved_tensors
        g_x, g_w, g_b, g_fw, g_fb = _msd_backward(plan, grad_y.contiguous(), buf, weights, final_w)
        if not ctx.needs_input_grad[1]:
            g_x = None
        return (None, g_x, g_fw, g_fb, *g_w, *g_b)


class MSDNet(nn.Module):
    """Mixed-scale dense network (Pelt & Sethian 2018).

    Parameters
    ----------
    in_channels : int
        Input channels (2.5D: the number of context slices).
    out_channels : int
        Output channels (1: the centre slice).
    depth : int
        Number of hidden layers (100 in the paper).
    width : int
        Channels per hidden layer (1 in the paper).
    dilations : sequence of int
        Dilations cycled over the hidden channels: channel ``j`` of layer ``i`` uses
        ``dilations[(i * width + j) % len(dilations)]`` (default ``1, ..., 10``).

    Notes
    -----
    Initialisation follows the reference code: hidden weights normal with standard deviation
    ``sqrt(2 / (9 * (in_channels + width * (depth - 1)) + out_channels))``, hidden biases zero,
    final 1x1 layer (weights and bias) zero. Inputs must be larger than the largest dilation
    in both image dimensions (reflect padding). The network applies no normalisation: scale the
    input and output (zero mean, unit standard deviation) outside it.

    Memory, with ``P = B*H*W`` pixels, ``C = in_channels + depth*width`` channels and 4-byte
    floats: inference needs about ``4*P*(C + 9*b + 12)`` bytes, where ``b`` (hidden channels
    per block, at most 10) is reduced so that ``36*P*b`` stays under 512 MiB; training keeps
    ``4*P*C`` bytes for backward and needs about ``4*P*(2*C + 9*b + 9)`` during it. All of
    this is linear in depth (a ``torch.cat`` per layer is quadratic).

    Examples
    --------
    >>> net = MSDNet(5, 1, depth=10)
    >>> net(torch.zeros(2, 5, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    >>> net.receptive_radius
    55
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        depth: int = 100,
        width: int = 1,
        dilations: Sequence[int] = _DEFAULT_DILATIONS,
    ):
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("depth", depth),
            ("width", width),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"MSDNet {name} must be a positive integer, got {value!r}")
        dilations = tuple(dilations)
        if not dilations or any(not isinstance(d, int) or d < 1 for d in dilations):
            raise ConfigError(
                f"MSDNet dilations must be a non-empty sequence of positive integers, "
                f"got {dilations!r}; the paper uses 1..10"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth = depth
        self.width = width
        self.dilations = dilations
        self._plan = _Plan(in_channels, depth, width, dilations)
        c_total = self._plan.channels
        std = math.sqrt(2.0 / (9 * (in_channels + width * (depth - 1)) + out_channels))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(width, self._plan.n_in(layer), 3, 3) * std)
            for layer in range(depth)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(depth))
        self.final_weight = nn.Parameter(torch.zeros(out_channels, c_total))
        self.final_bias = nn.Parameter(torch.zeros(out_channels))

    @property
    def config(self) -> dict:
        """Constructor arguments (for saving the network with its weights)."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "depth": self.depth,
            "width": self.width,
            "dilations": list(self.dilations),
        }

    @property
    def alignment(self) -> int:
        """Shifts under which the network is translation-equivariant: any (1 pixel)."""
        return 1

    def channel_dilations(self) -> list[int]:
        """Dilation of every hidden channel, in order (layer-major)."""
        return list(self._plan.dil)

    @property
    def receptive_radius(self) -> int:
        """In-plane pixels on one side that an output pixel depends on.

        The sum over layers of the largest dilation in the layer (550 for MSD-100 with
        dilations 1..10): the longest chain through one channel per layer.
        """
        d = self._plan.dil
        w = self.width
        return sum(max(d[i * w : (i + 1) * w]) for i in range(self.depth))

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"MSDNet expects input of shape (batch, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}; pass the context slices as channels"
            )
        if x.dtype != self.final_weight.dtype:
            raise InputError(
                f"MSDNet input dtype {x.dtype} differs from the weights' "
                f"{self.final_weight.dtype}; convert with x.to({self.final_weight.dtype})"
            )
        dmax = max(self._plan.dil)
        if min(x.shape[2:]) <= dmax:
            raise InputError(
                f"image of {x.shape[2]}x{x.shape[3]} pixels is too small for reflect padding "
                f"with dilation {dmax}; use images (patches) larger than {dmax} pixels per side"
            )

    def _params(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return list(self.weights), list(self.biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to ``x`` of shape ``(B, in_channels, H, W)``."""
        self._check_input(x)
        weights, biases = self._params()
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters())
        )
        if needs_grad:
            return _MSDFunction.apply(
                self._plan, x.contiguous(), self.final_weight, self.final_bias, *weights, *biases
            )
        with torch.no_grad():
            y, _ = _msd_forward(
                self._plan, x.contiguous(), weights, biases, self.final_weight, self.final_bias
            )
        return y.contiguous()

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """Naive forward with ``torch.cat`` per layer (quadratic memory; test/benchmark peer)."""
        self._check_input(x)
        h = x
        for layer in range(self.depth):
            outs = []
            for j in range(self.width):
                d = self._plan.dil[layer * self.width + j]
                conv = F.conv2d(
                    F.pad(h, (d, d, d, d), mode="reflect"),
                    self.weights[layer][j : j + 1],
                    self.biases[layer][j : j + 1],
                    dilation=d,
                )
                outs.append(F.relu(conv))
            h = torch.cat([h, *outs], dim=1)
        c_total = self._plan.channels
        return F.conv2d(
            h, self.final_weight.view(self.out_channels, c_total, 1, 1), self.final_bias
        )
