"""Package discovery: `widgets/` installs as `mmoda_widgets` (the fixed layout of DESIGN.md).

`mmoda_ext` is found as namespace packages so that its data folders without `__init__.py`
(`mmoda_ext.data`, `mmoda_ext.data.antares_sim`) are packages whose files `package-data`
ships: otherwise setuptools warns (`BuildBackendWarning`) on every install and build.
"""

from setuptools import find_namespace_packages, find_packages, setup

widget_packages = ["mmoda_widgets" + p[len("widgets"):] for p in find_packages(include=["widgets", "widgets.*"])]
setup(
    packages=find_namespace_packages(include=["mmoda_ext", "mmoda_ext.*"], exclude=["*.__pycache__"])
    + widget_packages,
    package_dir={"mmoda_widgets": "widgets"},
    # enables the jupyter-server extension mmoda_ext on install (`jupyter server extension list`)
    data_files=[("etc/jupyter/jupyter_server_config.d", ["jupyter-config/jupyter_server_config.d/mmoda_ext.json"])],
)
