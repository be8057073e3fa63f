"""Runs moto's server as `moto_server -H HOST -p PORT` does, with one change: DynamoDB
requests are served one at a time. moto checks a ConditionExpression and applies the
write in separate steps, so two threads can both pass `v = :v` and both write; DynamoDB
itself applies a conditional write atomically. Serializing DynamoDB restores that, so the
store contract's concurrency tests test the adapter, not moto's threading. Every other
service stays threaded (SQS long polls must not block the server)."""

import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


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


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerializeDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
