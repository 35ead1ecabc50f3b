"""Where Noise2Inverse validates: a slab of slices, or held-out columns of few-slice scans.

Normally the validation data are a slab of slices at one end of z
(:func:`tomochunk.training.dataset.slab_layout`). A scan with too few slices for that (a
single-slice sinogram, a handful of rows) is validated in-plane instead: the last
``val_fraction`` of the columns (at least :data:`MIN_VAL_COLS`; the right side for
``val_end="bottom"``, the left for ``"top"``) are held out, separated from the training
columns by a gap of the network's footprint (its receptive radius, or ``val_gap`` pixels),
so that no training input reaches a validation pixel. Training then uses every slice (a
single one for a single-slice scan) with patches inside the training columns, and the
validation loss is computed on the held-out columns of every slice. The choice is logged.
"""

from __future__ import annotations

from ..config import TrainConfig
from ..errors import InputError
from ..runtime.logs import get_logger
from .dataset import SlabLayout, slab_layout

__all__ = ["MIN_VAL_COLS", "network_footprint", "plan_layout", "train_width"]

#: Fewest validation columns of an in-plane split (the network needs some image to see).
MIN_VAL_COLS = 16

_log = get_logger("training.validation")


def network_footprint(cfg: TrainConfig) -> int:
    """Receptive radius (pixels) of the network ``cfg`` selects."""
    from ..nn.registry import build_network, network_params_from_config, receptive_radius

    net = build_network(cfg.network, cfg.context, **network_params_from_config(cfg))
    return receptive_radius(net)


def train_width(layout: SlabLayout, width: int) -> int:
    """Columns training patches may use: all, or the in-plane training columns."""
    if layout.train_cols is None:
        return width
    return layout.train_cols[1] - layout.train_cols[0]


def plan_layout(n_z: int, height: int, width: int, cfg: TrainConfig) -> SlabLayout:
    """The training/validation layout of an ``(n_z, height, width)`` volume for ``cfg``.

    A z slab when there are enough slices (:func:`slab_layout`), else held-out columns.

    Raises
    ------
    InputError
        When the slices are too narrow for the training columns, the gap and the validation
        columns; the message gives the widths and the fix.
    """
    try:
        return slab_layout(n_z, cfg.context, cfg.val_fraction, cfg.val_end,
                           cfg.max_train_slices)
    except InputError as err:
        if "slices but training with context" not in str(err):
            raise
        slab_error = str(err)
    if cfg.context > n_z:
        raise InputError(
            f"{slab_error}; validating on held-out columns instead still needs context <= the "
            f"{n_z} slice(s) (denoising reads that many): use --context "
            f"{n_z if n_z % 2 else n_z - 1} (train.context)"
        )
    gap = int(cfg.val_gap) if cfg.val_gap is not None else network_footprint(cfg)
    if gap < 0:
        raise InputError(f"val_gap={gap} must be >= 0 pixels")
    n_val = max(MIN_VAL_COLS, int(round(cfg.val_fraction * width)))
    n_train = width - n_val - gap
    need = min(cfg.patch_size, height, MIN_VAL_COLS * 2)
    if n_train < need:
        raise InputError(
            f"{slab_error}; validating on held-out columns instead, the {width} columns cannot "
            f"hold {need} training columns + a gap of {gap} (the network's footprint) + "
            f"{n_val} validation columns: set train.val_gap smaller or use a shallower "
            "network (smaller --depth)"
        )
    if cfg.val_end == "bottom":
        train_cols, val_cols = (0, n_train), (width - n_val, width)
    else:
        val_cols, train_cols = (0, n_val), (n_val + gap, width)
    _log.warning(
        "only %d slice(s), too few for a validation slab along z (context %d): validating on "
        "held-out columns %d-%d of every slice, %d px (the network's footprint) away from the "
        "training columns %d-%d", n_z, cfg.context, val_cols[0], val_cols[1] - 1, gap,
        train_cols[0], train_cols[1] - 1,
    )
    return SlabLayout(n_z, cfg.context, (0, n_z), (0, n_z), 0, (0, n_z), train_cols, val_cols)
