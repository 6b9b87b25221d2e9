"""One console line per finished job, shared by the sweep callback, the launchers and
``genbench-eval`` (a leaf module, so none of them imports another for it)."""

from __future__ import annotations

from typing import Any

__all__ = ["job_line"]


def job_line(result: dict[str, Any], number: Any = None) -> str:
    """One line: a finished job's status and headline numbers."""
    name = f"{result.get('solver')}-{result.get('dataset')}-s{result.get('seed')}"
    head = f"job {number}: " if number is not None else ""
    if result.get("skipped"):
        return f"{head}skipped {name} (result exists)"
    if result.get("status") != "ok":
        return f"{head}FAILED {name}: {result.get('error_type')}: {result.get('error')}"
    m = result.get("metrics", {})

    def num(key: str, fmt: str) -> str:
        value = m.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    return (f"{head}ok {name}: W2/floor {num('data_w2_ratio', '.3g')} "
            f"(W2 {num('data_w2', '.4g')}, floor {num('data_w2_floor', '.4g')}) | "
            f"NFE {num('nfe', 'g')} | train {num('train_seconds', '.1f')} s")
