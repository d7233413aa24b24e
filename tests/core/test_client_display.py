"""Products print as what they are (name, kind, shapes, units), never as bytes; Jupyter shows the preview."""

from astropy.io import fits

from mmoda_ext.client import FetchedProduct, progress_text


def test_repr_and_html_of_a_real_mosaic(isgri_run):
    _, out = isgri_run
    hdul = fits.HDUList([h.copy() for h in fits.open(out / "isgri_image_mosaic.fits")])
    png = (out / "isgri_image_mosaic.png").read_bytes()
    prod = FetchedProduct("mosaic", "isgri_mosaic", {}, hdul, png)
    text = repr([prod])
    assert "\\x89PNG" not in text and "b'" not in text and len(text) < 2000
    assert "<FetchedProduct 'mosaic' (isgri_mosaic)" in text and f"{len(hdul)} HDUs" in text
    img = [h for h in hdul if h.data is not None and h.data.ndim == 2][0]
    shape = "x".join(str(n) for n in img.data.shape)
    assert f"{shape} [{img.header['BUNIT']}]" in text  # shape and units of the images
    html = prod._repr_html_()
    assert '<img src="data:image/png;base64,' in html and shape in html


def test_progress_words_are_never_repeated():
    assert progress_text({"status": "submitted", "message": "submitted"}) == "submitted"
    assert progress_text({"status": "done", "message": "done"}) == "done"
    assert progress_text({"status": "progress", "message": "starting Dask workers"}) == "running: starting Dask workers"
    assert progress_text({"status": "failed", "message": ""}) == "failed"
