"""Run every benchmark: ``uv run python -m benchmarks``."""

from benchmarks import charging, rating

for module in (rating, charging):
    print(f"== {module.__name__}")
    module.main([])
