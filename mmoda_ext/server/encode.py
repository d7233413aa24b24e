"""Products in the ``oda_api`` 1.3.5 wire encoding (dispatcher-protocol.md §8).

A job's products are FITS/PNG files described by a :class:`ProductSet`; this module turns
them into the JSON the real client decodes into its own classes (``NumpyDataProduct``,
``ApiCatalog``, ``ODAAstropyTable``, ``PictureProduct``, ``BinaryProduct``,
``TextLikeProduct``), without importing ``oda_api`` (the server does not need it).

How a :class:`ProductFile` is encoded is chosen by ``meta["oda_encoding"]``:

``numpy`` (default for FITS)
    one ``NumpyDataProduct`` with a data unit per HDU (pickled, as the dispatcher does);
    ``meta["oda_name"]`` and ``meta["oda_meta"]`` give its ``name`` and ``meta_data``
    (defaults follow MMODA's names by product kind, see :func:`oda_identity`).
``catalog`` (default for kinds ending in ``catalog``)
    the dispatcher's ``catalog`` object, built from the first FITS table.
``table``
    ``astropy_table_product_ascii_list`` (ECSV text) from the first FITS table.
``picture``, ``binary``, ``text``
    the PNG (or the file) as ``PictureProduct`` / ``BinaryProduct``; ``text`` sends
    ``meta["value"]``.
``binary_data``
    the product's file (``fits``, whatever its format) as a legacy ``BinaryData`` (bare urlsafe base64; the client
    decodes it to ``bytes``), as MMODA's POLAR plugin sends its ROOT file.

Two client hazards are handled here: no NaN/Infinity anywhere (:func:`json_safe`), and no
substring ``null`` inside base64 payloads (the client rewrites it to ``None``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..instruments.base import ProductFile, ProductSet

__all__ = [
    "b64_pickle",
    "catalog_dict",
    "encode_products",
    "json_safe",
    "numpy_data_product",
    "numpy_data_unit",
    "picture_product",
    "binary_product",
    "table_product",
]

log = logging.getLogger(__name__)

_HDU_TYPES = ((fits.PrimaryHDU, "primary"), (fits.ImageHDU, "image"),
              (fits.BinTableHDU, "bintable"), (fits.TableHDU, "table"))


def json_safe(obj: Any) -> Any:
    """A JSON-friendly copy: numpy scalars to Python, NaN and ±Infinity to ``None``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, Path):
        return obj.name
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _null_free(text: str) -> bool:
    return "null" not in text


def b64_pickle(obj: Any) -> str:
    """Base64 of a pickle, free of the substring ``null``.

    ``N0`` (push None, pop) is a pickle no-op; one or two of them in front shift the base64
    alignment, so one of the three variants avoids ``null`` in practice.
    """
    raw = pickle.dumps(obj, protocol=4)
    text = ""
    for prefix in (b"", b"N0", b"N0N0", b"N0N0N0N0"):
        text = base64.b64encode(prefix + raw).decode()
        if _null_free(text):
            return text
    log.warning("could not avoid 'null' in a base64 payload of %d bytes", len(raw))
    return text


def _header_dict(header: fits.Header) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in header.items():
        if key in ("COMMENT", "HISTORY", "") or isinstance(value, fits.card.Undefined):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue  # the client could not decode NaN; a missing keyword is honest
        out[key] = json_safe(value)
    return out


def _hdu_type(hdu) -> str | None:
    for cls, name in _HDU_TYPES:
        if isinstance(hdu, cls):
            return name
    return None


def numpy_data_unit(hdu, name: str | None = None, meta_data: dict | None = None) -> dict:
    """One ``NumpyDataUnit.encode(use_pickle=True)`` dict for a FITS HDU."""
    data = hdu.data
    dt = None
    binarys = None
    if data is not None:
        arr = data if isinstance(data, fits.FITS_rec) else np.asarray(data)
        dt = str(np.asarray(arr).dtype)
        binarys = b64_pickle(arr)
    return {
        "data": None,
        "dt": dt,
        "name": name or hdu.name or "table",
        "header": _header_dict(hdu.header),
        "binarys": binarys,
        "meta_data": json_safe(meta_data or {}),
        "hdu_type": _hdu_type(hdu),
        "units_dict": None,
    }


def array_data_unit(array: np.ndarray, name: str = "table", meta_data: dict | None = None,
                    hdu_type: str | None = None) -> dict:
    """A data unit for a bare array (e.g. ``input_param_scw_list``)."""
    return {
        "data": None, "dt": str(array.dtype), "name": name, "header": {},
        "binarys": b64_pickle(np.asarray(array)), "meta_data": json_safe(meta_data or {}),
        "hdu_type": hdu_type, "units_dict": None,
    }


def numpy_data_product(path: Path, name: str | None, meta_data: dict) -> dict:
    """``NumpyDataProduct.encode()`` of a FITS file: one data unit per HDU."""
    with fits.open(path, memmap=False) as hdul:
        hdul.verify("silentfix")
        units = [numpy_data_unit(hdu) for hdu in hdul]
    return {"data_unit_list": units, "name": name, "meta_data": json.dumps(json_safe(meta_data))}


def _first_table(path: Path) -> Table:
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                return Table.read(hdu)
    raise ValueError(f"{path.name} holds no table")


#: OSA source-list columns -> the dispatcher catalog's names
_CATALOG_RENAMES = {
    "NAME": "src_names", "RA_FIN": "ra", "DEC_FIN": "dec", "RA_OBJ": "ra", "DEC_OBJ": "dec",
    "RA": "ra", "DEC": "dec", "DETSIG": "significance",
}


#: the columns of MMODA's catalogue object, in order (users ``add_row`` 9 values to it)
MMODA_CATALOG_COLUMNS = ("meta_ID", "src_names", "significance", "ra", "dec", "NEW_SOURCE",
                         "ISGRI_FLAG", "FLAG", "ERR_RAD")


def catalog_dict(table: Table, frame: str = "fk5") -> dict:
    """The dispatcher's ``catalog`` JSON (``ApiCatalog``): columns as lists, NaN as null.

    A source list with MMODA's columns is cut to exactly those nine (extra columns such as
    FLUX stay in the FITS catalogue file), so that a user's ``add_row`` of 9 values works.
    """
    table = Table(table, copy=True)
    for old, new in _CATALOG_RENAMES.items():
        if old in table.colnames and new not in table.colnames:
            table.rename_column(old, new)
    if "meta_ID" not in table.colnames:
        table.add_column(np.arange(len(table), dtype=np.int64), name="meta_ID", index=0)
    if set(MMODA_CATALOG_COLUMNS) <= set(table.colnames):
        table = table[list(MMODA_CATALOG_COLUMNS)]
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind == "S":
            table[name] = np.char.decode(np.asarray(col), "ascii").astype(str)
        elif col.ndim > 1:
            table.remove_column(name)
    columns = [[json_safe(v) for v in table[c].tolist()] for c in table.colnames]
    return {
        "cat_frame": frame,
        "cat_coord_units": "deg",
        "cat_column_list": columns,
        "cat_column_names": list(table.colnames),
        "cat_column_descr": [[n, d] for n, d in table.as_array().dtype.descr],
        "cat_lat_name": "dec",
        "cat_lon_name": "ra",
    }


def table_product(table: Table, name: str | None, meta_data: dict) -> dict:
    """``ODAAstropyTable.encode(use_binary=False)``: ECSV text.

    The client keeps this ``meta_data`` as a string and then tests ``"product" in it`` and
    indexes it (a crash), so the text must not contain ``product`` nor ``src_name``.
    """
    buf = io.StringIO()
    table.write(buf, format="ascii.ecsv")
    text = json.dumps(json_safe(meta_data))
    if "product" in text or "src_name" in text:
        text = json.dumps({k: v for k, v in json_safe(meta_data).items()
                           if "product" not in json.dumps([k, v]) and "src_name" not in json.dumps([k, v])})
    return {"ascii": buf.getvalue(), "binary": None, "name": name, "meta_data": text}


def _png_with_padding(data: bytes, pad: int) -> bytes:
    """Insert a tEXt chunk after IHDR: same image, shifted base64 alignment."""
    text = b"Comment\x00" + b"." * pad
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text) & 0xFFFFFFFF)
    return data[:33] + chunk + data[33:]


def picture_product(data: bytes, name: str | None, metadata: dict, filename: str | None = None) -> dict:
    """``PictureProduct.encode()`` (urlsafe base64), ``null``-free for PNG files."""
    b64 = base64.urlsafe_b64encode(data).decode()
    if not _null_free(b64) and data.startswith(b"\x89PNG"):
        for pad in range(1, 7):
            candidate = base64.urlsafe_b64encode(_png_with_padding(data, pad)).decode()
            if _null_free(candidate):
                b64 = candidate
                break
    out = {"img_type": "png" if data.startswith(b"\x89PNG") else "jpg", "b64data": b64,
           "metadata": json_safe(metadata), "name": name}
    if filename:
        out["filename"] = filename
    return out


def binary_product(data: bytes, name: str | None) -> dict:
    """``BinaryProduct.encode()``: urlsafe base64 plus the md5 the client checks."""
    return {"name": name, "data": base64.urlsafe_b64encode(data).decode(),
            "md5": hashlib.md5(data).hexdigest()}


#: light-curve meta keys MMODA sends (``plot_tools.OdaLightCurve`` reads them)
_LC_META = ("src_name", "time_bin", "time", "rate", "rate_err")


def oda_identity(pf: ProductFile, instrument: str) -> tuple[str, str | None, dict]:
    """(encoding, name, meta_data) of a product, following MMODA's conventions.

    Explicit ``meta["oda_encoding"]``, ``meta["oda_name"]``, ``meta["oda_meta"]`` win. Otherwise
    the product kind decides, so that the client's attribute names are MMODA's:
    ``mosaic_image_0_mosaic``, ``dispatcher_catalog_1``, ``isgri_spectrum_0_Crab_isgri_spectrum``
    (spectra carry no name, so the client names them after the request),
    ``isgri_lc_0_Crab``, ``spi_acs_lc_0_query``.
    """
    kind = pf.kind
    src = pf.meta.get("src_name")
    if kind.endswith("catalog"):
        enc, name, meta = "catalog", "dispatcher_catalog", {}
    elif kind.endswith("mosaic"):
        enc, name, meta = "numpy", "mosaic_image", {"product": "mosaic", "instrument": instrument, "src_name": ""}
    elif kind.endswith(("_spectrum", "_arf", "_rmf")) and instrument in ("isgri", "jemx"):
        # no name, as MMODA: the client names them after the request (isgri_spectrum_0_Crab_...),
        # and new_from_metadata(...).save_all_data() writes prod_0_Crab_isgri_spectrum.fits
        enc, name = "numpy", None
        meta = {"product": kind, "src_name": str(src or "")}
    elif kind.endswith("_lc"):
        enc, name = "numpy", kind
        meta = {k: pf.meta[k] for k in _LC_META if k in pf.meta}
    elif "table_name" in pf.meta or "ecsv" in pf.meta:
        enc, name, meta = "table", pf.meta.get("table_name", pf.name), dict(pf.meta.get("meta_data") or {})
    elif pf.fits is not None:
        enc, name = "numpy", pf.name
        meta = {"product": kind, "instrument": instrument}
        if src is not None:
            meta["src_name"] = str(src)
    elif pf.png is not None:
        enc, name, meta = "picture", pf.name, {"product": kind}
    else:
        enc, name, meta = "text", pf.name, {"product": kind}
    return (str(pf.meta.get("oda_encoding", enc)), pf.meta.get("oda_name", name),
            pf.meta.get("oda_meta", meta))


def encode_products(products: ProductSet, instrument: str, product: str) -> dict[str, Any]:
    """All products of a job as the ``products`` object of a ``done`` answer."""
    out: dict[str, Any] = {}

    def add(key: str, value: Any) -> None:
        out.setdefault(key, []).append(value)

    for pf in products.products:
        enc, name, meta = oda_identity(pf, instrument)
        if enc == "numpy" and pf.fits is not None:
            add("numpy_data_product_list", numpy_data_product(pf.fits, name, meta))
        elif enc == "catalog" and pf.fits is not None:
            out["catalog"] = catalog_dict(_first_table(pf.fits))
        elif enc == "table" and pf.fits is not None:
            add("astropy_table_product_ascii_list", table_product(_first_table(pf.fits), name, meta))
        elif enc == "picture" and pf.png is not None:
            add("binary_image_product_list",
                picture_product(pf.png.read_bytes(), name, meta, filename=pf.png.name))
        elif enc == "binary":
            path = pf.fits or pf.png or (Path(pf.meta["path"]) if pf.meta.get("path") else None)
            if path is not None:
                add("binary_data_product_list", binary_product(Path(path).read_bytes(), name))
        elif enc == "binary_data" and pf.fits is not None:  # legacy BinaryData: the bare base64 text
            add("binary_data_product_list", base64.urlsafe_b64encode(pf.fits.read_bytes()).decode())
        elif enc == "text":
            add("text_product_list", {"name": name, "value": json_safe(pf.meta.get("value", "")),
                                      "meta_data": json_safe(meta)})
    extra = products.meta or {}
    if "echo" in extra:
        out["echo"] = json_safe(extra["echo"])
    if "input_param_scw_list" in extra:
        scws = list(extra["input_param_scw_list"] or [])
        out["input_param_scw_list"] = {
            "data_unit_list": [array_data_unit(np.array([], dtype=np.float64), meta_data={"scw_list": scws})],
            "name": None, "meta_data": "{}",
        }
    for key, value in (extra.get("oda_api_extra") or {}).items():
        out[key] = json_safe(value)
    out["prod_process_message"] = "\n".join(products.messages)
    return out
