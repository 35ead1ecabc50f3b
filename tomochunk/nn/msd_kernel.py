"""The memory-lean blocked forward and backward pass of the MSDNet channel stack.

The kernel behind :class:`tomochunk.nn.msd.MSDNet` (see that module for the method): all
channels in one ``(C, B, H, W)`` buffer, each block of hidden channels computed as one matrix
product of its taps with the preceding channels, a reflect-padded shift-and-add of the 9 tap
images, bias and ReLU in place; :class:`_MSDFunction` saves only the buffer and computes the
gradients block by block backwards, so training memory is linear in depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

__all__: list[str] = []

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

