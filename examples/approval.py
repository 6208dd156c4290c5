"""The approval agent: drafts an action, pauses for a human, finishes approved or rejected.

Two separate processes show a real pause and resume on the embedded SQLite default:

    python -m examples.approval start  --db agent.db --thread demo-1
    python -m examples.approval resume --db agent.db --thread demo-1 --approve   # or --reject
"""

from __future__ import annotations

import argparse
import operator
import sys
from typing import Annotated, Any, TypedDict

from tether import END, START, Command, StateGraph, interrupt, task
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph


class ApprovalState(TypedDict, total=False):
    request: str
    action: str
    status: str
    log: Annotated[list[str], operator.add]


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
    g = StateGraph(ApprovalState)
    g.add_node("draft", draft)
    g.add_node("approve", approve)
    g.add_node("execute", execute)
    g.add_edge(START, "draft")
    g.add_edge("draft", "approve")
    g.add_conditional_edges("approve", route, ["execute", END])
    g.add_edge("execute", END)
    return g.compile(checkpointer=saver)


def _print_steps(app: CompiledGraph, inp: Any, config: dict[str, Any]) -> None:
    for chunk in app.stream(inp, config, durability="sync"):
        for node, update in chunk.items():
            if node == "__interrupt__":
                for intr in update:
                    print(f"  paused: {intr.value!r} (interrupt id {intr.id})")
            else:
                print(f"  step {node}: {update}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.approval")
    parser.add_argument("command", choices=["start", "resume", "history"])
    parser.add_argument("--db", default="approval.db")
    parser.add_argument("--thread", default="demo-1")
    parser.add_argument("--request", default="customer says the parcel arrived broken")
    answer = parser.add_mutually_exclusive_group()
    answer.add_argument("--approve", dest="approved", action="store_true", default=True)
    answer.add_argument("--reject", dest="approved", action="store_false")
    args = parser.parse_args(argv)
    config = {"configurable": {"thread_id": args.thread}}
    with SqliteSaver(args.db) as saver:
        app = build(saver)
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
            word = "approve" if args.approved else "reject"
            print(f"[process B] answering {snap.interrupts[0].id} with {word}")
            _print_steps(app, Command(resume=args.approved), config)
            print(f"[process B] final status: {app.get_state(config).values['status']}")
        print("history (newest first):")
        for s in app.get_state_history(config):
            meta = s.metadata
            print(f"  step {meta['step']:>2} {meta['source']:<6} next={list(s.next)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
