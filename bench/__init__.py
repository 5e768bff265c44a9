"""`make bench`: the bot against the bare graph it fronts — latency, throughput, acks, calls, statements, memory.

Run ``python -m bench --help``; the results go to docs/benchmarks.md and docs/benchmarks/*.png.
"""
