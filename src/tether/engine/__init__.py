"""The engine: a pure planner, the run loop, the task runner and the runtime context."""
