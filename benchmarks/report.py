"""Turn ``Results`` into the Markdown table, the targets section, docs/benchmarks.md and plots."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import os
import platform
import statistics
from pathlib import Path
from typing import Any

from benchmarks import engines as eng
from benchmarks.run import MODES, Results

DOCS = Path(__file__).resolve().parent.parent / "docs"
T, L = "tether", "langgraph"

# Resume counts as "flat" when 1,000 prior checkpoints cost at most this much more than 10.
FLAT = 1.5

# Backends LangGraph is measured on (its Redis saver needs modules plain Redis 7 lacks).
LG_BACKENDS = ("memory", "sqlite", "postgres")


# -- formatting ------------------------------------------------------------------------------


def _num(x: float, metric: str) -> str:
    if metric == "bytes stored":
        return _bytes(x)
    if "/" in metric and "ms" not in metric:  # commits/step and friends
        return f"{x:.2f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _bytes(n: float) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.2f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n:.0f} B"


def _cell(vals: list[float], metric: str) -> str:
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1 or min(vals) == max(vals):
        return _num(med, metric)
    return f"{_num(med, metric)} ({_num(min(vals), metric)}-{_num(max(vals), metric)})"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}" if r >= 0.1 else f"{r:.3f}"


def growth_exponent(res: Results, backend: str, engine: str) -> float | None:
    steps = res.sizes.message_steps
    lo, hi = min(steps), max(steps)
    a = res.median("messages", backend, "sync", lo, "bytes stored", engine)
    b = res.median("messages", backend, "sync", hi, "bytes stored", engine)
    if a is None or b is None or a <= 0 or lo == hi:
        return None
    return math.log(b / a) / math.log(hi / lo)


def _order(key: tuple[str, str, str, int, str]) -> tuple[Any, ...]:
    scen = ["loop", "chain", "fanout", "messages", "get_state", "resume", "resume-cold"]
    s, b, m, size, metric = key
    return (
        scen.index(s) if s in scen else 99,
        list(eng.BACKENDS).index(b),
        list(MODES).index(m),
        size,
        metric,
    )


def table(res: Results) -> str:
    lines = [
        "| scenario | backend | mode | size | metric | tether median (min-max) "
        "| LangGraph median (min-max) | tether / LangGraph |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    for key in sorted(res.data, key=_order):
        s, b, m, size, metric = key
        by = res.data[key]
        r = _ratio(res.median(*key, T), res.median(*key, L))
        lines.append(
            f"| {s} | {b} | {m} | {size} | {metric} | {_cell(by.get(T, []), metric)} "
            f"| {_cell(by.get(L, []), metric)} | {_fmt_ratio(r)} |"
        )
    for b in ("sqlite", "postgres", "redis"):
        gt, gl = growth_exponent(res, b, T), growth_exponent(res, b, L)
        if gt is None and gl is None:
            continue
        steps = res.sizes.message_steps
        lines.append(
            f"| messages | {b} | sync | {min(steps)}→{max(steps)} | growth exponent | "
            f"{'—' if gt is None else f'{gt:.2f}'} | {'—' if gl is None else f'{gl:.2f}'} | — |"
        )
    floor = statistics.median(res.fsync_ms) if res.fsync_ms else None
    dfloor = statistics.median(res.fdatasync_ms) if res.fdatasync_ms else None
    if floor is not None:
        lines.append(
            f"| fsync floor | disk | — | {len(res.fsync_ms)} | 4 KB write+fsync (ms) "
            f"| {_cell(res.fsync_ms, 'ms')} | (same disk) | — |"
        )
    if dfloor is not None:
        lines.append(
            f"| fsync floor | disk | — | {len(res.fdatasync_ms)} | 4 KB write+fdatasync (ms) "
            f"| {_cell(res.fdatasync_ms, 'ms')} | (same disk) | — |"
        )
    return "\n".join(lines)


# -- targets ---------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def targets(res: Results) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    out: list[tuple[str, str, str]] = []
    n = res.sizes.loop_steps

    def ratio_row(label: str, key: tuple[str, str, str, int, str], limit: float) -> None:
        a, b = res.median(*key, T), res.median(*key, L)
        r = _ratio(a, b)
        if r is None:
            out.append((label, "not measured", "n/a"))
            return
        m = key[4]
        out.append(
            (
                label,
                f"{_num(a or 0, m)} vs {_num(b or 0, m)} → ratio {r:.3f} (target ≤ {limit:g})",
                _verdict(r <= limit),
            )
        )

    for mode in MODES:
        ratio_row(
            f"loop, memory, {mode}: per step ≤ 1/4 of LangGraph",
            ("loop", "memory", mode, n, "per step (ms)"),
            0.25,
        )
    floor = statistics.median(res.fsync_ms) if res.fsync_ms else None
    dfloor = statistics.median(res.fdatasync_ms) if res.fdatasync_ms else None
    for b in ("sqlite", "postgres"):
        c_t = res.median("loop", b, "sync", n, "commits/step", T)
        c_l = res.median("loop", b, "sync", n, "commits/step", L)
        if c_t is None:
            out.append((f"loop, {b}, sync: one commit per step", "not measured", "n/a"))
        else:
            lg = "—" if c_l is None else f"{c_l:.3f}"
            out.append(
                (
                    f"loop, {b}, sync: one commit per step (LangGraph: 2)",
                    f"tether {c_t:.3f}, LangGraph {lg} saver calls per step",
                    _verdict(round(c_t) == 1 and c_t < 1.05),
                )
            )
        ratio_row(
            f"loop, {b}, sync: per step ≤ 1/2.5 of LangGraph",
            ("loop", b, "sync", n, "per step (ms)"),
            0.4,
        )
    t_sql = res.median("loop", "sqlite", "sync", n, "per step (ms)", T)
    if t_sql is not None and floor is not None:
        extra = f"; fdatasync floor {dfloor:.3f} ms" if dfloor is not None else ""
        out.append(
            (
                "loop, sqlite, sync: per step within 2x of the fsync floor",
                f"{t_sql:.3f} ms vs floor {floor:.3f} ms → {t_sql / floor:.2f}x{extra}",
                _verdict(t_sql <= 2 * floor),
            )
        )
    big = max(res.sizes.message_steps)
    for b in ("sqlite", "postgres", "redis"):
        if b in LG_BACKENDS:
            ratio_row(
                f"messages, {b}, {big} steps: bytes ≤ 1/50 of LangGraph",
                ("messages", b, "sync", big, "bytes stored"),
                0.02,
            )
        g = growth_exponent(res, b, T)
        if g is None and b not in LG_BACKENDS:
            continue
        out.append(
            (
                f"messages, {b}: growth exponent ≤ 1.1",
                "not measured" if g is None else f"{g:.3f}",
                "n/a" if g is None else _verdict(g <= 1.1),
            )
        )
    _get_state_targets(res, out, ratio_row)
    priors = res.sizes.resume_priors
    lo, hi = min(priors), max(priors)
    for scen, metric in (
        ("resume", "resume warm (ms)"),
        ("resume-cold", "resume fresh process (ms)"),
    ):
        for b in eng.BACKENDS:
            if scen == "resume-cold" and b == "memory":
                continue
            a = res.median(scen, b, "sync", lo, metric, T)
            z = res.median(scen, b, "sync", hi, metric, T)
            if a is not None and z is not None:
                out.append(
                    (
                        f"{scen}, {b}: flat in prior checkpoints ({hi} vs {lo}, ≤ {FLAT}x)",
                        f"{z:.3f} ms vs {a:.3f} ms → {z / a:.2f}x",
                        _verdict(z / a <= FLAT),
                    )
                )
            if b not in LG_BACKENDS:
                continue
            for p in priors:
                ratio_row(
                    f"{scen}, {b}, {p} prior: ≤ 1/2 of LangGraph",
                    (scen, b, "sync", p, metric),
                    0.5,
                )
    return out


GET_STATE_RATIO = 1.5
"""Issue 15: get_state within 1.5x of LangGraph, and the ratio flat as the thread grows."""


def _get_state_targets(res: Results, out: list[tuple[str, str, str]], ratio_row: Any) -> None:
    sizes = res.sizes.get_state_sizes
    for metric, label in (("get_state warm (ms)", "warm"), ("get_state cold (ms)", "cold")):
        for size in sizes:
            ratio_row(
                f"get_state, sqlite, {size} messages, {label}: ≤ {GET_STATE_RATIO:g}x LangGraph",
                ("get_state", "sqlite", "async", size, metric),
                GET_STATE_RATIO,
            )
        lo, hi = min(sizes), max(sizes)
        ratios = [
            _ratio(
                res.median("get_state", "sqlite", "async", n, metric, T),
                res.median("get_state", "sqlite", "async", n, metric, L),
            )
            for n in (lo, hi)
        ]
        if lo == hi or ratios[0] is None or ratios[1] is None:
            continue
        out.append(
            (
                f"get_state, sqlite, {label}: ratio flat ({hi} vs {lo} messages, ≤ {FLAT}x)",
                f"{ratios[1]:.2f} vs {ratios[0]:.2f} → {ratios[1] / ratios[0]:.2f}x",
                _verdict(ratios[1] <= FLAT * ratios[0]),
            )
        )


def _durability(backend: str) -> str:
    return {
        "memory": "none (process memory)",
        "sqlite": "WAL, `synchronous=FULL` in sync mode: fsync per commit",
        "postgres": f"WAL flush per commit (`synchronous_commit={_pg_setting()}`)",
        "redis": f"the server's: {_redis_persistence()}",
    }.get(backend, "")


def backends_md(res: Results) -> str:
    """tether alone, loop scenario, sync mode: one row per backend."""
    n = res.sizes.loop_steps
    rows = [
        f'Loop scenario (one node looping {n} times on one thread), `durability="sync"`, '
        "tether only. *commits/step* = `commit` + `put_writes` calls on the saver instance "
        "per step; *per step* = invoke time / steps, median (min-max) over "
        f"{res.sizes.loop_reps} repetitions.",
        "",
        "| backend | commits/step | per step (ms), median (min-max) | durability of a commit |",
        "|---|---:|---:|---|",
    ]
    for b in eng.BACKENDS:
        c = res.values("loop", b, "sync", n, "commits/step", T)
        t = res.values("loop", b, "sync", n, "per step (ms)", T)
        if not c and not t:
            rows.append(f"| {b} | — | not measured | {_durability(b)} |")
            continue
        rows.append(
            f"| {b} | {_cell(c, 'commits/step')} | {_cell(t, 'per step (ms)')} | {_durability(b)} |"
        )
    floor = statistics.median(res.fsync_ms) if res.fsync_ms else None
    if floor is not None:
        rows += ["", f"Disk floor: one 4 KB write+fsync takes {floor:.3f} ms (median)."]
    return "\n".join(rows)


def targets_md(res: Results) -> str:
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    rows += [f"| {a} | {b} | {c} |" for a, b, c in targets(res)]
    return "\n".join(rows)


# -- machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: str) -> str:
    best = ("", "unknown", "unknown")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            if (path + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best[0]):
                best = (mnt, dev, fstype)
    except OSError:
        pass
    return f"{best[2]} on {best[1]} (mounted at {best[0] or '?'})"


def _pg_version() -> str:
    try:
        import psycopg

        with psycopg.connect(eng.PG_ADMIN_DSN, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
        return f"{row[0] if row else '?'} (synchronous_commit={sync[0] if sync else '?'})"
    except Exception as exc:
        return f"not reachable ({type(exc).__name__})"


def _pg_setting() -> str:
    try:
        import psycopg

        with psycopg.connect(eng.PG_ADMIN_DSN, connect_timeout=3) as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
        return str(row[0]) if row else "?"
    except Exception:
        return "?"


def _redis_config() -> dict[str, str] | None:
    try:
        client = eng._redis_client()
        try:
            info = client.info("server")
            conf = client.config_get("appendonly")
            conf.update(client.config_get("appendfsync"))
            conf.update(client.config_get("save"))
        finally:
            client.close()
    except Exception:
        return None
    out = {str(k): str(v) for k, v in conf.items()}
    out["version"] = str(info.get("redis_version", "?"))
    return out


def _redis_persistence() -> str:
    c = _redis_config()
    if c is None:
        return "unknown (not reachable)"
    if c.get("appendonly") == "yes":
        aof = f"AOF on, `appendfsync {c.get('appendfsync', '?')}`"
    else:
        aof = "AOF off"
    save = c.get("save", "")
    rdb = f"RDB snapshots `save {save}`" if save else "no RDB snapshots"
    return f"{aof}, {rdb}; a reply means in memory, not on disk"


def _redis_version() -> str:
    c = _redis_config()
    if c is None:
        return f"not reachable at {eng.REDIS_URL}"
    return f"{c['version']} at {eng.REDIS_URL} ({_redis_persistence()})"


def _dist(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(res: Results) -> list[tuple[str, str]]:
    return [
        ("date", dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("mode", f"{res.sizes.mode} (BENCH_FULL=1 for the full sizes)"),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", _ram()),
        ("disk / filesystem", _filesystem(res.workdir or "/")),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("tether", _dist("tether")),
        (
            "LangGraph",
            f"langgraph {_dist('langgraph')}, langgraph-checkpoint "
            f"{_dist('langgraph-checkpoint')}, -sqlite {_dist('langgraph-checkpoint-sqlite')}, "
            f"-postgres {_dist('langgraph-checkpoint-postgres')}",
        ),
        ("SQLite", __import__("sqlite3").sqlite_version),
        ("PostgreSQL", _pg_version()),
        ("psycopg", _dist("psycopg")),
        ("Redis", _redis_version()),
        ("redis-py", _dist("redis")),
        ("run time", f"{res.seconds:.0f} s"),
    ]


# -- plots -----------------------------------------------------------------------------------


def plots(res: Results, outdir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[Path] = []
    colors = {T: "tab:blue", L: "tab:orange"}
    labels = {T: "tether", L: "LangGraph"}
    steps = list(res.sizes.message_steps)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, b in zip(axes, ("sqlite", "postgres", "redis"), strict=True):
        for e in (T, L):
            ys = [res.median("messages", b, "sync", s, "bytes stored", e) for s in steps]
            pts = [(s, y) for s, y in zip(steps, ys, strict=True) if y is not None]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] / 1024 for p in pts],
                    "o-",
                    color=colors[e],
                    label=labels[e],
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("steps (one ~200-byte message each)")
        ax.set_ylabel("KiB in memory (MEMORY USAGE)" if b == "redis" else "KiB stored")
        title = f"messages: bytes stored, {b}"
        ax.set_title(title + " (tether only)" if b not in LG_BACKENDS else title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    path = outdir / "bench_storage.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)

    n = res.sizes.loop_steps
    groups = [(b, m) for b in eng.BACKENDS for m in MODES]
    fig, ax = plt.subplots(figsize=(13, 4.5))
    width = 0.38
    for k, e in enumerate((T, L)):
        xs, meds, lo, hi = [], [], [], []
        for i, (b, m) in enumerate(groups):
            vals = res.values("loop", b, m, n, "per step (ms)", e)
            if not vals:
                continue
            med = statistics.median(vals)
            xs.append(i + (k - 0.5) * width)
            meds.append(med)
            lo.append(med - min(vals))
            hi.append(max(vals) - med)
        if xs:
            ax.bar(xs, meds, width, yerr=[lo, hi], color=colors[e], label=labels[e], capsize=2)
    if res.fsync_ms:
        f = statistics.median(res.fsync_ms)
        ax.axhline(f, color="red", ls="--", lw=1, label=f"4 KB write+fsync ({f:.2f} ms)")
    if res.fdatasync_ms:
        f = statistics.median(res.fdatasync_ms)
        ax.axhline(f, color="gray", ls=":", lw=1, label=f"4 KB write+fdatasync ({f:.2f} ms)")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(
        [f"{b}\n{m}" + ("" if b in LG_BACKENDS else "\n(tether only)") for b, m in groups],
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_ylabel("ms per step (log)")
    ax.set_title(f"loop: one node looping {n} times on one thread, per-step time (median, min-max)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = outdir / "bench_step_time.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)
    return made


# -- the document ----------------------------------------------------------------------------

COUNTING = """\
- **Times** are wall-clock (`time.perf_counter`) in milliseconds. Each row is run for both
  engines alternately (tether, LangGraph, tether, LangGraph, ...); a cell is the median over
  repetitions with min-max in parentheses. *Ratio* is tether's median / LangGraph's median
  (below 1: tether is faster or smaller).
- **loop** (`size` = steps): one invoke of one node looping on itself; per step = invoke time /
  steps. **commits/step** counts the saver calls that persist a step: tether's
  `commit` + `put_writes`, LangGraph's `put` + `put_writes` (counted by wrapping the methods
  on the saver instance). **SQLite tx/step** counts real transactions: `COMMIT` statements
  seen by the connection's `set_trace_callback` (tether's also include the per-invoke lease
  claim/release, which amortize over the steps).
- **chain** / **fanout** (`size` = invokes): a 10-node linear graph, and split → 8 parallel
  branches writing an `operator.add` key → join; each invoke on a fresh thread, after one
  warm-up invoke; time per invoke is the mean over the invokes of one repetition.
- **messages** (`size` = steps, sync mode): one ~200-byte message appended per step on one
  thread. **bytes stored**: SQLite file size after the saver is closed (tether's `close()`
  folds the WAL back; for LangGraph `PRAGMA wal_checkpoint(TRUNCATE)` runs first), Postgres
  `pg_total_relation_size` (heap + indexes + TOAST) summed over the saver's tables in a
  fresh schema (migration bookkeeping tables excluded). **get_state**: median of 5 calls on
  the open saver. Growth exponent = log(bytes at max N / bytes at min N) / log(max N / min N).
- **get_state** (`size` = messages, SQLite): `get_state` of a thread holding `size` ~200-byte
  messages in an `operator.add` list. tether's thread is built one message per step, its
  longest delta chains; LangGraph's in 40 steps (every LangGraph checkpoint holds the whole
  list, so how it was built does not change its read, and one message per step would cost it
  1.5 GB at 4,000). **cold**: the first call on a freshly opened saver (tether's cache of
  decoded values is per saver instance, so it starts empty); **warm**: median of the next 20
  calls (tether answers them from that cache, decoding one stored copy per value).
- **resume** (`size` = prior steps ≈ prior checkpoints): the thread loops `size` times, then
  pauses at `interrupt()`; the time of `invoke(Command(resume=True))` in sync mode, in the
  same process after a warm-up resume (**resume warm**), and in a fresh Python process
  (**resume-cold**: measured inside the child from before opening the saver to after the
  invoke; **fresh process wall** is the whole child process, interpreter start and imports
  included). Memory has no fresh-process variant.
- **fsync floor**: one 4 KB `write` + `fsync` (and + `fdatasync`, what SQLite uses on Linux)
  on the file system that holds the SQLite files, median over many.
- **redis** (tether only): `tether.checkpoint.RedisSaver` on plain Redis 7, a fresh key
  prefix per store in a dedicated database (`BENCH_REDIS_URL`, default
  `redis://127.0.0.1:6379/14`); the prefix's keys are deleted afterwards. LangGraph has no
  Redis rows (— in its column and the ratio): its Redis checkpointer
  (`langgraph-checkpoint-redis`) needs the RedisJSON and RediSearch modules (Redis Stack or
  Redis 8), which plain Redis 7 lacks. **bytes stored** for Redis is the sum of
  `MEMORY USAGE key SAMPLES 0` over the prefix's keys (memory, not disk). A Redis commit is
  durable only as far as the server's persistence settings go (listed under Machine);
  tether's `durable` flag has no effect there.
- Durability modes are each engine's own: LangGraph's SqliteSaver leaves SQLite's default
  `synchronous=FULL` in WAL mode, so it syncs on every commit in every mode; tether syncs in
  `sync` only.
"""


def document(res: Results, table_md: str, pngs: list[Path]) -> str:
    parts = [
        "# Benchmarks: tether vs LangGraph",
        "",
        "Generated by `make bench` (`python -m benchmarks`; `BENCH_FULL=1` for the full sizes). "
        "Each scenario is written once (`benchmarks/scenarios.py`) against a thin adapter per "
        "engine (`benchmarks/engines.py`) and run for both engines in the same process.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine(res)],
        "",
        "## Targets (issue 5)",
        "",
        targets_md(res),
        "",
        "## tether across backends (issue 4)",
        "",
        backends_md(res),
        "",
    ]
    if res.notes or res.errors:
        parts += ["## Notes, skips and errors", ""]
        parts += [f"- {n}" for n in res.notes]
        for err in res.errors:
            parts.append(f"- **{err['engine']}** failed `{err['case']}`: `{err['error'][:300]}`")
        parts.append("")
    parts += [
        "## Results",
        "",
        table_md,
        "",
        "## Plots",
        "",
        *[f"![{p.stem}]({p.name})" for p in pngs],
        "",
        "## What is measured",
        "",
        COUNTING,
    ]
    return "\n".join(parts)


def write(res: Results, outdir: Path = DOCS) -> tuple[str, list[Path]]:
    outdir.mkdir(parents=True, exist_ok=True)
    table_md = table(res)
    pngs = plots(res, outdir)
    (outdir / "benchmarks.md").write_text(document(res, table_md, pngs))
    return table_md, pngs
