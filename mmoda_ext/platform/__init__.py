"""The MMODA Hub platform on one machine: identity provider, JupyterHub and its services."""

from .launcher import Platform, PlatformError

__all__ = ["Platform", "PlatformError"]
