"""Preprocessing of raw projections: normalisation, -log, stripe removal, centre finding.

Numpy in, numpy out (float32). The per-block chain used by reconstruction is
:func:`preprocess_block`; :func:`find_center` works on a lazy scan dataset.
"""

from .center import (
    find_center,
    find_center_registration,
    find_center_vo,
    half_turn_indices,
    opposite_pair,
)
from .center360 import find_center_360, find_overlap_360
from .chain import preprocess_block, preprocess_scan, remove_stripes, required_row_halo
from .normalize import (
    check_flat_dark,
    count_nonfinite,
    dead_pixel_mask,
    fill_invalid,
    minus_log,
    normalize,
    reduce_stack,
)
from .paganin import paganin_filter, paganin_halo, retrieve_phase
from .projection_median import median_filter_projections, median_filter_slices
from .stripe import fw_level, remove_stripe_fw, remove_stripe_sorting

__all__ = [
    "normalize",
    "reduce_stack",
    "minus_log",
    "count_nonfinite",
    "fill_invalid",
    "dead_pixel_mask",
    "check_flat_dark",
    "remove_stripe_fw",
    "remove_stripe_sorting",
    "remove_stripes",
    "fw_level",
    "median_filter_projections",
    "median_filter_slices",
    "find_center_vo",
    "find_center_registration",
    "find_center",
    "find_center_360",
    "find_overlap_360",
    "half_turn_indices",
    "opposite_pair",
    "paganin_filter",
    "paganin_halo",
    "retrieve_phase",
    "preprocess_block",
    "preprocess_scan",
    "required_row_halo",
]
