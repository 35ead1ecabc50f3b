"""A plain U-Net with reflect padding and no normalisation layers.

Encoder levels of two 3x3 convolutions + ReLU with 2x2 max pooling between them, a bottleneck,
and decoder levels that upsample with a 2x2 transposed convolution, concatenate the skip
connection and apply two 3x3 convolutions + ReLU; a final 1x1 convolution gives the output.
Features double at every level. There is no batch or instance normalisation (they mix
statistics over the image, so tiles would differ from the whole slice), so the output is a pure
function of the input.

With ``space_to_depth=s > 1`` the image is first rearranged losslessly into ``s*s`` sub-images
stacked as channels (``pixel_unshuffle``, as FFDNet does; Zhang, Zuo & Zhang 2018), the U-Net
runs at ``1/s`` resolution, and ``pixel_shuffle`` puts the ``s*s`` outputs back: every
convolution then costs ``1/s**2`` of the pixels, so a CPU gets several times more training
steps per second for the same receptive field (``benchmarks/n2i_networks.py``).

The input is padded by reflection on the bottom and right to a multiple of ``2**depth`` (times
``space_to_depth``) and the output cropped back, so any image larger than that works. Because of
the pooling, the network is translation-equivariant only for shifts by multiples of
``2**depth`` (:attr:`UNet.alignment`): in-plane tiles that must equal whole-slice inference
need origins on that grid and a halo of :attr:`UNet.receptive_radius` pixels (plus alignment).

References
----------
O. Ronneberger, P. Fischer and T. Brox, "U-Net: convolutional networks for biomedical image
segmentation", MICCAI 2015, LNCS 9351:234-241. doi:10.1007/978-3-319-24574-4_28
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError

__all__ = ["UNet"]


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(inplace=True),
    )


def _conv_radius(block: nn.Module) -> int:
    """One-sided reach of a block's convolutions, in pixels of its own level."""
    r = 0
    for mod in block.children():
        if isinstance(mod, nn.Conv2d):
            r += mod.dilation[0] * (mod.kernel_size[0] - 1) // 2
    return r


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with reflect padding and no normalisation.

    Parameters
    ----------
    in_channels : int
        Input channels (2.5D: the number of context slices).
    out_channels : int
        Output channels.
    depth : int
        Number of 2x downsamplings (levels below the full resolution).
    features : int
        Feature channels at full resolution; doubled at every level.
    space_to_depth : int
        1 (default): the plain U-Net. ``s > 1``: run it on the ``s x s`` pixel-unshuffled
        image (``in_channels * s**2`` channels at ``1/s`` resolution) and pixel-shuffle the
        ``out_channels * s**2`` outputs back.

    Examples
    --------
    >>> net = UNet(5, 1, depth=2, features=4)
    >>> net(torch.zeros(1, 5, 30, 21)).shape
    torch.Size([1, 1, 30, 21])
    """

    def __init__(self, in_channels: int, out_channels: int = 1, depth: int = 3, features: int = 32,
                 space_to_depth: int = 1):
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("depth", depth),
            ("features", features),
            ("space_to_depth", space_to_depth),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"UNet {name} must be a positive integer, got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth = depth
        self.features = features
        self.space_to_depth = space_to_depth
        s2 = space_to_depth**2
        f = [features * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList(
            _double_conv(in_channels * s2 if level == 0 else f[level - 1], f[level])
            for level in range(depth)
        )
        self.bottom = _double_conv(f[depth - 1], f[depth])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(f[level + 1], f[level], 2, stride=2) for level in range(depth)
        )
        self.dec = nn.ModuleList(_double_conv(2 * f[level], f[level]) for level in range(depth))
        self.head = nn.Conv2d(f[0], out_channels * s2, 1)

    @property
    def config(self) -> dict:
        """Constructor arguments (for saving the network with its weights)."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "depth": self.depth,
            "features": self.features,
            "space_to_depth": self.space_to_depth,
        }

    @property
    def alignment(self) -> int:
        """Shifts (pixels) under which the network is translation-equivariant:
        ``2**depth * space_to_depth``."""
        return 2**self.depth * self.space_to_depth

    @property
    def receptive_radius(self) -> int:
        """Bound on the in-plane pixels on one side that an output pixel depends on.

        Computed from the layers: a pixel of level ``l`` covers input pixels
        ``[2**l c - r, 2**l (c + 1) - 1 + r]``; a convolution of reach ``k`` adds
        ``k * 2**l`` to ``r``, pooling adds nothing and upsampling to level ``l`` adds
        ``2**l`` (odd pixels sit one coarse half-pixel off).
        """
        enc = []
        r = 0
        for level, block in enumerate(self.down):
            r += _conv_radius(block) * 2**level
            enc.append(r)
        r += _conv_radius(self.bottom) * 2**self.depth
        for level in reversed(range(self.depth)):
            r = max(r + 2**level, enc[level]) + _conv_radius(self.dec[level]) * 2**level
        # a sub-image pixel of the s x s unshuffle covers input pixels [s c, s c + s - 1]
        s = self.space_to_depth
        return s * r + s - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to ``x`` of shape ``(B, in_channels, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"UNet expects input of shape (batch, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}; pass the context slices as channels"
            )
        h, w = x.shape[2:]
        m = self.alignment
        if min(h, w) <= m:
            raise InputError(
                f"image of {h}x{w} pixels is too small for a UNet of depth {self.depth}: use "
                f"images (patches) larger than {m} pixels per side or a smaller unet depth"
            )
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        if self.space_to_depth > 1:
            x = F.pixel_unshuffle(x, self.space_to_depth)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for level in reversed(range(self.depth)):
            x = self.up[level](x)
            x = self.dec[level](torch.cat([skips[level], x], dim=1))
        x = self.head(x)
        if self.space_to_depth > 1:
            x = F.pixel_shuffle(x, self.space_to_depth)
        return x[:, :, :h, :w]
