"""One module per DVC stage; shared building blocks live in :mod:`stages.core`."""
