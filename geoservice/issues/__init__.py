"""Issues: report, attribution preview, relapse and duplicates (issues.py); the view of one
issue and the list rows (view.py); the unassigned and overdue queues, dispatch and
re-attribution (queues.py); which places and leader a point belongs to (attribution.py); the
state machine, roles and deadlines (workflow.py); photo checks and storage (photos.py); who
held an issue when (holder_history.py), 延期 and time limits (extensions.py), 退回/确权
(returns.py), attribution corrections (corrections.py), 条块 routing rules (routing_rules.py).

May import: areas, catalogue, accounts, plumbing — not responsibility (independent of each
other). Contracts: .importlinter.
"""
