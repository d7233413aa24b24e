"""Jobs: ids, the durable store, and running products on Dask."""
