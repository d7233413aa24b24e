"""Archive: the only code that opens archive files or calls the archive service."""
