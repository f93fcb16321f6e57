"""Invoke one zip function as the Lambda Python runtime does, for ``tests/integration/test_layer_runtime.py``.

Run with the runtime's interpreter in isolated mode, without its site-packages
(``python3.13 -I -S lambda_bootstrap.py TASK LAYER RUNTIME OUTPUT``): the only code on ``sys.path`` besides
the standard library is what Lambda puts there, in its order: the function's code (``/var/task``),
the layer (``/opt/python``) and the runtime's own packages (``/var/runtime``: boto3). Reads the
event as JSON on stdin; writes ``{"result": ..., "modules": {name: file}, "version": [3, 13]}`` as
JSON to OUTPUT (stdout is the function's log, as on Lambda).
Imports nothing of the tests: it must stand alone.
"""

import importlib
import json
import sys
import uuid


class Context:
    """The parts of Lambda's context object that handlers and powertools read."""

    function_name = "posepipe-layer-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:posepipe-layer-test"
    log_group_name = "/aws/lambda/posepipe-layer-test"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def main() -> None:
    task, layer, runtime, output = sys.argv[1:5]
    sys.path[:0] = [task, layer, runtime]
    event = json.load(sys.stdin)
    app = importlib.import_module("app")  # the function's app.py: the handler is "app.handler"
    result = app.handler(event, Context())
    loaded = ("app", "posepipe", "av", "numpy", "aws_lambda_powertools", "pydantic_core", "boto3")
    modules = {name: getattr(sys.modules.get(name), "__file__", None) for name in loaded}
    with open(output, "w") as file:
        file.write(json.dumps({"result": result, "modules": modules, "version": list(sys.version_info[:2])}))


if __name__ == "__main__":
    main()
