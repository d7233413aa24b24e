"""Gnomonic (TAN) frames without trigonometry in the hot path.

Both the per-window ISGRI sky image and the mosaic are TAN projections: a decoded image
pixel is an integer shift of the mask shadow, i.e. a step of 4.6 mm / 3202.97 mm in the
tangent of the off-axis angle. A map between two gnomonic projections is a central
projection between two planes, hence a 3×3 homography: reprojecting a window onto the
mosaic grid is one small matrix product per pixel, no spherical trigonometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

__all__ = ["TangentFrame", "unit_vector"]


def unit_vector(ra_deg, dec_deg) -> np.ndarray:
    """Cartesian unit vector(s) of (RA, Dec) in degrees; shape (..., 3)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


@dataclass(frozen=True)
class TangentFrame:
    """A TAN pixel grid: tangent point, position angle of +row, pixel scale, reference pixel.

    Pixels are 0-based ``(x, y)`` = (column, row); ``crpix`` is the 0-based pixel of the
    tangent point. The FITS WCS has ``CDELT1 < 0`` (east to the left) rotated by ``pa``.
    """

    ra0: float
    dec0: float
    pa: float
    scale_deg: float
    crpix: tuple[float, float]
    shape: tuple[int, int]  # (ny, nx) numpy shape

    # -- basis and affine parts --------------------------------------------------------
    def basis(self) -> np.ndarray:
        """Columns: east, north, centre unit vectors at the tangent point."""
        a, d = np.radians(self.ra0), np.radians(self.dec0)
        east = np.array([-np.sin(a), np.cos(a), 0.0])
        north = np.array([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)])
        centre = unit_vector(self.ra0, self.dec0)
        return np.column_stack([east, north, centre])

    def cd(self) -> np.ndarray:
        """FITS CD matrix (degrees per pixel)."""
        s, r = self.scale_deg, np.radians(self.pa)
        return np.array([[-s * np.cos(r), -s * np.sin(r)], [-s * np.sin(r), s * np.cos(r)]])

    def pixel_to_plane(self) -> np.ndarray:
        """3×3 affine: homogeneous pixel -> (xi, eta, 1) in radians of tangent plane."""
        m = np.eye(3)
        cd = np.radians(self.cd())
        m[:2, :2] = cd
        m[:2, 2] = -cd @ np.asarray(self.crpix, float)
        return m

    # -- conversions ----------------------------------------------------------------
    def to_pixel(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        """Sky (deg) -> 0-based pixel (x, y); NaN behind the tangent plane."""
        v = unit_vector(np.asarray(ra, float), np.asarray(dec, float))
        p = v @ self.basis()  # (..., 3): east, north, centre components
        w = p[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            plane = np.stack([p[..., 0] / w, p[..., 1] / w, np.ones_like(w)], axis=-1)
            pix = plane @ np.linalg.inv(self.pixel_to_plane()).T
            bad = w <= 0
            x = np.where(bad, np.nan, pix[..., 0])
            y = np.where(bad, np.nan, pix[..., 1])
        return x, y

    def to_sky(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel -> sky (deg)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        plane = np.stack([x, y, np.ones_like(x)], axis=-1) @ self.pixel_to_plane().T
        v = plane @ self.basis().T
        ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
        dec = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
        return ra, dec

    def homography_to(self, other: TangentFrame) -> np.ndarray:
        """3×3 matrix mapping homogeneous pixels of ``self`` to pixels of ``other``."""
        return (
            np.linalg.inv(other.pixel_to_plane())
            @ other.basis().T
            @ self.basis()
            @ self.pixel_to_plane()
        )

    def wcs(self) -> WCS:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [self.ra0, self.dec0]
        w.wcs.crpix = [self.crpix[0] + 1.0, self.crpix[1] + 1.0]
        w.wcs.cd = self.cd()
        w.wcs.radesys = "FK5"
        w.wcs.equinox = 2000.0
        return w

    def wcs_header(self) -> dict:
        """FITS WCS keywords with a CD matrix (the form of MMODA mosaics)."""
        cd = self.cd()
        return {
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "deg", "CUNIT2": "deg",
            "CRVAL1": float(self.ra0), "CRVAL2": float(self.dec0),
            "CRPIX1": float(self.crpix[0] + 1.0), "CRPIX2": float(self.crpix[1] + 1.0),
            "CD1_1": float(cd[0, 0]), "CD1_2": float(cd[0, 1]),
            "CD2_1": float(cd[1, 0]), "CD2_2": float(cd[1, 1]),
            "RADESYS": "FK5", "EQUINOX": 2000.0,
        }

    def separation_deg(self, ra, dec) -> np.ndarray:
        """Angular distance of (ra, dec) from the tangent point, degrees."""
        c = unit_vector(self.ra0, self.dec0)
        return np.degrees(np.arccos(np.clip(unit_vector(ra, dec) @ c, -1.0, 1.0)))
