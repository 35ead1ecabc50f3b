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

from ..errors import ConfigError, InputError
from .msd_kernel import _msd_forward, _MSDFunction, _Plan

__all__ = ["MSDNet"]

_DEFAULT_DILATIONS: tuple[int, ...] = tuple(range(1, 11))


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
