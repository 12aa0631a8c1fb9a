"""The tables the benchmark prints."""
from __future__ import annotations

import math

from bench.ws_relay.phases import Phase, pct


def ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 1000:.1f}"


def fmt_errors(phase: Phase) -> str:
    errs = phase.errors()
    return "0" if not errs else ", ".join(f"{k} {v}" for k, v in sorted(errs.items()))


def summary_row(delay: int, n: str, direct: Phase, relayed: Phase, ideal: float) -> list[str]:
    d_ttft, r_ttft = direct.ttft(), relayed.ttft()
    d_itl, r_itl = direct.itl(), relayed.itl()
    d_rate, r_rate = direct.rate(), relayed.rate()
    d_pace, r_pace = pct(direct.stream_rates(), 50), pct(relayed.stream_rates(), 50)
    return [
        str(delay), n,
        f"{ms(pct(r_ttft, 50) - pct(d_ttft, 50))} ({ms(pct(d_ttft, 50))} → {ms(pct(r_ttft, 50))})",
        f"{ms(pct(r_ttft, 99) - pct(d_ttft, 99))} ({ms(pct(d_ttft, 99))} → {ms(pct(r_ttft, 99))})",
        f"{ms(pct(d_itl, 50))} / {ms(pct(r_itl, 50))}",
        f"{ms(pct(d_itl, 99))} / {ms(pct(r_itl, 99))}",
        f"{ideal:,.0f}" if ideal else "-", f"{d_rate:,.0f}", f"{r_rate:,.0f}",
        f"{r_rate / d_rate:.2f}" if d_rate else "n/a",
        f"{d_pace:,.1f} / {r_pace:,.1f}", f"{r_pace / d_pace:.2f}" if d_pace else "n/a",
        f"{fmt_errors(direct)} / {fmt_errors(relayed)}",
    ]


HEADER = ["delay ms/tok", "N", "TTFT added p50 ms (direct → relayed)", "TTFT added p99 ms (direct → relayed)",
          "ITL p50 ms direct / relayed", "ITL p99 ms direct / relayed", "ideal tok/s", "direct tok/s", "relayed tok/s",
          "relayed/direct", "stream pace p50 tok/s direct / relayed", "stream pace relayed/direct",
          "errors direct / relayed"]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


CPU_ORDER = ["bench", "fake", "web", "worker", "postgres", "redis", "irq", "unrelated", "steal", "machine",
             "web_runq", "worker_runq"]


def cpu_cells(cpu: dict[str, float]) -> list[str]:
    cells = [f"{cpu.get(k, 0.0):.0f}" for k in CPU_ORDER]
    per_web = sorted(k for k in cpu if k.startswith("web["))
    cells.append(" + ".join(f"{cpu[k]:.0f}" for k in per_web))
    return cells


CPU_LABELS = {"web_runq": "web waiting for a CPU %", "worker_runq": "worker waiting for a CPU %",
              "irq": "irq+softirq %", "unrelated": "unrelated processes %", "machine": "machine total %"}
CPU_HEADER = (["delay", "N", "phase", "wall s"] + [CPU_LABELS.get(k, f"{k} %") for k in CPU_ORDER]
              + ["per gunicorn worker %"])

