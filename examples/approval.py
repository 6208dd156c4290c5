"""The approval agent: drafts an action, pauses for a human, finishes approved or rejected.

Two separate processes show a real pause and resume on the embedded SQLite default:

    python -m examples.approval start  --db agent.db --thread demo-1
    python -m examples.approval resume --db agent.db --thread demo-1 --approve   # or --reject

Two more flows (``--flow``) show several interrupts on one thread, answered by id:

- ``two-step``: one node asks twice, ``interrupt("approval1", id="interrupt-1")`` then
  ``interrupt("approval2", id="interrupt-2")``; the answers come one map at a time:

      python -m examples.approval start  --flow two-step --db agent.db --thread t2
      python -m examples.approval resume --flow two-step --db agent.db --thread t2 \\
          --answer interrupt-1=yes
      python -m examples.approval resume --flow two-step --db agent.db --thread t2 \\
          --answer interrupt-2=no

- ``parallel``: two approvers (legal, finance) run in parallel branches; both interrupts are
  pending at once and one two-key map answers them:

      python -m examples.approval start  --flow parallel --db agent.db --thread t3
      python -m examples.approval resume --flow parallel --db agent.db --thread t3 \\
          --answer approve-legal=yes --answer approve-finance=yes

Only pending interrupts can be answered: a map naming an id that is not pending (not asked
yet, already answered, or unknown) is refused with ``InterruptError`` before anything runs.
"""

from __future__ import annotations

import argparse
import operator
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypedDict

from tether import END, START, Command, InterruptError, StateGraph, interrupt, task
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph

APPROVERS = ("legal", "finance")


def _merge(current: dict[str, bool], update: dict[str, bool]) -> dict[str, bool]:
    """Reducer for votes: parallel approvers each add their own key."""
    return {**current, **update}


class ApprovalState(TypedDict, total=False):
    request: str
    action: str
    status: str
    log: Annotated[list[str], operator.add]
    votes: Annotated[dict[str, bool], _merge]


@task
def draft_action(request: str) -> str:
    """Stands in for a model call: journaled, so a resume never drafts twice."""
    return f"refund 42.00 EUR for: {request}"


def draft(state: ApprovalState) -> dict[str, Any]:
    action = draft_action(state["request"]).result()
    return {"action": action, "log": [f"drafted: {action}"]}


def approve(state: ApprovalState) -> dict[str, Any]:
    approved = interrupt(f"Approve this action? {state['action']}")
    if not approved:
        return {"status": "rejected", "log": ["human rejected"]}
    return {"status": "approved", "log": ["human approved"]}


def execute(state: ApprovalState) -> dict[str, Any]:
    return {"log": [f"executed: {state['action']}"]}


def route(state: ApprovalState) -> str:
    return "execute" if state["status"] == "approved" else END


def build(saver: Any) -> CompiledGraph:
    """The single-approval flow run by ``make demo``."""
    g = StateGraph(ApprovalState)
    g.add_node("draft", draft)
    g.add_node("approve", approve)
    g.add_node("execute", execute)
    g.add_edge(START, "draft")
    g.add_edge("draft", "approve")
    g.add_conditional_edges("approve", route, ["execute", END])
    g.add_edge("execute", END)
    return g.compile(checkpointer=saver)


# -- two sequential interrupts in one node --------------------------------------------------


def approve_twice(state: ApprovalState) -> dict[str, Any]:
    """Two questions in one node, each with a stable id. On resume the node replays from its
    first line: the answered interrupt returns its recorded answer, the next one pauses."""
    first = interrupt("approval1", id="interrupt-1")
    second = interrupt("approval2", id="interrupt-2")
    votes = {"interrupt-1": bool(first), "interrupt-2": bool(second)}
    status = "approved" if all(votes.values()) else "rejected"
    return {"votes": votes, "status": status, "log": [f"two-step review: {status}"]}


def build_two_step(saver: Any) -> CompiledGraph:
    """draft -> approve_twice (interrupt-1, then interrupt-2) -> execute when both said yes."""
    g = StateGraph(ApprovalState)
    g.add_node("draft", draft)
    g.add_node("approve_twice", approve_twice)
    g.add_node("execute", execute)
    g.add_edge(START, "draft")
    g.add_edge("draft", "approve_twice")
    g.add_conditional_edges("approve_twice", route, ["execute", END])
    g.add_edge("execute", END)
    return g.compile(checkpointer=saver)


# -- two approvers in parallel branches -----------------------------------------------------


def approver(name: str) -> Callable[[ApprovalState], dict[str, Any]]:
    def ask(state: ApprovalState) -> dict[str, Any]:
        ok = interrupt(f"{name}: approve {state['action']}?", id=f"approve-{name}")
        return {"votes": {name: bool(ok)}, "log": [f"{name} {'approved' if ok else 'rejected'}"]}

    ask.__name__ = f"approve_{name}"
    return ask


def decide(state: ApprovalState) -> dict[str, Any]:
    votes = state.get("votes", {})
    status = "approved" if all(votes.get(name) for name in APPROVERS) else "rejected"
    return {"status": status, "log": [f"decision: {status}"]}


def build_parallel(saver: Any) -> CompiledGraph:
    """draft -> (legal | finance) -> decide -> execute when both approved."""
    g = StateGraph(ApprovalState)
    g.add_node("draft", draft)
    for name in APPROVERS:
        g.add_node(name, approver(name))
        g.add_edge("draft", name)
    g.add_node("decide", decide)
    g.add_node("execute", execute)
    g.add_edge(START, "draft")
    g.add_edge(list(APPROVERS), "decide")
    g.add_conditional_edges("decide", route, ["execute", END])
    g.add_edge("execute", END)
    return g.compile(checkpointer=saver)


FLOWS: dict[str, Callable[[Any], CompiledGraph]] = {
    "single": build,
    "two-step": build_two_step,
    "parallel": build_parallel,
}


def answer(
    app: CompiledGraph, config: dict[str, Any], answers: Mapping[str, Any]
) -> dict[str, Any]:
    """Resume with ``{interrupt_id: answer, ...}``. The engine refuses (InterruptError, naming
    the pending ids) a map with an id that is not pending, before anything is written."""
    result: dict[str, Any] = app.invoke(Command(resume=dict(answers)), config, durability="sync")
    return result


def _print_steps(app: CompiledGraph, inp: Any, config: dict[str, Any]) -> None:
    for chunk in app.stream(inp, config, durability="sync"):
        for node, update in chunk.items():
            if node == "__interrupt__":
                for intr in update:
                    print(f"  paused: {intr.value!r} (interrupt id {intr.id})")
            else:
                print(f"  step {node}: {update}")


def _parse_answer(text: str) -> tuple[str, bool]:
    iid, sep, word = text.rpartition("=")
    if not sep or not iid or word.lower() not in ("yes", "no", "true", "false"):
        raise argparse.ArgumentTypeError(f"expected ID=yes or ID=no, got {text!r}")
    return iid, word.lower() in ("yes", "true")


graph = build(None)
"""The approval graph without a saver, for `tether resume DB THREAD --graph examples.approval:graph`
(the CLI binds it to the DB's saver)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.approval")
    parser.add_argument("command", choices=["start", "resume", "history"])
    parser.add_argument("--db", default="approval.db")
    parser.add_argument("--thread", default="demo-1")
    parser.add_argument("--flow", choices=sorted(FLOWS), default="single")
    parser.add_argument("--request", default="customer says the parcel arrived broken")
    answer_group = parser.add_mutually_exclusive_group()
    answer_group.add_argument("--approve", dest="approved", action="store_true", default=True)
    answer_group.add_argument("--reject", dest="approved", action="store_false")
    parser.add_argument(
        "--answer",
        dest="answers",
        action="append",
        type=_parse_answer,
        default=[],
        metavar="ID=yes|no",
        help="answer a pending interrupt by id (repeat to answer several at once)",
    )
    args = parser.parse_args(argv)
    config = {"configurable": {"thread_id": args.thread}}
    with SqliteSaver(args.db) as saver:
        app = FLOWS[args.flow](saver)
        if args.command == "start":
            print(f"[process A] starting thread {args.thread!r} in {args.db}")
            _print_steps(app, {"request": args.request, "log": []}, config)
            snap = app.get_state(config)
            print(f"[process A] waiting at {list(snap.next)}; exiting. Resume from any process.")
        elif args.command == "resume":
            snap = app.get_state(config)
            if not snap.interrupts:
                print(f"thread {args.thread!r} has no pending interrupt", file=sys.stderr)
                return 1
            try:
                if args.answers:
                    answers = dict(args.answers)
                    print(f"[process B] answering {answers}")
                    _print_steps(app, Command(resume=answers), config)
                else:
                    word = "approve" if args.approved else "reject"
                    print(f"[process B] answering {snap.interrupts[0].id} with {word}")
                    _print_steps(app, Command(resume=args.approved), config)
            except InterruptError as exc:
                print(f"[process B] refused: {exc}", file=sys.stderr)
                return 2
            final = app.get_state(config)
            if final.interrupts:
                print(f"[process B] still waiting for {[i.id for i in final.interrupts]}")
            else:
                print(f"[process B] final status: {final.values['status']}")
        print("history (newest first):")
        for s in app.get_state_history(config):
            meta = s.metadata
            print(f"  step {meta['step']:>2} {meta['source']:<6} next={list(s.next)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
