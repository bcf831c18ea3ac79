#!/usr/bin/env python
"""Benchmark: a typical 3-clause rule condition evaluated against one record dict.

Compares, in the same process and run:
  (a) simpleeval called plainly: EvalWithCompoundTypes(names=record).eval(source), as
      simple_eval() does (its default SimpleEval lacks list literals) -- parse every time
  (b) simpleeval.EvalWithCompoundTypes with a reused parsed AST   -- parse once
  (c) zhongshu's compiled closures (compile_expression(...).evaluate)
  (d) CPython compile() + eval() of the same source               -- unsafe ceiling

Each figure is the median of 5 timed runs (evaluations per second). Prints a table, the
ratios of ours vs each other, and with --json one JSON line. Not a test; takes < 60 s.

    .venv/bin/python bench/bench_expressions.py [--json] [--seconds 0.4]
"""
from __future__ import annotations

import argparse
import json
import platform as _platform
import statistics
import sys
import time
from decimal import Decimal

import simpleeval

from zhongshu.runtime.expressions import EvalContext, FieldInfo, Schema, compile_expression

SOURCE = "amount > 300 and status == '已付款' and channel in ['抖音', '天猫']"
SCHEMA = Schema({
    "amount": FieldInfo("currency"),
    "status": FieldInfo("single_select", options=["待付款", "已付款", "已发货"]),
    "channel": FieldInfo("single_select", options=["抖音", "天猫", "京东"]),
    "order_no": FieldInfo("text"),
})
RECORD = {"amount": Decimal("399.00"), "status": "已付款", "channel": "天猫", "order_no": "SO-1001"}


def _rate(fn, seconds: float) -> float:
    """Evaluations per second of fn(), timing batches for about `seconds`."""
    n = 1000
    while True:                                   # calibrate the batch size
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= seconds / 4 or n >= 10_000_000:
            break
        n *= 2
    n = max(1, int(n * seconds / max(dt, 1e-9)))
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def _median_rate(fn, seconds: float, runs: int = 5) -> float:
    return statistics.median(_rate(fn, seconds) for _ in range(runs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    ap.add_argument("--seconds", type=float, default=0.4, help="seconds per timed run (default 0.4)")
    args = ap.parse_args(argv)

    record = dict(RECORD)
    ctx = EvalContext()

    # (a) simpleeval, called plainly. simple_eval() builds a SimpleEval, which has no list
    # literals, so the plain call uses the compound-types evaluator the same way
    # simple_eval does: a new evaluator and a fresh parse per call.
    def plain():
        return simpleeval.EvalWithCompoundTypes(names=record).eval(SOURCE)

    # (b) simpleeval, parse once
    se = simpleeval.EvalWithCompoundTypes(names=record)
    parsed = se.parse(SOURCE)

    def reused():
        return se.eval(SOURCE, previously_parsed=parsed)

    # (c) ours
    expr = compile_expression(SOURCE, SCHEMA)

    def ours():
        return expr.evaluate(record, ctx)

    # (d) CPython, unsafe ceiling
    code = compile(SOURCE, "<bench>", "eval")
    env = {"__builtins__": {}}

    def cpython():
        return eval(code, env, record)  # noqa: S307 - trusted constant source, for comparison only

    results = [f() for f in (plain, reused, ours, cpython)]
    assert all(r is True for r in results), results

    rates = {}
    for name, f in (("simpleeval_plain", plain), ("simpleeval_reused_parse", reused),
                    ("zhongshu", ours), ("cpython_eval", cpython)):
        rates[name] = _median_rate(f, args.seconds)

    ours_rate = rates["zhongshu"]
    ratios = {f"zhongshu_vs_{k}": ours_rate / v for k, v in rates.items() if k != "zhongshu"}

    print(f"expression: {SOURCE}")
    print(f"python {sys.version.split()[0]} on {_platform.machine()}, median of 5 runs x {args.seconds}s\n")
    labels = {"simpleeval_plain": "(a) simpleeval, plain call (parse each time)",
              "simpleeval_reused_parse": "(b) simpleeval EvalWithCompoundTypes, reused parse",
              "zhongshu": "(c) zhongshu compiled closures",
              "cpython_eval": "(d) CPython compile()+eval() (unsafe ceiling)"}
    for k, v in rates.items():
        print(f"  {labels[k]:<55} {v:>12,.0f} evals/s  {1e6 / v:8.2f} us/eval")
    print()
    for k, v in ratios.items():
        print(f"  ours / {k.removeprefix('zhongshu_vs_'):<24} {v:8.2f}x")
    goal = 500_000
    print(f"\n  goal >= {goal:,}/s on one core: {'met' if ours_rate >= goal else 'NOT met'} ({ours_rate:,.0f}/s)")
    if args.json:
        print(json.dumps({"expression": SOURCE, "python": sys.version.split()[0],
                          "evals_per_second": {k: round(v) for k, v in rates.items()},
                          "ratios": {k: round(v, 3) for k, v in ratios.items()},
                          "goal_met": ours_rate >= goal}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
