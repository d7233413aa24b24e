"""Errors whose text is meant for the user.

Only :class:`PublicError` text reaches users (API, CLI, widgets). It says what was asked,
what is allowed and what to do, as dask-gateway's ``PublicException`` does.
"""

from __future__ import annotations

import warnings

# Library noise never reaches a user. UTC past the last known leap second (a request for 2030)
# makes ERFA warn "dubious year" on every conversion: the times stay exact to the second we
# need, and a request outside the data is answered with a message naming the mission window.
# Every process that can show text (CLI, server, kernels, Dask workers) imports this module.
warnings.filterwarnings("ignore", message=r".*dubious year", module=r"erfa(\..*)?")


#: longest piece of a user's input repeated in an answer (a 10 MB value is not echoed back)
SHOWN_CHARS = 200


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class PublicError(Exception):
    """An error the user caused and can fix; its message is shown verbatim.

    Parameters
    ----------
    message : str
        Full sentence for the user.
    parameter : str, optional
        The request parameter at fault, if any (``RA``, ``E1_keV``...).
    value : object, optional
        The value that was given.
    status : int
        HTTP status a server door should answer with (400 bad input, 403 not allowed,
        404 no data, 429 too many requests).
    """

    def __init__(
        self,
        message: str,
        parameter: str | None = None,
        value: object = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.value = value
        self.status = status

    def to_dict(self) -> dict:
        return {
            "error": self.message,
            "parameter": self.parameter,
            "value": None if self.value is None else str(self.value)[:SHOWN_CHARS],
            "status": self.status,
        }


class ParameterError(PublicError):
    """A request parameter is missing, malformed or out of bounds."""

    def __init__(self, parameter: str, value: object, allowed: str, why: str = "") -> None:
        why = f" {why.rstrip('.')}." if why else ""
        super().__init__(
            f"Parameter '{parameter}' = {shown(value)} is not allowed:{why} Allowed: {allowed}.",
            parameter=parameter,
            value=value,
            status=400,
        )
        self.allowed = allowed


class NoDataError(PublicError):
    """The request is valid but selects no data (e.g. no science window)."""

    def __init__(self, message: str, parameter: str | None = None, value: object = None) -> None:
        super().__init__(message, parameter=parameter, value=value, status=400)


class AccessError(PublicError):
    """The caller's tier does not allow what was asked."""

    def __init__(self, message: str, parameter: str | None = None, value: object = None) -> None:
        super().__init__(message, parameter=parameter, value=value, status=403)
