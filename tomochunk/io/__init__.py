"""Readers of raw scans and the Zarr store layout."""
