"""Issues: report, attribution preview, queues, re-attribution, relapse and duplicates
(issues.py), which places and leader a point belongs to (attribution.py), the state machine,
roles and deadlines (workflow.py), photo checks and storage (photos.py).

May import: areas, catalogue, accounts, plumbing — not responsibility (independent of each
other). Contracts: .importlinter.
"""
