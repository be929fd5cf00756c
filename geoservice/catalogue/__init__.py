"""The catalogue: the OGC collections and what reads and writes their features."""
