"""Issues: report, attribution preview, relapse and duplicates (issues.py); the view of one
issue and the list rows (view.py); the unassigned and overdue queues, dispatch and
re-attribution (queues.py); which places and leader a point belongs to (attribution.py); the
state machine, roles and deadlines (workflow.py); photo checks and storage (photos.py).

May import: areas, catalogue, accounts, plumbing — not responsibility (independent of each
other). Contracts: .importlinter.
"""
