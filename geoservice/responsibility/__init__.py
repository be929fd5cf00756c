"""包保: units, leaders and assignments with history (responsibility.py, leaders.py), the value
checks of names, phones and instants (values.py), the Excel roster in and out (roster.py,
roster_export.py, roster_template.py), 我的包保 (myareas.py) and the coverage audit
面上有网、网上有点、点上有人 (coverage.py).

May import: areas, catalogue, accounts, plumbing — not issues (the two are independent: issues
record who was responsible through attribution's own SQL). Contracts: .importlinter.
"""
