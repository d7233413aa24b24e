"""Archive: the only code that opens archive files or calls the archive service.

Public API: :class:`ScienceWindow` (scw), :class:`ScwIndex` (index), :class:`SkySource` and
:class:`SkyModel` (sky), :class:`Archive` and :func:`default_archive` (store), and the time/header
helpers of :mod:`.fitsutil`.
"""

from .fitsutil import MJDREF, ijd_to_time, standard_header, time_to_ijd
from .index import ScwIndex
from .scw import ScienceWindow
from .sky import SkyModel, SkySource
from .store import Archive, default_archive

__all__ = [
    "Archive",
    "default_archive",
    "ScienceWindow",
    "ScwIndex",
    "SkyModel",
    "SkySource",
    "MJDREF",
    "ijd_to_time",
    "time_to_ijd",
    "standard_header",
]
