"""gradcheck's benchmarks: `python -m benchmarks` runs the performance families A–E (see
`benchmarks/__main__.py`); `accuracy.py`, `points.py`, `memory.py` and `sympy_scaling.py` are
the older single-purpose scripts, still runnable on their own."""
