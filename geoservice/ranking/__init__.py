"""督查考核: reporting periods (periods.py), indicators, scores, ranks and scorecards
(ranking.py), the 通报 workbook (report.py) and the 工作台's figures (dashboard.py).

May import: issues, responsibility, areas, catalogue, accounts, plumbing. Contracts:
.importlinter.
"""
