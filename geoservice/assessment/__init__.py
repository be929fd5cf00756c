"""点位 and 测评: site kinds as data, sites (a `places` subtype), the standards tree (测评体系),
mock-evaluation rounds (模拟测评), their results, scores and rankings.

models.py     tables (site_kinds, sites, standards …, rounds, results)
kinds.py      site kinds: CRUD, retiring, attribute definitions and validation
sites.py      sites: CRUD, 点位清单 .xlsx import/export, QR codes
catalogue.py  each active kind as an OGC collection (`site-<code>`), the sites' claims
standards.py  versions → 项目 → 内容 → 标准, .xlsx import/export, copying a version
rounds.py     rounds, reproducible sampling, result submission and corrections
scores.py     scores, 点位达标率, negative-list hits, trend, 后三名 and the line
demo.py       demo kinds, sites, an example standards tree and two past rounds

Services are plain functions taking a session; no Flask here. Its edges are api/assessment.py,
web/assessment.py and the sites branch of POST /api/collections/{id}/items (api/writes.py).

May import: issues, responsibility, areas, catalogue, accounts, plumbing; never ranking (which
puts its 测评 sheet into the 通报) or an edge. Contracts: .importlinter.
"""
