"""督查考核: reporting periods (periods.py), indicators, scores, ranks and scorecards
(ranking.py), the 通报 workbook (report.py), the published 红黑榜 (board.py) and the
工作台's figures (dashboard.py).

May import: citizens (群众满意率), issues, responsibility, areas, catalogue, accounts,
plumbing. Contracts: .importlinter.
"""
