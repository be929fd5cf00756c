# ruff: noqa: E501  (report lines read better unbroken)
"""A working day of the county, replayed at 10× its real rate against a running server; prints
p50/p95 per endpoint, errors and how late the replay fell behind its timetable.

    .venv/bin/python bench/replay.py [--rate 10] [--window 08:00-18:00] [--database NAME]
                                     [--template geoservice_demo100 | --scale 1] [--model gthread:2x4]

The day (08:00–18:00 local) is built from the county's own figures: reports per day and
workflow transitions per day are the averages of its last 28 days of data; every leader account
opens the rankings around 9:00 (the morning meeting), looks at its tasks in the field app and
records its patrol visits through the day, and opens the map twice (one items page and a dozen
tiles each); planners open the map and the rankings through the day too.
- reports: 12345 (integration token, no photo) in the share the data has, the rest by area-bound
  inspectors with one photo; placed inside the county;
- transitions through the closed loop with the accounts that may make them: the planner accepts
  (立案), dispatches (交办) and verifies (销号); each issue's own leader starts (开始整改) and
  reports the fix with a note and a photo (整改反馈);
- patrols: a daily patrol schedule on grids (created once by the planner), each leader's tasks of
  the day (GET tasks/mine), then a visit per task (正常, checked in at the place);
- map views: an items page of the viewport, then tiles of issues and grids at z14–15;
- rankings at 9:00: GET /api/rankings (leaders, this week) by every leader account within five
  minutes, and by units.
Events are sent at their timetable (open loop, 48 senders); `--window` replays part of the
day (bench/all.sh replays 08:50–09:20, the rankings peak, unless FULL_DAY=1). Besides the
latencies it prints the CPU per request of gunicorn, of its PostgreSQL backends and of the
replay client itself (all on the same cores).
"""

from __future__ import annotations

import argparse
import base64
import heapq
import io
import os
import queue
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_kit import (
    Client,
    CpuMeter,
    Server,
    Stats,
    WorkerModel,
    county_database,
    ensure_accounts,
    ensure_county,
    inside_points,
    percentile,
    print_endpoints,
    psql,
    target_line,
    tile_xy,
)

DAY_START, DAY_END = 8 * 3600, 18 * 3600


def hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60


def clock(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}"


def office_hours(rng: random.Random) -> int:
    """A moment of the working day: busy mornings (9–11), a lunch lull, busy afternoons."""
    while True:
        t = rng.choice([rng.gauss(10 * 3600, 3600), rng.gauss(15 * 3600, 4000)])
        if DAY_START <= t < DAY_END and not (12 * 3600 <= t < 13.5 * 3600 and rng.random() < 0.7):
            return int(t)


def tiny_jpeg() -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(out, "JPEG")
    return base64.b64encode(out.getvalue()).decode()


@dataclass(order=True)
class Event:
    at: float
    seq: int
    who: str = field(compare=False)  # token key
    label: str = field(compare=False)
    method: str = field(compare=False)
    path: str = field(compare=False)
    body: Any = field(compare=False, default=None)
    expected: tuple[int, ...] = field(compare=False, default=(200,))
    then: Any = field(compare=False, default=None)  # callable(status, data) → more events


class Day:
    """The timetable of one working day for this county."""

    def __init__(self, database: str, accounts, leader_ids: list[int], seed: int = 9):
        self.rng = random.Random(seed)
        self.events: list[Event] = []
        self.seq = 0
        self.db = database
        self.tokens: dict[str, str] = {
            "planner": accounts.planner,
            "admin": accounts.admin,
            "hotline": accounts.hotline,
            **{f"inspector{i}": t for i, t in enumerate(accounts.inspectors)},
            **{f"leader{lid}": t for t, lid in accounts.leaders},
        }
        self.inspectors = [f"inspector{i}" for i in range(len(accounts.inspectors))]
        self.leaders = leader_ids
        self.points = inside_points(database, 2000)
        self.photo = tiny_jpeg()
        figures = psql(
            database,
            "WITH last AS (SELECT max(reported_at) AS m FROM issues WHERE reported_at < current_date)"
            " SELECT (SELECT count(*) FROM issues, last WHERE reported_at > m - interval '28 days' AND reported_at <= m) / 28.0,"
            " (SELECT count(*) FROM issue_events, last WHERE at > m - interval '28 days' AND at <= m AND from_status IS NOT NULL) / 28.0,"
            " (SELECT count(*) FILTER (WHERE source = '12345热线') / greatest(count(*), 1)::float FROM issues)",
        ).split("|")
        self.reports_per_day = round(float(figures[0]))
        self.transitions_per_day = round(float(figures[1]))
        self.hotline_share = float(figures[2])

    def add(
        self,
        at: float,
        who: str,
        label: str,
        method: str,
        path: str,
        body=None,
        expected=(200,),
        then=None,
    ) -> None:
        self.seq += 1
        self.events.append(Event(at, self.seq, who, label, method, path, body, expected, then))

    def build(self) -> None:
        rng = self.rng
        for _ in range(self.reports_per_day):
            lon, lat = rng.choice(self.points)
            hotline = rng.random() < self.hotline_share
            body = {
                "lon": round(lon, 6),
                "lat": round(lat, 6),
                "category": rng.choice(
                    ["环境卫生", "垃圾外溢", "道路破损", "车辆违停", "占道经营"]
                ),
                "source": "12345热线" if hotline else "暗访督查",
                "description": "市民来电反映" if hotline else "现场发现",
                "photos": [] if hotline else [self.photo],
            }
            who = "hotline" if hotline else rng.choice(self.inspectors)
            label = "POST report (12345)" if hotline else "POST report (field, photo)"
            self.add(
                office_hours(rng), who, label, "POST", "/api/collections/issues/items", body, (201,)
            )
        self.transitions()
        for lid in self.leaders:
            who = f"leader{lid}"
            self.add(
                hhmm("08:58") + rng.uniform(0, 420),
                who,
                "GET rankings (9:00)",
                "GET",
                "/api/rankings?of=leader&period=week",
            )
            self.add(
                rng.uniform(hhmm("08:00"), hhmm("09:30")),
                who,
                "GET tasks/mine",
                "GET",
                "/api/fieldwork/tasks/mine",
                then=self.visits(who),
            )
            for _ in range(2):
                self.map_view(office_hours(rng), who)
        for _ in range(max(10, len(self.leaders) // 10)):
            self.add(
                hhmm("08:58") + rng.uniform(0, 420),
                "planner",
                "GET rankings (9:00)",
                "GET",
                "/api/rankings?of=unit&period=week",
            )
            self.map_view(office_hours(rng), "planner")
            self.add(
                office_hours(rng),
                "admin",
                "GET rankings (day)",
                "GET",
                "/api/rankings?of=leader&period=month",
            )

    def map_view(self, at: float, who: str) -> None:
        lon, lat = self.rng.choice(self.points)
        d = 0.006
        self.add(
            at,
            who,
            "GET map items (viewport)",
            "GET",
            f"/api/collections/issues/items?bbox={lon - d:.5f},{lat - d:.5f},{lon + d:.5f},{lat + d:.5f}&limit=500",
        )
        for z in (14, 15):
            cx, cy = tile_xy(lon, lat, z)
            for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1), (-1, 0), (0, -1)):
                layer = "issues" if (dx + dy) % 2 == 0 else "grids"
                self.add(
                    at + 0.3,
                    who,
                    f"GET map tile {layer}",
                    "GET",
                    f"/api/collections/{layer}/tiles/{z}/{cx + dx}/{cy + dy}.pbf",
                )

    def visits(self, who: str):
        def then(
            status: int, data: bytes, at: float
        ) -> list[tuple[float, str, str, str, str, Any, tuple[int, ...]]]:
            import json

            if status != 200:
                return []
            out = []
            for task in json.loads(data).get("tasks", [])[:3]:
                if task.get("visited") or task.get("visit_id") or task.get("visit"):
                    continue
                lonlat = task.get("lon"), task.get("lat")
                body = {
                    "task_id": task["id"],
                    "outcome": "ok",
                    "idempotency_key": f"bench-{task['id']}-{self.seq}",
                }
                if all(v is not None for v in lonlat):
                    body.update(lon=lonlat[0], lat=lonlat[1])
                out.append(
                    (
                        office_hours(self.rng),
                        who,
                        "POST patrol visit",
                        "POST",
                        "/api/fieldwork/visits",
                        body,
                        (201, 200),
                    )
                )
            return out

        return then

    def transitions(self) -> None:
        """The day's workflow moves over issues picked from the current queue."""
        per_kind = max(1, self.transitions_per_day // 5)
        leaders = ",".join(str(i) for i in self.leaders) or "0"

        def pick(where: str) -> list[tuple[int, int | None]]:
            rows = psql(
                self.db,
                f"SELECT id, leader_id FROM issues WHERE {where} ORDER BY id DESC LIMIT {per_kind}",
            )
            return [
                (int(a), int(b) if b else None)
                for a, b in (r.split("|") for r in rows.splitlines() if r)
            ]

        moves = [
            ("status = 'reported'", "planner", "accepted", {}),
            ("status = 'accepted' AND leader_id IS NOT NULL", "planner", "dispatched", {}),
            (f"status = 'dispatched' AND leader_id IN ({leaders})", None, "in_progress", {}),
            (
                f"status = 'in_progress' AND leader_id IN ({leaders})",
                None,
                "fixed",
                {"note": "已整改", "photos": [self.photo]},
            ),
            ("status = 'fixed'", "planner", "closed", {}),
        ]
        labels = {
            "accepted": "立案 accept",
            "dispatched": "交办 dispatch",
            "in_progress": "开始整改 start",
            "fixed": "整改反馈 fix (photo)",
            "closed": "销号 verify",
        }
        for where, who, to, extra in moves:
            for issue_id, leader_id in pick(where):
                actor = who or f"leader{leader_id}"
                self.add(
                    office_hours(self.rng),
                    actor,
                    f"POST transition {labels[to]}",
                    "POST",
                    f"/api/issues/{issue_id}/transitions",
                    {"to": to, **extra},
                )


def ensure_patrol_schedule(port: int, planner: str) -> None:
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {planner}", "Content-Type": "application/json"}
    role = "网格长"
    body = json.dumps({"layer": "grid", "role": role, "period": "day", "times": 1})
    conn.request("POST", "/api/fieldwork/schedules", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status not in (201, 409):
        print(f"  (patrol schedule not created: {response.status})")
    conn.close()


def replay(
    day: Day, port: int, rate: float, window: tuple[int, int], senders: int = 48
) -> tuple[Stats, float, float, int]:
    stats = Stats()
    heap = [e for e in day.events if window[0] <= e.at < window[1]]
    heapq.heapify(heap)
    total = len(heap)
    lock = threading.Lock()
    work: queue.Queue = queue.Queue()
    lags: list[float] = []
    local = threading.local()
    start = time.perf_counter()

    def due(at: float) -> float:
        return start + (at - window[0]) / rate

    def sender() -> None:
        while True:
            event = work.get()
            if event is None:
                return
            clients = getattr(local, "clients", None)
            if clients is None:
                clients = local.clients = {}
            client = clients.get(event.who)
            if client is None:
                client = clients[event.who] = Client(port, day.tokens[event.who], stats)
            lags.append(max(0.0, time.perf_counter() - due(event.at)))
            try:
                status, data = client.request(
                    event.label, event.method, event.path, event.body, event.expected
                )
            except OSError as exc:
                stats.add(event.label, 0.0, 599, event.expected, repr(exc).encode())
                work.task_done()
                continue
            if event.then is not None:
                for at, who, label, method, path, body, expected in event.then(
                    status, data, event.at
                ):
                    if window[0] <= at < window[1]:
                        with lock:
                            day.seq += 1
                            heapq.heappush(
                                heap,
                                Event(
                                    max(at, event.at + 1),
                                    day.seq,
                                    who,
                                    label,
                                    method,
                                    path,
                                    body,
                                    expected,
                                ),
                            )
            work.task_done()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    while True:
        with lock:
            event = heapq.heappop(heap) if heap else None
        if event is None:
            if work.unfinished_tasks == 0 and work.empty():
                time.sleep(0.5)
                with lock:
                    if not heap:
                        break
            time.sleep(0.05)
            continue
        wait = due(event.at) - time.perf_counter()
        if wait > 0:
            time.sleep(min(wait, 0.5))
            if wait > 0.5:
                with lock:
                    heapq.heappush(heap, event)
                continue
        work.put(event)
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - start
    return stats, elapsed, percentile(lags, 95) * 1000 if lags else 0.0, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument(
        "--window", default="08:00-18:00", help="part of the day to replay (local HH:MM-HH:MM)"
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("LOAD_DATABASE") or None,
        help="default: $LOAD_DATABASE, else see above",
    )
    parser.add_argument("--template", default=None)
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument(
        "--leaders", type=int, default=300, help="leader accounts (those with the most open issues)"
    )
    parser.add_argument("--model", default="gthread:2x4")
    parser.add_argument("--port", type=int, default=5193)
    args = parser.parse_args()

    name, template = county_database(args.database, args.template, args.scale)
    url = ensure_county(name, args.scale, template)
    leader_ids = [
        int(v)
        for v in psql(
            name,
            "SELECT leader_id FROM issues WHERE status IN ('dispatched', 'in_progress') AND leader_id IS NOT NULL"
            f" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {args.leaders}",
        ).split()
    ]
    accounts = ensure_accounts(url, leader_ids=leader_ids)
    window = tuple(hhmm(t) for t in args.window.split("-"))
    model = WorkerModel.parse(args.model)
    with Server(url, args.port, model) as server:
        ensure_patrol_schedule(args.port, accounts.planner)
        day = Day(name, accounts, leader_ids)
        day.build()
        in_window = sum(1 for e in day.events if window[0] <= e.at < window[1])
        print(
            f"day replay on {name}: {day.reports_per_day} reports, {day.transitions_per_day} transitions a day"
            f" ({len(day.events)} requests planned, {in_window} in {clock(window[0])}–{clock(window[1])}),"
            f" {len(leader_ids)} leader accounts; {args.rate:g}× real rate ({(window[1] - window[0]) / args.rate / 60:.1f} min); {model.label}",
            flush=True,
        )
        meter = CpuMeter(server, name)
        meter.start()
        client0 = time.process_time()
        stats, elapsed, lag95, _ = replay(day, args.port, args.rate, window)
        cpu_app, cpu_db = meter.stop()
        cpu_client = time.process_time() - client0
    times = stats.all_times()
    errors = sum(stats.errors.values())
    print(
        f"\nreplayed {stats.count()} requests in {elapsed:.0f} s ({stats.count() / elapsed:.1f}/s):"
        f" p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms, errors {errors},"
        f" p95 lateness against the timetable {lag95:.0f} ms  (load {os.getloadavg()[0]:.2f})"
    )
    n = max(1, stats.count())
    print(
        f"  CPU per request: app {cpu_app / n * 1000:.1f} ms + database {cpu_db / n * 1000:.1f} ms"
        f" (this replay client {cpu_client / n * 1000:.1f} ms, on the same cores);"
        f" {(cpu_app + cpu_db + cpu_client) / elapsed:.2f} of {os.cpu_count()} cores busy with them"
    )
    print_endpoints(stats)
    for label in sorted(stats.times):
        slug = "replay_p95_" + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
        target_line(
            slug, percentile(stats.times[label], 95), "ms", "-", f"n={len(stats.times[label])}"
        )
    target_line("replay_errors", errors, "errors", "<=0")


if __name__ == "__main__":
    main()
