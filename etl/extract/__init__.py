"""Extraction: run page chains concurrently and hand `Fetched` units to the loader."""
