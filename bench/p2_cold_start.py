"""P2: cold start of each handler module against `import boto3` + a DynamoDB client.

Each sample is a fresh Python process that times (perf_counter, inside the
process, so interpreter start-up is excluded from both) either the floor,
`import boto3; boto3.client("dynamodb")`, or a handler: importing its module
from functions/<name>/app.py with the layer (shared/) on the path, which runs
its module-level init. Samples alternate floor / ingest / evaluate / reports so
machine noise hits all alike; medians of >= 10 each. P2 = the worst handler's
median / the floor's median (target <= 1.25).

Environment: what Lambda gives a function of template.yaml (LAMBDA_TASK_ROOT,
AWS_LAMBDA_FUNCTION_NAME, AWS_EXECUTION_ENV, region, the template's variables).
Two settings are reported: tracing off, as template.yaml deploys by default
(parameter Tracing=off: POWERTOOLS_TRACE_DISABLED=true), and tracing on
(Tracing=on: X-Ray daemon address set, POWERTOOLS_TRACE_DISABLED=false). P2 is
the default, tracing-off figure; the tracing-on figure shows what X-Ray costs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HANDLERS = ("ingest", "evaluate", "reports")
TARGET = 1.25

FLOOR = (
    "import time; t = time.perf_counter(); import boto3; "
    "boto3.client('dynamodb'); print((time.perf_counter() - t) * 1000)"
)
HANDLER = (
    "import sys, time; sys.path[:0] = [{code!r}, {layer!r}]; t = time.perf_counter(); "
    "import app; print((time.perf_counter() - t) * 1000)"
)


def lambda_environment(function: str, tracing: bool) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_", "GOALKEEPER_", "_X_AMZN", "LAMBDA_"))
    }
    env |= {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": f"goalkeeper-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(REPO / "functions" / function),
        "GOALKEEPER_TABLE_NAME": "goalkeeper",
        "GOALKEEPER_ADMIN_KEY_SHA256": "0" * 64,
        "POWERTOOLS_SERVICE_NAME": "goalkeeper",
        "POWERTOOLS_METRICS_NAMESPACE": "Goalkeeper",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "",
    }
    if tracing:
        env |= {
            "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
    else:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    env.pop("PYTHONDONTWRITEBYTECODE")
    return env


def _sample(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return float(out.stdout.strip().splitlines()[-1])


def run(rounds: int = 10, tracing: bool = False) -> dict[str, Any]:
    floor_env = lambda_environment("ingest", tracing)
    samples: dict[str, list[float]] = {"floor": [], **{name: [] for name in HANDLERS}}
    codes = {
        name: HANDLER.format(code=str(REPO / "functions" / name), layer=str(REPO / "shared"))
        for name in HANDLERS
    }
    # One unmeasured pass so every process finds compiled bytecode, as a Lambda layer ships it.
    _sample(FLOOR, floor_env)
    for name in HANDLERS:
        _sample(codes[name], lambda_environment(name, tracing))
    for _ in range(rounds):
        samples["floor"].append(_sample(FLOOR, floor_env))
        for name in HANDLERS:
            samples[name].append(_sample(codes[name], lambda_environment(name, tracing)))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratios = {name: medians[name] / medians["floor"] for name in HANDLERS}
    worst = max(ratios, key=ratios.__getitem__)
    return {
        "tracing": tracing,
        "rounds": rounds,
        "medians_ms": medians,
        "ratios": ratios,
        "worst": worst,
        "ratio": ratios[worst],
    }


def report(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    label = "tracing on" if result["tracing"] else "tracing off"
    medians = result["medians_ms"]
    rows = [(f"P2 floor boto3+client ({label})", f"{medians['floor']:.0f} ms", "")]
    for name in HANDLERS:
        rows.append(
            (
                f"P2 {name} import+init ({label})",
                f"{medians[name]:.0f} ms = {result['ratios'][name]:.2f} x floor",
                f"<= {TARGET}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for tracing in (False, True):
        result = run(args.rounds, tracing)
        if args.json:
            print(json.dumps(result))
        for name, value, target in report(result):
            print(f"{name:40} {value:32} {target}")


if __name__ == "__main__":
    main()
