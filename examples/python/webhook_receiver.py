"""Receives chorus's order notifications (the notification worker's webhook,
CHORUS_WEBHOOK_URL) and verifies each with the Standard Webhooks library
before reading it.

A delivery that does not verify is answered 401: forged, tampered with, too
old, or signed with another secret. chorus refuses such a notification for
good (it goes to the `orders.dlq` dead-letter topic, to be redriven once the
secrets agree), so a wrong secret shows at once instead of being retried.
A verified delivery is stored, then answered 204; a `webhook-id` seen before
(chorus sends the same id on every retry) is answered 204 and not stored again.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

PATH = "/webhooks/chorus"


class Notifications:
    """What the receiver took, shared with the code waiting for it."""

    def __init__(self):
        self._changed = threading.Condition()
        self._by_order = {}  # (order_id, status) -> (webhook-id, notification)
        self._seen_ids = set()
        self.refused = []  # why deliveries did not verify

    def add(self, webhook_id, notification):
        """False when this delivery id was stored before (a retry)."""
        with self._changed:
            if webhook_id in self._seen_ids:
                return False
            self._seen_ids.add(webhook_id)
            key = (notification["order_id"], notification["status"])
            self._by_order[key] = (webhook_id, notification)
            self._changed.notify_all()
            return True

    def refuse(self, reason):
        with self._changed:
            self.refused.append(reason)
            self._changed.notify_all()

    def wait_for(self, order_id, status, timeout=30):
        """(webhook-id, notification) of the order's final state; fails at
        once when a delivery did not verify, or after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (order_id, status) not in self._by_order:
                if self.refused:
                    raise RuntimeError(
                        f"a webhook delivery did not verify ({self.refused[0]}): "
                        "does CHORUS_WEBHOOK_SECRET match the notification worker's?"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no {status} notification for order {order_id} within {timeout} s: "
                        f"does the notification worker's CHORUS_WEBHOOK_URL point here ({PATH})?"
                    )
                self._changed.wait(left)
            return self._by_order[(order_id, status)]


def start_receiver(host, port, secret, notifications):
    """Serves PATH on host:port in a background thread; returns the server."""
    verifier = Webhook(secret)  # the whsec_… secret the worker signs with

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != PATH:
                return self._answer(404)
            # Verify the exact bytes received, before parsing anything.
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                verifier.verify(raw, dict(self.headers), json_parse=False)
            except (WebhookVerificationError, ValueError) as invalid:
                # ValueError: a header too malformed to even compare.
                notifications.refuse(str(invalid) or type(invalid).__name__)
                return self._answer(401)
            notifications.add(self.headers["webhook-id"], json.loads(raw))
            self._answer(204)

        def _answer(self, status):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass  # the storefront prints what it verified instead

    server = ThreadingHTTPServer((host, port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

