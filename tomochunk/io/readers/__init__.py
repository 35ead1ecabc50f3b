"""Raw-scan readers: the :class:`ScanReader` base and :data:`READERS` (:mod:`.base`), angle
handling (:mod:`.angles`), shared helpers (:mod:`.helpers`) and the in-memory readers
(:mod:`.memory`). The file readers live in :mod:`tomochunk.io.dxchange`,
:mod:`tomochunk.io.nexus` and :mod:`tomochunk.io.tiff`; all register on the first lookup of
:data:`READERS`.
"""

from .angles import (
    AngleUnit,
    angles_from_file,
    angles_to_radians,
    check_angle_span,
    check_theta,
    parse_angle_unit,
    read_angles_file,
    select_projection_angles,
)
from .base import READERS, ArraySpec, ScanLayout, ScanReader
from .helpers import (
    _as_stack,
    check_hdf5_path,
    expand_paths,
    hdf5_listing,
    length_to_um,
    natural_key,
    open_hdf5,
)
from .memory import DatasetReader, NpyReader

__all__ = [
    "READERS",
    "AngleUnit",
    "ArraySpec",
    "ScanLayout",
    "ScanReader",
    "DatasetReader",
    "NpyReader",
    "_as_stack",
    "parse_angle_unit",
    "angles_to_radians",
    "check_angle_span",
    "check_theta",
    "read_angles_file",
    "angles_from_file",
    "select_projection_angles",
    "length_to_um",
    "natural_key",
    "expand_paths",
    "hdf5_listing",
    "check_hdf5_path",
    "open_hdf5",
]
