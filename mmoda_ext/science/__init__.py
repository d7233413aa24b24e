"""Pure science kernels: arrays, Quantities and WCS in; arrays and Tables out. No I/O, no Dask."""
