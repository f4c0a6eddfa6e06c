"""Run every benchmark: ``uv run python -m benchmarks``."""

from benchmarks import charging, rating, ussd

for module in (rating, charging, ussd):
    print(f"== {module.__name__}")
    module.main([])
