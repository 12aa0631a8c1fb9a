"""One blueprint package per API document."""
