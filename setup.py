"""Package discovery: `widgets/` installs as `mmoda_widgets` (the fixed layout of DESIGN.md)."""

from setuptools import find_packages, setup

widget_packages = ["mmoda_widgets" + p[len("widgets"):] for p in find_packages(include=["widgets", "widgets.*"])]
setup(
    packages=find_packages(include=["mmoda_ext", "mmoda_ext.*"]) + widget_packages,
    package_dir={"mmoda_widgets": "widgets"},
    # enables the jupyter-server extension mmoda_ext on install (`jupyter server extension list`)
    data_files=[("etc/jupyter/jupyter_server_config.d", ["jupyter-config/jupyter_server_config.d/mmoda_ext.json"])],
)
