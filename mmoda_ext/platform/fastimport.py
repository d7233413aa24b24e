"""Start-up of the hub and of user servers without jsonschema's slowest optional import.

``jsonschema`` imports ``rfc3987_syntax`` (when installed, as ``jupyter-events`` requires)
to check the ``iri`` formats; that module builds ~35 Lark Earley parsers at import time, about
half of the import time of ``jupyterhub`` and of ``jupyterhub-singleuser`` (2.2 of 4.7 s and
2.8 of 4.5 s CPU measured here), although no Jupyter or JupyterHub schema uses those formats
(jupyter-server/jupyter_server#1559, python-jsonschema/jsonschema#1428). Marking the module as
absent before anything imports jsonschema makes jsonschema skip those two format checkers, as it
does when the package is not installed; every other check is unchanged.

``python -m mmoda_ext.platform.fastimport singleuser [args]`` runs ``jupyterhub-singleuser``
this way (the hub's ``Spawner.cmd``); :mod:`.hubapp` does it for the hub.
"""

from __future__ import annotations

import sys

__all__ = ["skip_iri_validator"]


def skip_iri_validator() -> None:
    """Make ``import rfc3987_syntax`` fail, unless it is already imported."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] != "singleuser":
        print("usage: python -m mmoda_ext.platform.fastimport singleuser [jupyterhub-singleuser args]",
              file=sys.stderr)
        return 2
    skip_iri_validator()
    from jupyterhub.singleuser import main

    sys.argv = ["jupyterhub-singleuser", *sys.argv[2:]]
    return main() or 0


if __name__ == "__main__":
    sys.exit(_main())
