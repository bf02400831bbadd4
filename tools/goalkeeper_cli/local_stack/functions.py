"""Lambda functions of template.yaml, loaded in process as warm instances.

Each instance is a separate import of the function's module, like a separate
Lambda execution environment: module state (the Powertools resolver's current
request, caches) is never shared between two requests running at once.
"""

import importlib.util
import itertools
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Any
_module_ids = itertools.count()
# Cold starts import one at a time, whatever the function: two functions importing the
# same packages at once (Powertools' circular imports) can each be handed the other's
# half-initialised module (seen: the first request of a restarted stack failed with
# "cannot import name 'SQSEvent' from partially initialized module" while the stream
# poller was cold-starting evaluation for the stream kept from before).
_LOAD_LOCK = threading.Lock()


@dataclass
class LocalContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 60.0
    started: float = 0.0

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def load_instance(code_uri: Path, handler: str) -> Handler:
    module_file, function_name = handler.rsplit(".", 1)
    path = code_uri / f"{module_file.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"goalkeeper_fn_{next(_module_ids)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function_name)


class LocalFunction:
    """A pool of instances of one function; each runs one invocation at a time."""

    def __init__(self, name: str, code_uri: Path, handler: str, max_instances: int = 8) -> None:
        self.name = name
        self._code_uri = code_uri
        self._handler = handler
        self._idle: queue.LifoQueue[Handler] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_instances)

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._slots:
            try:
                instance = self._idle.get_nowait()
            except queue.Empty:
                with _LOAD_LOCK:
                    instance = load_instance(self._code_uri, self._handler)
            try:
                context = LocalContext(self.name, str(uuid.uuid4()), started=time.monotonic())
                return instance(event, context)
            finally:
                self._idle.put(instance)


class FunctionPool:
    """One LocalFunction per function of template.yaml, created on first use.

    Passing in an existing dict shares warm functions between pools (tests do).
    """

    def __init__(self, functions: dict[str, LocalFunction] | None = None) -> None:
        self._functions = {} if functions is None else functions

    def __getitem__(self, name: str) -> LocalFunction:
        return self._functions[name]

    def get(self, name: str, code_uri: Path, handler: str) -> LocalFunction:
        if name not in self._functions:
            self._functions[name] = LocalFunction(name, code_uri, handler)
        return self._functions[name]
