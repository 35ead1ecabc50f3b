"""Difference image of a filter and a check for structure in it.

Flenner et al. (2022, Fig. 8e) inspect ``filtered - unfiltered``: a filter that removes only
noise leaves a difference without features; structure in it is signal the filter removed
(blur) or invented. We quantify this as the fraction of the difference's variance that a
linear function of a signal estimate explains, i.e. the squared Pearson correlation::

    d = filtered - unfiltered
    structure_fraction = corr(d, s)^2 = cov(d, s)^2 / (var(d) var(s))

computed inside a mask, where ``s`` is the ground truth when given, else the filtered image
itself. For pure noise removal ``d = -n`` is uncorrelated with the signal and the fraction is
~0; a blurring filter removes ``s - blur(s)``, which correlates with ``s``, giving a clearly
positive fraction. With the filtered image as ``s`` the estimate includes a small bias from
the noise the filter left in (it shares noise with ``d``), so compare methods on the same data
and prefer a truth when there is one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .cnr import as_image, check_mask

__all__ = ["difference_structure"]


def difference_structure(
    filtered: Any,
    unfiltered: Any,
    reference: Any = None,
    *,
    mask: Any = None,
) -> dict[str, Any]:
    """Difference image ``filtered - unfiltered`` and the fraction of it that is structure.

    Parameters
    ----------
    filtered, unfiltered : array_like, 2D or 3D, same shape
    reference : array_like, optional
        Signal estimate ``s`` (the ground truth); default the filtered image.
    mask : array_like of bool, optional
        Region of the statistics (default: all).

    Returns
    -------
    dict
        ``difference`` (numpy array), ``structure_fraction`` (corr^2 in [0, 1]),
        ``correlation`` (signed Pearson r), ``slope`` (least-squares ``d ~ slope * s``),
        ``rms`` (root mean square of the centred difference) and ``signal``
        ("reference" or "filtered").
    """
    f = as_image(filtered, "filtered image")
    u = as_image(unfiltered, "unfiltered image")
    if f.shape != u.shape:
        raise InputError(
            f"filtered {f.shape} and unfiltered {u.shape} images must have the same shape"
        )
    if reference is None:
        s, which = f, "filtered"
    else:
        s, which = as_image(reference, "reference"), "reference"
        if s.shape != f.shape:
            raise InputError(
                f"the reference has shape {s.shape} but the images have shape {f.shape}; "
                "pass a reference of the same region"
            )
    m = np.ones(f.shape, bool) if mask is None else check_mask(mask, f.shape, "mask")
    d = f - u
    m = m & np.isfinite(d) & np.isfinite(s)
    dv = d[m] - d[m].mean()
    sv = s[m] - s[m].mean()
    vd, vs = float(np.mean(dv**2)), float(np.mean(sv**2))
    if vs == 0:
        raise InputError("the signal estimate is constant inside the mask; no structure to test")
    cov = float(np.mean(dv * sv))
    r = cov / np.sqrt(vd * vs) if vd > 0 else 0.0
    return {
        "difference": d,
        "structure_fraction": float(r**2),
        "correlation": float(r),
        "slope": cov / vs,
        "rms": float(np.sqrt(vd)),
        "signal": which,
    }
