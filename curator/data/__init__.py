"""Datasets in: reading sources, mapping fields, validating rows, the ingest stage."""
