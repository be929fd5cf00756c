"""Admin areas: levels and codes (levels.py), importing areas from files (area_import.py), the
hierarchy 街道 → 社区 → 网格 and its decisions (hierarchy.py), the hierarchy audit
(hierarchy_audit.py) and the service area, the one definition of "where we serve"
(service_area.py).

May import: catalogue (the file reader), accounts, plumbing. Contracts: .importlinter.
"""
