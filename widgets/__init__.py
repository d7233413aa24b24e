"""MMODA Hub ipywidgets panels."""
