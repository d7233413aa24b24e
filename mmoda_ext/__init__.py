"""MMODA Hub: multi-messenger online data analysis in the notebook, on Dask."""

__version__ = "0.1.0"
