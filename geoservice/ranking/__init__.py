"""督查考核: reporting periods (periods.py), indicators, scores, ranks and scorecards
(ranking.py), drill-down (drilldown.py), charts and scorecards (cards.py), the 通报 workbook
(report.py) and its frozen publications (publications.py), rules as data in force per period
(vocabularies.py), the published 红黑榜 (board.py) and the 工作台's figures (dashboard.py).

May import: citizens (群众满意率), issues, responsibility, areas, catalogue, accounts,
plumbing. Contracts: .importlinter.
"""
