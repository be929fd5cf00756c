"""Demo-county generator speed: build time per scale and the issue stream's rate.

.venv/bin/python bench/demo_generator.py [--scales 1 10 100]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

from geoservice.demo import generate_county


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--issues", type=int, default=200_000, help="issues to stream per scale")
    args = parser.parse_args()
    print(f"{'scale':>6} {'build s':>8} {'grids':>7} {'roads':>6} {'issues/s':>9}")
    for scale in args.scales:
        t0 = time.perf_counter()
        county = generate_county(seed=1, scale=scale, today=date(2026, 11, 20))
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = 0
        for n, _issue in enumerate(county.issues(), 1):
            if n >= args.issues:
                break
        rate = n / (time.perf_counter() - t0)
        grids, roads = len(county.features["grid"]), len(county.features["road"])
        print(f"{scale:>6g} {built:>8.2f} {grids:>7} {roads:>6} {rate:>9.0f}")


if __name__ == "__main__":
    main()
