"""Benchmarks: tether vs LangGraph on the same scenarios, in one run (``make bench``)."""
