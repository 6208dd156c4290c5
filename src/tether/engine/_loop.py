"""The run loop: load the thread, apply the input, then step until END, a pause or an error.

It is the only code that talks to a saver during a run, and the only loop: ``invoke``,
``stream``, ``ainvoke`` and ``astream`` all consume the events of ``Run.events()``.
Every step is committed before the next one starts (modes sync and async); mode exit
commits the input at the start and the state when the run returns, pauses or fails.
"""

from __future__ import annotations

import functools
import queue
import uuid
import warnings
from collections.abc import Collection, Generator, Iterator, Sequence
from typing import Any

from tether.checkpoint._base import ValueRow, WriteRow
from tether.checkpoint._lease import Fence, Owner
from tether.checkpoint._saver import Saver
from tether.engine._claim import claim_thread, release_lease
from tether.engine._events import Paused
from tether.engine._heartbeat import Heartbeat
from tether.engine._metrics import METRICS_TASK, RunMetrics
from tether.engine._otel import record_run
from tether.engine._planner import (
    PlannedTask,
    TaskOutput,
    Trigger,
    apply_writes,
    assign_ids,
    goto_triggers,
    is_state_object,
    normalize_output,
    plan_next,
    with_managed,
)
from tether.engine._report import Reporter
from tether.engine._results import writes_to_record
from tether.engine._resume import match_answers
from tether.engine._runner import Outcome, evaluate_branches, run_step
from tether.engine._runtime import RunContext, TaskContext
from tether.engine._spec import GraphSpec
from tether.engine._status import WITHDRAWN, TaskLog, collect_logs, encode_output
from tether.engine._store import ThreadState, new_checkpoint_id
from tether.engine._tokens import MessageStream
from tether.errors import (
    CheckpointError,
    ConfigError,
    DroppedUpdateWarning,
    EmptyInputError,
    GraphRecursionError,
    InterruptError,
    InvalidAnswerError,
    InvalidUpdateError,
    LeaseLostError,
    SerializationError,
    TetherError,
)
from tether.types import START, Command, Durability, Interrupt

DEFAULT_RECURSION_LIMIT = 25

HEARTBEAT = Heartbeat()
"""Renews the leases of this process's running threads (see engine/_heartbeat.py)."""


def thread_id_of(config: dict[str, Any] | None, *, required: bool) -> str | None:
    conf = (config or {}).get("configurable") or {}
    tid = conf.get("thread_id")
    if tid is None:
        if required:
            raise ConfigError(
                "this graph has a checkpointer, so invoke needs a thread: pass "
                "config={'configurable': {'thread_id': '...'}}"
            )
        return None
    if not isinstance(tid, str | int | uuid.UUID) or (isinstance(tid, str) and not tid):
        raise ConfigError(f"thread_id must be a non-empty string, got {tid!r}")
    return str(tid)


def checkpoint_id_of(config: dict[str, Any] | None) -> str | None:
    conf = (config or {}).get("configurable") or {}
    cid = conf.get("checkpoint_id")
    return str(cid) if cid is not None else None


def run_breakpoints(
    spec: GraphSpec, saver: Saver | None, what: str, names: Any, compiled: frozenset[str]
) -> frozenset[str]:
    """The breakpoints of one run: those given to ``invoke``/``stream`` (node names, or "*"
    for all) replace the compiled ones; None keeps them."""
    if names is None:
        return compiled
    if not names:
        return frozenset()
    if saver is None:
        raise ConfigError(
            f"{what} needs a checkpointer to remember where the run stopped: compile the "
            "graph with compile(checkpointer=...) and pass a thread_id"
        )
    if names == "*":
        return frozenset(spec.nodes)
    listed = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in listed if n not in spec.nodes]
    if unknown:
        raise ConfigError(
            f"{what} names node {unknown[0]!r}, which is not in the graph "
            f"(known nodes: {sorted(spec.nodes)})"
        )
    return frozenset(listed)


class Run:
    """One invoke/stream call on one thread. Iterate ``events()``; afterwards ``values`` and
    ``interrupts`` hold the result."""

    def __init__(
        self,
        spec: GraphSpec,
        saver: Saver | None,
        input: Any,
        config: dict[str, Any] | None,
        *,
        durability: Durability = "async",
        modes: Collection[str] = (),
        on_busy: str = "raise",
        busy_timeout: float = 600.0,
        loop: Any = None,
        context: Any = None,
        store: Any = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
    ) -> None:
        """``modes``: the stream modes asked for; events only they need are built only for
        them (see engine/_events.py and engine/_tokens.py)."""
        if durability not in ("sync", "async", "exit"):
            raise ConfigError(f"durability must be 'sync', 'async' or 'exit', got {durability!r}")
        if on_busy not in ("raise", "wait"):
            raise ConfigError(f"on_busy must be 'raise' or 'wait', got {on_busy!r}")
        self.spec = spec
        self.saver = saver
        self.input = input
        self.config: dict[str, Any] = dict(config or {})
        self.durability = durability
        self.on_busy = on_busy
        self.busy_timeout = busy_timeout
        limit = self.config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"recursion_limit must be a positive int, got {limit!r}")
        self.limit = limit
        self.thread_id = thread_id_of(config, required=saver is not None) or "-"
        self.run_id = uuid.uuid4().hex
        self.owner = Owner(self.run_id)
        self.fence: Fence | None = None
        """The run's lease epoch, set by the claim; every write carries it."""
        custom = "custom" in modes
        task_results = "updates" in modes
        messages = "messages" in modes
        task_events = "tasks" in modes or "debug" in modes
        self.report = Reporter(
            spec,
            self.config,
            task_events=task_events,
            checkpoint_events=saver is not None and ("checkpoints" in modes or "debug" in modes),
        )
        # events from inside running nodes stream live (a step's tasks then run on the pool)
        self.live = custom or messages
        self.events_q: queue.Queue[tuple[str, Any]] | None = (
            queue.Queue() if custom or task_results or messages or task_events else None
        )
        self.values: dict[str, Any] = {}
        self.interrupts: tuple[Interrupt, ...] = ()
        self.buffer: list[WriteRow] = []
        self.answered: dict[str, str] = {}
        self.metrics = RunMetrics(self.run_id)
        self.steps_done = 0
        self.interrupt_before = run_breakpoints(
            spec, saver, "interrupt_before", interrupt_before, spec.interrupt_before
        )
        self.interrupt_after = run_breakpoints(
            spec, saver, "interrupt_after", interrupt_after, spec.interrupt_after
        )
        self.continuing = False
        """Whether this run continues the thread (input None or a Command on a thread that
        exists) rather than starting it anew."""
        self.start_writes = self._check_input(input)
        self.state: ThreadState | None = None
        self.ctx = RunContext(
            self.thread_id,
            saver.serde if saver is not None else None,
            self.config,
            self._record,
            self._emit_custom if custom else None,
            loop,
            on_node_start=self.metrics.node_started,
            context=context,
            store=store,
            on_task_result=self._emit_task_result if task_results else None,
            cache=spec.cache,
            on_task_event=self._emit_task_event if task_events else None,
            node_triggers=spec.triggers,
            node_metadata=spec.node_metadata,
        )
        if messages:
            stream = MessageStream(self._emit_message)
            self.ctx.messages = stream
            self.ctx.callbacks = stream.callbacks(self.config.get("callbacks"))

    # -- storage helpers -------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self.durability == "sync"

    def _record(self, rows: list[WriteRow]) -> None:
        if self.saver is None:
            return
        if self.durability == "exit":
            self.buffer.extend(rows)
        else:
            # A @task result records work done in the world: it waits for the disk even in
            # async mode, so that a database crash cannot make the task run again. The flush
            # also covers every earlier commit of the run (the log is written in order).
            journal = any(r.kind == "journal" for r in rows)
            self._put(rows, durable=self.durable or journal)

    def _put(self, rows: list[WriteRow], durable: bool | None = None) -> None:
        """Store task writes under the run's fence (from any thread of the run: a @task in a
        parallel branch too). A lost lease is recorded for the whole run, never swallowed."""
        saver = self.saver
        assert saver is not None
        self.ctx.check_lease()
        try:
            saver.put_writes(
                self.thread_id,
                rows,
                fence=self.fence,
                durable=self.durable if durable is None else durable,
            )
        except LeaseLostError as exc:
            self.ctx.lose(exc)
            raise

    def _emit_custom(self, chunk: Any) -> None:
        assert self.events_q is not None
        self.events_q.put(("custom", chunk))

    def _emit_task_result(self, name: str, result: Any) -> None:
        assert self.events_q is not None
        self.events_q.put(("task_result", {name: result}))

    def _emit_task_event(self, event: dict[str, Any]) -> None:
        assert self.events_q is not None
        self.events_q.put(("tasks", event))

    def _emit_message(self, pair: tuple[Any, dict[str, Any]]) -> None:
        assert self.events_q is not None
        self.events_q.put(("messages", pair))

    def _row(self, task_id: str, kind: Any, key: str, value: Any, what: str = "") -> WriteRow:
        saver = self.saver
        assert saver is not None
        payload = self._encode(what or f"a {kind} record", lambda: saver.serde.dumps(value))
        return WriteRow(task_id, kind, key, payload)

    def _encode(self, what: str, encode: Any) -> bytes:
        """Encode for storage; a value tether cannot store is named before anything is
        written."""
        try:
            data: bytes = encode()
        except SerializationError as exc:
            raise SerializationError(f"thread {self.thread_id!r}, {what}: {exc}") from exc
        return data

    def _commit(
        self,
        state: ThreadState,
        source: str,
        writes: list[WriteRow] | None = None,
        *,
        last: bool = False,
        durable: bool | None = None,
        outputs: Sequence[tuple[PlannedTask, TaskOutput]] = (),
        before: dict[str, Any] | None = None,
    ) -> None:
        """Commit ``state``. ``outputs``: the task of a one-task step, whose writes are kept
        for history (``before``: the values of the keys it wrote, before it) by
        engine/_results.py; encoded after the state, so a value that cannot be stored is
        named by its key."""
        sizes: list[int] = []
        payloads: list[dict[str, Any]] = []

        def extra_rows(nbytes: int, stored: list[ValueRow]) -> list[WriteRow]:
            sizes.append(nbytes)
            held = {v.channel: v for v in stored}
            rows = self._output_rows(outputs, (held, before or {}))
            if last:
                payloads.append(self._metrics_payload(pending_bytes=nbytes))
                rows.append(self._metrics_row(payloads[0]))
            return rows

        self.ctx.check_lease()
        try:
            state.commit(
                source=source,
                fence=self.fence,
                durable=self.durable if durable is None else durable,
                writes=writes,
                extra_writes=extra_rows,
            )
        except LeaseLostError as exc:
            self.ctx.lose(exc)
            raise
        # counted only once stored, so a failed commit leaves the run's metrics exact
        if sizes:  # nothing is stored without a checkpointer
            self.metrics.committed(sizes[0])
        if payloads:
            self._metrics_stored(payloads[0])

    def _metrics_payload(self, pending_bytes: int | None = None) -> dict[str, Any]:
        with self.ctx.lock:
            counters = dict(self.ctx.metrics)
        return self.metrics.payload(counters, pending_bytes)

    def _metrics_row(self, payload: dict[str, Any]) -> WriteRow:
        """The run's metrics, stored with the run's last write (see engine/_metrics.py)."""
        return self._row(METRICS_TASK, "metrics", self.run_id, payload)

    def _metrics_stored(self, payload: dict[str, Any]) -> None:
        self.metrics.written = True
        record_run(self.thread_id, payload)

    def _write_metrics(self) -> None:
        """For runs whose last write was not a commit (a pause, a failure)."""
        if self.saver is None or self.metrics.written or self.ctx.lost is not None:
            return
        payload = self._metrics_payload()
        try:
            self._put([self._metrics_row(payload)], durable=False)
        except TetherError:
            return  # metrics never hide the run's own outcome
        self._metrics_stored(payload)

    def _flush(self, state: ThreadState) -> None:
        """Exit mode: store the state (if it moved) and the pending step's records."""
        if self.saver is None or self.durability != "exit":
            return
        ids = {t.id for t in state.tasks}
        rows = [r for r in self.buffer if r.task_id in ids]
        self.buffer.clear()
        if state.checkpoint_id != state.committed_id or state.dirty:
            if state.checkpoint_id == state.committed_id:
                state.checkpoint_id = new_checkpoint_id()
            self._commit(state, "loop", rows, last=self.metrics.outcome != "running")
        elif rows:
            self._put(rows)

    # -- the run ---------------------------------------------------------------------------

    def events(self) -> Generator[tuple[str, Any], None, None]:
        saver = self.saver
        if saver is None:
            yield from self._run(ThreadState(self.spec, None, self.thread_id))
            return
        claim = claim_thread(saver, self.thread_id, self.owner, self.on_busy, self.busy_timeout)
        self.fence = claim.fence
        HEARTBEAT.register(saver, self.thread_id, claim.fence, self.ctx.lose)
        failed = False
        try:
            target = checkpoint_id_of(self.config)
            state = ThreadState.load(self.spec, saver, self.thread_id, claim.head, target)
            yield from self._run(state)
        except BaseException:
            failed = True
            self.metrics.outcome = "failed"
            raise
        finally:
            HEARTBEAT.unregister(self.run_id)
            self._write_metrics()
            release_lease(saver, self.thread_id, self.owner, failed=failed)

    def _run(self, state: ThreadState) -> Iterator[tuple[str, Any]]:
        self.state = state
        inp = self.input
        logs: dict[str, TaskLog] = {}
        if inp is None or (isinstance(inp, Command) and (state.exists or inp.has_resume)):
            self.continuing = True
            logs = self._continue(state)
        else:
            assert self.start_writes is not None
            yield from self._start(state, self.start_writes)
        self.values = state.output_values()
        yield "values", self.values
        yield from self._steps(state, logs)

    def _continue(self, state: ThreadState) -> dict[str, TaskLog]:
        """Continue the thread where it stopped, with ``None`` or a Command: its answers
        (resume), state writes (update) and added nodes (goto) are stored before the pending
        tasks run again, as LangGraph applies them. A task that paused runs again too, so an
        ``interrupt()`` nobody answered asks anew, from the state as it is now."""
        cmd = self.input if isinstance(self.input, Command) else None
        resume = cmd is not None and cmd.has_resume
        if not state.exists:
            if resume:
                raise InterruptError(
                    f"thread {self.thread_id!r} does not exist, so there is nothing to "
                    "resume; start it with an input first"
                )
            raise EmptyInputError(
                f"thread {self.thread_id!r} has no checkpoint to continue from; "
                "pass an input to start it"
            )
        at_head = state.head is None or state.checkpoint_id == state.head.checkpoint_id
        if resume and not at_head:
            raise InterruptError(
                f"Command(resume=...) applies to the head of thread {self.thread_id!r}; "
                "drop checkpoint_id from the config to resume"
            )
        if at_head and not resume and self._resume_start(state):
            # a run cut off between the input checkpoint and START's step
            self.metrics.kind = "recovery"
            if self.start_writes is not None:
                self._apply_command(state, self.start_writes, [])
            return {}
        logs = self._load_logs(state) if at_head else {}
        rows = self._answers(state, cmd.resume, logs) if cmd is not None and resume else []
        self._count_continue(state, logs, resume)
        for log in logs.values():
            log.forget_unanswered()
        if not at_head:
            self._fork(state, self.start_writes)
        elif self.start_writes is not None:
            self._apply_command(state, self.start_writes, rows)
        elif rows:
            assert self.saver is not None
            # A human's answer cannot be recomputed: durable in every mode, like a @task result.
            self._put(rows, durable=True)
        return logs

    def _count_continue(self, state: ThreadState, logs: dict[str, TaskLog], resume: bool) -> None:
        if resume:
            self.metrics.kind = "resume"
            return
        statuses = [logs.get(t.id, TaskLog()).status for t in state.tasks]
        if "runnable" in statuses:
            self.metrics.kind = "recovery"
            self.metrics.tasks_rerun = statuses.count("runnable")
            self.metrics.tasks_reused = statuses.count("done")
        else:
            self.metrics.kind = "continue"

    def _load_logs(self, state: ThreadState) -> dict[str, TaskLog]:
        if self.saver is None or not state.tasks:
            return {}
        rows = self.saver.get_writes(self.thread_id, [t.id for t in state.tasks])
        return collect_logs(self.saver.serde, rows, self.thread_id)

    def _check_input(self, inp: Any) -> TaskOutput | None:
        """Everything about the input that can be checked without the thread, checked before
        the run claims it or writes anything. Returns what the input writes (new input as
        START's writes, a Command's update and goto), or None when it writes nothing."""
        resume = isinstance(inp, Command) and inp.has_resume
        if isinstance(inp, Command) and not resume and inp.update is None and not inp.goto:
            raise EmptyInputError(
                "the input is an empty Command(): give it resume=... (answer the pending "
                "interrupt), update=... (state writes) or goto=... (nodes to run), or pass "
                "None to continue the thread"
            )
        if self.saver is None and (inp is None or resume):
            what = "invoke(None, ...)" if inp is None else "Command(resume=...)"
            error = EmptyInputError if inp is None else InterruptError
            raise error(
                f"{what} continues a saved thread, and this graph has no checkpointer: "
                "compile it with compile(checkpointer=...) and pass a thread_id"
            )
        if inp is None:
            return None
        if isinstance(inp, Command):
            if inp.update is None and not inp.goto_targets():
                return None
            # on a thread that exists any state key may be written, as with update_state
            return normalize_output(self.spec, START, inp, keys=self.spec.channels.keys())
        if not isinstance(inp, dict) and not is_state_object(inp):
            raise InvalidUpdateError(
                f"input must be a dict of state keys, an instance of the input schema or a "
                f"Command, got {type(inp).__name__} {inp!r:.80}"
            )
        return self._input_keys_only(normalize_output(self.spec, START, inp))

    def _input_keys_only(self, out: TaskOutput) -> TaskOutput:
        extra = [k for k, _ in out.writes if k not in self.spec.input_keys]
        if extra:
            message = (
                f"input key {extra[0]!r} is not in the input schema "
                f"(accepted keys: {sorted(self.spec.input_keys)})"
            )
            if self.spec.strict:
                raise InvalidUpdateError(message)
            warnings.warn(
                f"{message}. Dropped (the graph was compiled with strict=False).",
                DroppedUpdateWarning,
                stacklevel=6,
            )
            out.writes = [(k, v) for k, v in out.writes if k in self.spec.input_keys]
        return out

    def _start(self, state: ThreadState, out: TaskOutput) -> Iterator[tuple[str, Any]]:
        """New input, as LangGraph lays it out: an "input" checkpoint of the state before it
        (one step past the thread's last, -1 for a new thread) whose one task is START with
        the input as its recorded output, then START's step ("loop"), which folds the input
        in and plans START's successors. Pending work of an earlier run (an unanswered
        interrupt, a failed step) is abandoned. The input checkpoint is streamed before
        START's step, as LangGraph streams it."""
        if isinstance(self.input, Command):
            out = self._input_keys_only(out)
        exact = bool(out.goto)  # Command(goto=...) as input: go exactly there
        if not exact and START in self.spec.branches:
            probe = PlannedTask("", START, 0, False)
            ctx = TaskContext(self.ctx, probe, TaskLog(), START)
            values = with_managed(self.spec, state.values, self.limit - 1)
            evaluate_branches(self.spec, START, values, out, ctx)
        cid = new_checkpoint_id()
        if not state.exists:
            state.step = -2  # plan() makes the input checkpoint step -1
        state.joins = {}
        state.plan(assign_ids(self.thread_id, cid, [Trigger(START, False, 0)]), cid)
        start = state.tasks[0]
        rows = []
        if self.saver is not None:
            payload = self._encode(
                "the input", functools.partial(encode_output, self.saver.serde, out)
            )
            rows = [WriteRow(start.id, "output", "", payload)]
        self._commit(state, "input", rows)
        yield from self.report.checkpoint(state, {})
        self._finish_start(state, start, out, exact)

    def _resume_start(self, state: ThreadState) -> bool:
        """A run that stopped between the input checkpoint and START's step: take that step
        now from the input recorded there. False if the head is not such a checkpoint."""
        if [t.node for t in state.tasks] != [START]:
            return False
        out = self._load_logs(state).get(state.tasks[0].id, TaskLog()).output
        if out is None:
            raise CheckpointError(
                f"thread {self.thread_id!r}: input checkpoint {state.checkpoint_id!r} has no "
                "recorded input; continue from an earlier checkpoint or start the thread again"
            )
        exact = bool(out.goto) and START not in self.spec.branches
        self._finish_start(state, state.tasks[0], out, exact)
        return True

    def _finish_start(
        self, state: ThreadState, start: PlannedTask, out: TaskOutput, exact: bool
    ) -> None:
        """START's step: fold the input in and plan its successors (also after a crash that
        left the input checkpoint as the head)."""
        per_key = apply_writes(self.spec, state.values, [(start, out)])
        state.record(per_key)
        self.report.parent_id = state.checkpoint_id
        if exact:
            triggers = goto_triggers(out.goto)
        else:
            triggers, _ = plan_next(self.spec, [(start, out)], {})
        cid = new_checkpoint_id()
        state.plan(assign_ids(self.thread_id, cid, triggers), cid)
        if self.durability != "exit":
            self._commit(state, "loop")

    def _fork(self, state: ThreadState, out: TaskOutput | None) -> None:
        """Time travel: replay from an older checkpoint as a new branch, with the writes of
        the Command given, if any."""
        cid = new_checkpoint_id()
        triggers = [Trigger(t.node, t.is_send, t.index, t.arg) for t in state.tasks]
        # one step past its base, as LangGraph numbers a fork: steps along a branch increase
        state.plan(assign_ids(self.thread_id, cid, triggers), cid)
        if out is not None:
            self._fold_command(state, out, cid)
        self._commit(state, "fork")

    def _apply_command(self, state: ThreadState, out: TaskOutput, rows: list[WriteRow]) -> None:
        """A Command's update and goto on the thread's head, stored with its answers as a
        checkpoint of their own. The pending tasks keep their ids and step, so their
        interrupts, answers and @task journals still apply."""
        cid = new_checkpoint_id()
        self._fold_command(state, out, cid)
        state.checkpoint_id = cid
        self._commit(state, "update", rows, durable=self.durable or bool(rows))

    def _fold_command(self, state: ThreadState, out: TaskOutput, cid: str) -> None:
        """Fold a Command's update into the state, and add its goto targets to the pending
        step (a node already pending is not added twice)."""
        writer = PlannedTask("", START, 0, False)
        state.record(apply_writes(self.spec, state.values, [(writer, out)]))
        pending = {t.node for t in state.tasks if not t.is_send}
        sends = [t.index for t in state.tasks if t.is_send]
        added = [t for t in goto_triggers(out.goto) if t.is_send or t.node not in pending]
        first = max(sends, default=-1) + 1
        added = [Trigger(t.node, True, first + t.index, t.arg) if t.is_send else t for t in added]
        state.tasks = state.tasks + assign_ids(self.thread_id, cid, added)

    def _answers(self, state: ThreadState, resume: Any, logs: dict[str, TaskLog]) -> list[WriteRow]:
        """The rows that store a resume's answers (matched to the pending interrupts before
        anything is written); the answers are in ``logs`` from here on."""
        answers, pending = match_answers(self.thread_id, state.tasks, logs, resume)
        self.answered = {i: pending[i] for i in answers}
        rows = [self._row(pending[i], "resume", i, v) for i, v in answers.items()]
        for i, v in answers.items():
            logs.setdefault(pending[i], TaskLog()).resumes[i] = v
        return rows

    def _at_breakpoint(self, state: ThreadState, logs: dict[str, TaskLog], first: bool) -> bool:
        """A static breakpoint before one of the next tasks. A run that continues the thread
        (``None`` or a Command) passes the breakpoint it stopped at."""
        before = self.interrupt_before
        if not before or (first and self.continuing):
            return False
        return any(
            t.node in before and logs.get(t.id, TaskLog()).status == "runnable" for t in state.tasks
        )

    def _steps(self, state: ThreadState, logs: dict[str, TaskLog]) -> Iterator[tuple[str, Any]]:
        steps = 0
        try:
            while state.tasks:
                yield from self.report.checkpoint(state, logs)
                if self._at_breakpoint(state, logs, steps == 0):
                    self.metrics.outcome = "paused"
                    yield "interrupt", Paused(state.output_values(), ())
                    break
                if steps >= self.limit:
                    raise GraphRecursionError(
                        f"thread {self.thread_id!r} ran {steps} steps (recursion_limit="
                        f"{self.limit}) without reaching END; next nodes: "
                        f"{[t.node for t in state.tasks]}. Raise recursion_limit in the config "
                        "if the loop is intended, and continue with invoke(None, config)"
                    )
                ran = {t.node for t in state.tasks}
                self.steps_done = steps
                done = yield from self._step(state, logs)
                if not done:
                    return
                logs = {}
                steps += 1
                self.values = state.output_values()
                yield "values", self.values
                if state.tasks and ran & self.interrupt_after:
                    self.metrics.outcome = "paused"
                    yield from self.report.checkpoint(state, logs)
                    yield "interrupt", Paused(self.values, ())
                    break
            else:
                yield from self.report.checkpoint(state, logs)  # the run's last checkpoint
        except BaseException:
            self._flush(state)
            raise
        self._flush(state)

    def _step(
        self, state: ThreadState, logs: dict[str, TaskLog]
    ) -> Generator[tuple[str, Any], None, bool]:
        """Run one super-step. Returns True when it committed, False when it paused."""
        tasks = state.tasks
        runnable = [t for t in tasks if logs.get(t.id, TaskLog()).status == "runnable"]
        several = len(tasks) > 1
        outcomes: list[Outcome] = []
        self.ctx.step = state.step
        self.ctx.checkpoint_id = state.checkpoint_id or ""
        values = with_managed(self.spec, state.values, self.limit - 1 - self.steps_done)
        yield from self.report.step_started(state, logs, values)
        for kind, item in run_step(
            self.spec, self.ctx, runnable, values, logs, self.events_q, live=self.live
        ):
            if kind != "done":
                yield kind, item
                continue
            outcome: Outcome = item
            outcomes.append(outcome)
            if outcome.kind == "done" and several and self.saver is not None:
                serde, output = self.saver.serde, outcome.output
                assert output is not None
                payload = self._encode(
                    f"the writes of node {outcome.task.node!r}",
                    functools.partial(encode_output, serde, output),
                )
                self._record([WriteRow(outcome.task.id, "output", "", payload)])
            yield from self.report.task_ended(outcome, state)
        # A task that found the lease lost (a @task's journal write in any branch) fails the
        # whole run here, before anything else of this step is written.
        self.ctx.check_lease()
        order = {t.id: i for i, t in enumerate(tasks)}
        outcomes.sort(key=lambda o: order[o.task.id])
        for o in outcomes:
            log = logs.setdefault(o.task.id, TaskLog())
            if o.kind == "done":
                log.output = o.output
            elif o.kind == "paused":
                assert o.interrupt is not None
                log.interrupts[o.interrupt.id] = o.interrupt
                if o.where:
                    log.positions[o.where] = o.interrupt.id
        self._check_interrupt_ids(tasks, logs)
        failed = [o for o in outcomes if o.kind == "failed"]
        paused = [o for o in outcomes if o.kind == "paused"]
        if self.saver is not None and (paused or failed):
            rows = [
                self._row(
                    o.task.id,
                    "interrupt",
                    o.interrupt.id,
                    [o.interrupt.value, o.where],
                    f"the value of interrupt {o.interrupt.id!r} in node {o.task.node!r}",
                )
                for o in paused
                if o.interrupt is not None
            ]
            rows += [
                self._row(o.task.id, "error", "", f"{type(o.error).__name__}: {o.error}")
                for o in failed
            ]
            self._record(rows + self._withdrawn_answers(failed, logs))
        if failed:
            assert failed[0].error is not None
            raise failed[0].error
        pending = [i for t in tasks for i in logs.get(t.id, TaskLog()).pending_interrupts()]
        if pending:
            self.interrupts = tuple(pending)
            self.metrics.outcome = "paused"
            yield from self.report.still_paused(state, logs, {o.task.id for o in outcomes})
            with_finished = self.report.values_with_finished(state, logs)
            if with_finished is not None:
                self.values = with_finished
                yield "values", self.values
            self._flush(state)
            return False
        finished: list[tuple[PlannedTask, TaskOutput]] = []
        for t in tasks:
            out = logs[t.id].output
            assert out is not None
            finished.append((t, out))
        written = {k for _, out in finished for k, _ in out.writes}
        before = {k: state.values[k] for k in written if k in state.values}
        per_key = apply_writes(self.spec, state.values, finished)
        state.record(per_key)
        triggers, joins = plan_next(self.spec, finished, state.joins)
        cid = new_checkpoint_id()
        state.joins = joins
        self.report.parent_id = state.checkpoint_id
        state.plan(assign_ids(self.thread_id, cid, triggers), cid)
        if not triggers:
            self.metrics.outcome = "done"
        if self.durability != "exit":
            # each task's writes are kept for history (StateSnapshot.tasks[i].result); with
            # several tasks they were stored as each finished
            outputs = [] if several else finished
            self._commit(state, "loop", last=not triggers, outputs=outputs, before=before)
        else:
            self.buffer.clear()
        return True

    def _output_rows(
        self,
        finished: Sequence[tuple[PlannedTask, TaskOutput]],
        commit: tuple[dict[str, ValueRow], dict[str, Any]] | None = None,
    ) -> list[WriteRow]:
        """Output rows of finished tasks. ``commit``: the value rows of the commit a
        one-task step's row rides with, and the written keys' values before it; what they
        show is not stored twice (engine/_results.py)."""
        saver = self.saver
        if saver is None:
            return []
        rows = []
        for task, out in finished:
            if commit is not None:
                writes = writes_to_record(self.spec, out.writes, *commit)
                if writes is None:
                    continue
                out = TaskOutput(writes, out.goto)
            payload = self._encode(
                f"the writes of node {task.node!r}",
                functools.partial(encode_output, saver.serde, out),
            )
            rows.append(WriteRow(task.id, "output", "", payload))
        return rows

    def _withdrawn_answers(self, failed: list[Outcome], logs: dict[str, TaskLog]) -> list[WriteRow]:
        """A node that raised InvalidAnswerError refused the answers this resume gave it:
        rows that take them back, so its interrupts are pending again."""
        rows: list[WriteRow] = []
        for o in failed:
            if not isinstance(o.error, InvalidAnswerError):
                continue
            log = logs.get(o.task.id, TaskLog())
            for iid, task_id in self.answered.items():
                if task_id == o.task.id:
                    log.resumes.pop(iid, None)
                    rows.append(self._row(task_id, "resume", iid, WITHDRAWN))
        return rows

    def _check_interrupt_ids(self, tasks: list[PlannedTask], logs: dict[str, TaskLog]) -> None:
        owner: dict[str, str] = {}
        for t in tasks:
            for iid in logs.get(t.id, TaskLog()).interrupts:
                if iid in owner and owner[iid] != t.node:
                    raise InterruptError(
                        f"interrupt id {iid!r} was raised by nodes {owner[iid]!r} and "
                        f"{t.node!r} in one step; ids must be unique among pending interrupts"
                    )
                owner[iid] = t.node
