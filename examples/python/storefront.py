"""A storefront's whole conversation with chorus, step by step:

1. get a customer token (the development way: `chorus token`);
2. place an order with an Idempotency-Key, and show that a retry with the
   same key answers the same order instead of placing a second one;
3. long-poll the order to its final state;
4. place a second order and cancel it;
5. verify the notification webhook of each final state with the Standard
   Webhooks library, as the notification worker delivers it.

Settings come from the environment; the defaults match `make run`
(see ../README.md). It prints one line per step and exits 0, or prints what
went wrong and exits 1.
"""

import os
import pathlib
import sys
import uuid

from gateway import Gateway, development_token
from webhook_receiver import PATH, Notifications, start_receiver

# The development secret examples/README.md starts `make run` with.
DEVELOPMENT_WEBHOOK_SECRET = "whsec_Y2hvcnVzLWV4YW1wbGVzLWRldmVsb3BtZW50LXNlY3JldA=="
# The sandbox payment provider approves this token (workers/payment/README.md).
PAYMENT_TOKEN = "tok_ok"


def chorus_cli():
    """CHORUS_BIN, else the `make run` build of this repository, else PATH."""
    built = pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "chorus"
    return os.environ.get("CHORUS_BIN") or (str(built) if built.exists() else "chorus")


def step(name, text):
    print(f"{name:<8} {text}", flush=True)


def outcome(order):
    """The final state in one line: status, then reason or total."""
    if order["status"] == "CANCELLED":
        return f"CANCELLED reason {order['reason']}"
    return f"{order['status']} total {order['total']} {order['currency']}"


def main():
    gateway_url = os.environ.get("CHORUS_GATEWAY_URL", "http://127.0.0.1:8000")
    secret = os.environ.get("CHORUS_WEBHOOK_SECRET", DEVELOPMENT_WEBHOOK_SECRET)
    host, port = os.environ.get("STOREFRONT_WEBHOOK_ADDR", "127.0.0.1:8790").rsplit(":", 1)
    customer = os.environ.get("STOREFRONT_CUSTOMER", "alice")
    sku = os.environ.get("STOREFRONT_SKU", "SKU-1")

    # The receiver listens before any order exists, so no notification waits.
    notifications = Notifications()
    receiver = start_receiver(host, int(port), secret, notifications)
    step("webhooks", f"listening on http://{host}:{port}{PATH}")

    token = os.environ.get("CHORUS_TOKEN")
    if token:
        step("token", "CHORUS_TOKEN")
    else:
        token = development_token(chorus_cli(), customer)
        step("token", f"development token for {customer} (chorus token)")
    gateway = Gateway(gateway_url, token)

    # One key per order attempt, kept for every retry of that attempt.
    key = str(uuid.uuid4())
    items = [{"sku": sku, "quantity": 2}]
    placed = gateway.place_order(items, "EUR", PAYMENT_TOKEN, key)
    step("placed", f"{placed['order_id']} {placed['status']} (Idempotency-Key {key})")
    again = gateway.place_order(items, "EUR", PAYMENT_TOKEN, key)
    if again["order_id"] != placed["order_id"]:
        raise RuntimeError(f"the same Idempotency-Key placed a second order: {again}")
    step("retried", f"{again['order_id']} the same order for the same Idempotency-Key")
    bought = gateway.wait_final(placed["order_id"])
    step("final", f"{bought['order_id']} {outcome(bought)}")

    # Cancelled while the payment is still being asked for. An order the
    # payment already confirmed stays confirmed: the cancel answers 409
    # already_final, or 202 and the order shows "cancellation": "rejected".
    second = gateway.place_order(items, "EUR", PAYMENT_TOKEN, str(uuid.uuid4()))
    step("placed", f"{second['order_id']} {second['status']}")
    status, answer = gateway.cancel(second["order_id"])
    shown = answer.get("status") or answer["error"]["code"]
    step("cancel", f"{second['order_id']} {status} {shown}")
    cancelled = gateway.wait_final(second["order_id"])
    step(
        "final",
        f"{cancelled['order_id']} {outcome(cancelled)} cancellation {cancelled['cancellation'] or '-'}",
    )

    for order in (bought, cancelled):
        webhook_id, notification = notifications.wait_for(order["order_id"], order["status"])
        verified = f"{outcome(notification)} verified (webhook-id {webhook_id})"
        step("webhook", f"{notification['order_id']} {verified}")
    receiver.shutdown()


if __name__ == "__main__":
    try:
        main()
    except Exception as failure:  # a storefront would log it; here: say it and fail
        print(f"failed: {failure}", file=sys.stderr)
        sys.exit(1)
