"""Products: the files a request delivers, in the layouts of the real OSA/MMODA products.

Kernels in :mod:`..science` return arrays and tables; this package turns them into files —
FITS with the extension names, order and columns of OSA/MMODA (``reference/instruments.md``),
PNG previews (every one marked as simulated) and DS9 region files. Instruments call it after
their reduce step; nothing here computes science.

Modules: :mod:`.fitsfile` (every FITS file is written through it: ``SIMULATE`` in every HDU);
:mod:`.plots` (shared previews; every PNG leaves through ``save_png`` with the simulated-data mark); ISGRI: :mod:`.isgri` (mosaic;
the MMODA catalogue, its FITS and DS9 region files and the mosaic preview, JEM-X's too),
:mod:`.isgri_spectrum` (OGIP PHA, ARF, RMF), :mod:`.isgri_lc`, :mod:`.spectral_fit` (fit
results and preview); JEM-X: :mod:`.jemx` (mosaic, catalogue, OGIP spectrum and response,
light curve) and :mod:`.jemx_plots`; :mod:`.spi_acs` (light curve and burst table),
:mod:`.polar` (FITS light curve and ROOT file), :mod:`.antares` (upper-limit tables).
"""
