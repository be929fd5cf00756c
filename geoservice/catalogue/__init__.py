"""The catalogue: the OGC collections (every layer + issues) and what reads and writes features.

Owns the collections (catalogue.py: SQL, filters, properties; built once by create_app), items
pages and exports' rows (items.py), vector tiles (tiles.py) and tile arithmetic (tilegrid.py),
checks of features to write (validation.py), writing them (editing.py), file import
(importers.py, which opens files with an allowed GDAL driver only: gdal_open.py, and flags
mojibake: garbled.py) and export (exporters.py).

May import: accounts and plumbing. It names the service area (areas) only as a type: callers
hand it over. Contracts: .importlinter.
"""
