"""Where the test run's time goes, per test file (setup, call and teardown together): printed after
pytest's own slowest-tests list, so every CI log says which files to make faster. The whole run's
budget is in README (Testing)."""

from __future__ import annotations

from collections import defaultdict

import pytest

SHOWN = 15


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter) -> None:
    seconds: dict[str, float] = defaultdict(float)
    tests: dict[str, set[str]] = defaultdict(set)
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid, duration = getattr(report, "nodeid", ""), getattr(report, "duration", None)
            if not nodeid or duration is None or getattr(report, "when", None) is None:
                continue
            path = nodeid.split("::", 1)[0]
            seconds[path] += duration
            tests[path].add(nodeid)
    if not seconds:
        return
    total = sum(seconds.values())
    terminalreporter.write_sep("=", f"time per test file ({total / 60:.1f} min in tests)")
    for path, spent in sorted(seconds.items(), key=lambda item: -item[1])[:SHOWN]:
        terminalreporter.write_line(f"{spent:8.1f}s {100 * spent / total:5.1f}% {len(tests[path]):4d} tests  {path}")
