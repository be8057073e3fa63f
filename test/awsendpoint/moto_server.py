"""Runs moto's server as `moto_server -H HOST -p PORT` does, with two fixes that make
moto behave as AWS does where the contract suites look:

1. DynamoDB requests are served one at a time. moto checks a ConditionExpression and
   applies the write in separate steps, so two threads can both pass `v = :v` and both
   write; DynamoDB applies a conditional write atomically. Every other service stays
   threaded (SQS long polls must not block the server).
2. SendTaskFailure passes its `cause` on (moto's handler drops it, so a failed task's
   execution and a Catch's $.Cause had none), and it looks for the token among running
   executions only, as SendTaskSuccess does (moto's looks in finished ones too, so failing
   an already finished task succeeded where AWS refuses).
It also turns on moto's execution of state machines (off by default, when Step Functions
only records executions), as POST /moto-api/config would.
Each fix is skipped, with a note in the log, if this moto no longer has what it patches.
"""

import inspect
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

try:  # newer moto serves requests through its own handler
    from moto.moto_server.werkzeug_app import MotoRequestHandler
except ImportError:
    MotoRequestHandler = None


class SerializeDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # Drain the response inside the lock: the write happens while it is produced.
            return [b"".join(self.app(environ, start_response))]


def fix_send_task_failure():
    try:
        from moto.core.responses import EmptyResult
        from moto.stepfunctions.parser import models as pm
        from moto.stepfunctions.responses import StepFunctionResponse
    except ImportError as e:
        print(f"moto_server.py: SendTaskFailure left as moto has it: {e}", file=sys.stderr)
        return

    def backend_send_task_failure(self, task_token, error=None, cause=None):
        outcome = pm.CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        for execution in self._get_executions(pm.ExecutionStatus.RUNNING):
            try:
                if execution.exec_worker.env.callback_pool_manager.notify(callback_id=task_token, outcome=outcome):
                    return pm.SendTaskFailureOutput()
            except pm.CallbackNotifyConsumerError as consumer_error:
                if isinstance(consumer_error, pm.CallbackConsumerTimeout):
                    raise pm.TaskTimedOut()
                raise pm.TaskDoesNotExist()
        raise pm.InvalidToken()

    pm.StepFunctionsParserBackend.send_task_failure = backend_send_task_failure

    def send_task_failure(self):
        backend = self.stepfunction_backend
        kwargs = {"error": self._get_param("error")}
        if "cause" in inspect.signature(backend.send_task_failure).parameters:
            kwargs["cause"] = self._get_param("cause")
        backend.send_task_failure(self._get_param("taskToken"), **kwargs)
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    fix_send_task_failure()
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    app = DomainDispatcherApplication(create_backend_app)
    kwargs = {"request_handler": MotoRequestHandler} if MotoRequestHandler else {}
    run_simple(host, port, SerializeDynamoDB(app), threaded=True, **kwargs)


if __name__ == "__main__":
    main()
