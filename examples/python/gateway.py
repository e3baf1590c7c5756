"""The chorus gateway as a storefront calls it, with the standard library only.

Every call is repeated the way the gateway asks: a 503 (a dependency is
unavailable) or 429 (rate limited) after its Retry-After, no answer at all
(connection refused or cut) after a second. An order is always retried with
the *same* Idempotency-Key, so a retry can never place a second order.
"""

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

FINAL = ("CONFIRMED", "CANCELLED")


class GatewayError(Exception):
    """An answer the storefront cannot go on with: `code` is the gateway's
    error code (README, "Error codes"), a contract to branch on."""

    def __init__(self, status, body):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.body = body
        self.code = error.get("code")
        super().__init__(f"HTTP {status} {self.code}: {error.get('message', body)}")


def development_token(chorus_bin, customer):
    """A customer token the development way: `chorus token` signs it with
    CHORUS_JWT_SECRET (default: the development secret `make run` accepts).
    In production the token comes from your identity provider instead."""
    minted = subprocess.run(
        [chorus_bin, "token", "--sub", customer, "--role", "customer"],
        check=True,
        capture_output=True,
        text=True,
    )
    return minted.stdout.strip()


class Gateway:
    def __init__(self, base_url, token, attempts=10):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.attempts = attempts

    def place_order(self, items, currency, payment_token, idempotency_key):
        """POST /v1/orders: 202 once the order is durably accepted."""
        body = {"items": items, "currency": currency, "payment_token": payment_token}
        _, order = self._call(
            "POST", "/v1/orders", body, {"Idempotency-Key": idempotency_key}
        )
        return order

    def order(self, order_id, wait=None, seen=None):
        """GET /v1/orders/{id}; with `wait`, a long-poll that answers as soon
        as the status differs from `seen` (or is final), at most `wait` s."""
        query = {}
        if wait is not None:
            query = {"wait": wait, "seen": seen}
        path = f"/v1/orders/{urllib.parse.quote(order_id)}"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        _, order = self._call("GET", path)
        return order

    def wait_final(self, order_id, timeout=60):
        """Long-polls until the order is CONFIRMED or CANCELLED."""
        deadline = time.monotonic() + timeout
        order = self.order(order_id)
        while order["status"] not in FINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"order {order_id} still {order['status']} after {timeout} s")
            order = self.order(order_id, wait=25, seen=order["status"])
        return order

    def cancel(self, order_id):
        """POST /v1/orders/{id}/cancel: (202, the order) when the request is
        taken, (409, the error) when the order is already final."""
        path = f"/v1/orders/{urllib.parse.quote(order_id)}/cancel"
        try:
            return self._call("POST", path)
        except GatewayError as refused:
            if refused.code == "already_final":
                return refused.status, refused.body
            raise

    def _call(self, method, path, body=None, headers=None):
        """(status, JSON body) of a 2xx; retries 503, 429 and no answer."""
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(
                self.base_url + path, data=data, headers=all_headers, method=method
            )
            try:
                # Above the longest long-poll (30 s) the gateway holds a request.
                with urllib.request.urlopen(request, timeout=40) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as answer:
                status, text = answer.code, answer.read()
                retry_after = answer.headers.get("Retry-After")
                answer.close()
                if status in (429, 503) and attempt < self.attempts:
                    time.sleep(float(retry_after or 1))
                    continue
                try:
                    error = json.loads(text)
                except ValueError:
                    error = text.decode(errors="replace")
                raise GatewayError(status, error) from None
            except (urllib.error.URLError, OSError) as unanswered:
                if attempt == self.attempts:
                    raise ConnectionError(
                        f"no answer from the gateway at {self.base_url}: {unanswered}"
                    ) from None
                time.sleep(1)
        raise AssertionError("unreachable")
