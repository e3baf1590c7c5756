// The chorus gateway as a storefront calls it, with Node's own fetch.
//
// Every call is repeated the way the gateway asks: a 503 (a dependency is
// unavailable) or 429 (rate limited) after its Retry-After, no answer at all
// (connection refused or cut) after a second. An order is always retried
// with the *same* Idempotency-Key, so a retry can never place a second order.

import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

const FINAL = ["CONFIRMED", "CANCELLED"];

// An answer the storefront cannot go on with: `code` is the gateway's error
// code (README, "Error codes"), a contract to branch on.
export class GatewayError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(`HTTP ${status} ${error.code}: ${error.message ?? JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
    this.code = error.code;
  }
}

// A customer token the development way: `chorus token` signs it with
// CHORUS_JWT_SECRET (default: the development secret `make run` accepts).
// In production the token comes from your identity provider instead.
export function developmentToken(chorusBin, customer) {
  const args = ["token", "--sub", customer, "--role", "customer"];
  return execFileSync(chorusBin, args, { encoding: "utf8" }).trim();
}

export class Gateway {
  constructor(baseUrl, token, attempts = 10) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.attempts = attempts;
  }

  // POST /v1/orders: 202 once the order is durably accepted.
  async placeOrder(items, currency, paymentToken, idempotencyKey) {
    const body = { items, currency, payment_token: paymentToken };
    const { json } = await this.call("POST", "/v1/orders", body, {
      "Idempotency-Key": idempotencyKey,
    });
    return json;
  }

  // GET /v1/orders/{id}; with `wait`, a long-poll that answers as soon as the
  // status differs from `seen` (or is final), at most `wait` s.
  async order(orderId, wait, seen) {
    let path = `/v1/orders/${encodeURIComponent(orderId)}`;
    if (wait !== undefined) path += `?${new URLSearchParams({ wait, seen })}`;
    const { json } = await this.call("GET", path);
    return json;
  }

  // Long-polls until the order is CONFIRMED or CANCELLED.
  async waitFinal(orderId, timeoutSecs = 60) {
    const deadline = Date.now() + timeoutSecs * 1000;
    let order = await this.order(orderId);
    while (!FINAL.includes(order.status)) {
      if (Date.now() > deadline) {
        throw new Error(`order ${orderId} still ${order.status} after ${timeoutSecs} s`);
      }
      order = await this.order(orderId, 25, order.status);
    }
    return order;
  }

  // POST /v1/orders/{id}/cancel: {status: 202, json: the order} when the
  // request is taken, {status: 409, json: the error} when already final.
  async cancel(orderId) {
    try {
      return await this.call("POST", `/v1/orders/${encodeURIComponent(orderId)}/cancel`);
    } catch (refused) {
      if (refused.code === "already_final") return { status: refused.status, json: refused.body };
      throw refused;
    }
  }

  // {status, json} of a 2xx; retries 503, 429 and no answer.
  async call(method, path, body, headers = {}) {
    const init = { method, headers: { Authorization: `Bearer ${this.token}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        // Above the longest long-poll (30 s) the gateway holds a request.
        response = await fetch(this.baseUrl + path, { ...init, signal: AbortSignal.timeout(40_000) });
      } catch (unanswered) {
        if (attempt === this.attempts) {
          const cause = unanswered.cause?.message ?? unanswered.message;
          throw new Error(`no answer from the gateway at ${this.baseUrl}: ${cause}`);
        }
        await sleep(1000);
        continue;
      }
      if (response.ok) return { status: response.status, json: await response.json() };
      const text = await response.text();
      if ([429, 503].includes(response.status) && attempt < this.attempts) {
        await sleep(1000 * Number(response.headers.get("retry-after") ?? 1));
        continue;
      }
      let error;
      try {
        error = JSON.parse(text);
      } catch {
        error = text;
      }
      throw new GatewayError(response.status, error);
    }
  }
}
