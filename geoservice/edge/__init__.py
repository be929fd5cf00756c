"""Helpers shared by the edges (api, web, cli)."""
