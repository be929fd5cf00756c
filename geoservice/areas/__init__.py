"""Admin areas: levels and codes, area import, the hierarchy and the service area."""
