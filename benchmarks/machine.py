"""What machine a benchmark ran on, for its table's header.

>>> cpu_model()          # 'AMD EPYC', from /proc/cpuinfo where there is one
>>> cpu_description()    # 'AMD EPYC (no native bfloat16: float32)'
"""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return name


def cpu_description() -> str:
    """The model name and whether the CPU computes bfloat16 natively (the captioners' precision)."""
    from capsight.precision import cpu_computes_bf16

    return f"{cpu_model()} ({'native bfloat16' if cpu_computes_bf16() else 'no native bfloat16: float32'})"
