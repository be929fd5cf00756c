"""Helpers the edges (api, web, cli) share, so that the edges never import each other: who may
read and write a collection and the catalogue create_app built (access.py), query-string
parsing (params.py), the issues collection as the edges see it (issues.py), rankings requests
and payloads (rankings.py), 包保 access rules and the roster upload (responsibility.py).

Flask is welcome here (request, current_app); SQL is not, beyond calling a service.
May import: every domain package and plumbing; never api, web or cli. Contracts: .importlinter.
"""
