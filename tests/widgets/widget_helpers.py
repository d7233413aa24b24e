"""Shared values of the widget tests (a module name of its own: every test folder has a conftest)."""

#: a cached 3-window Crab mosaic request, shared by the tests that need products
CRAB = dict(src_name="Crab", RA=83.6331, DEC=22.0145, T1="2016-02-01T00:00:00",
            T2="2016-03-01T00:00:00", max_pointings=3, E1_keV=20.0, E2_keV=40.0)
