"""What the tests and the benchmarks share, and what the Lambda layer does not ship:
`goalkeeper serve` run in a child (served), read-unit metering (metering), a seeded
workload (workload), fault injection at the botocore transport (faults).

Importable as `support`: pytest puts tests/ on the path (pyproject's `pythonpath`),
and bench/_stack.py does the same for the benchmarks."""
