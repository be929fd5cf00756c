"""Citizens: 随手拍 without an account, follow-up by ticket, 回访 and the public pages.

- `intake`     — a public report (the staff report service underneath, source 随手拍), its
                 ticket and private link, nearby-duplicate suggestions and "me too";
- `challenge`  — the offline proof-of-work a public write must carry (signed, single use);
- `followup`   — 回访 after 销号 (满意/基本满意/不满意), a planner's reopen decision, and the
                 群众满意率 figures the rankings read;
- `publish`    — what the public may see: the cached map/list, the 曝光台, approved photos,
                 positions rounded for sensitive issues;
- `settings`   — everything above reads from the configuration, as plain values.

Plain functions taking a session and plain values; no Flask. The edges are
geoservice/web/public.py (pages) and geoservice/api/public.py (JSON). The published 红黑榜
(snapshots of the rankings) is geoservice/ranking/board.py: the rankings read 群众满意率 from
here, so this package sits below ranking.

May import: issues, responsibility, areas, catalogue, accounts, plumbing; never ranking or an
edge. Contracts: .importlinter.
"""
