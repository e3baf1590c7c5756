// Receives chorus's order notifications (the notification worker's webhook,
// CHORUS_WEBHOOK_URL) and verifies each with the Standard Webhooks library
// before reading it.
//
// A delivery that does not verify is answered 401: forged, tampered with,
// too old, or signed with another secret. chorus refuses such a notification
// for good (it goes to the `orders.dlq` dead-letter topic, to be redriven once
// the secrets agree), so a wrong secret shows at once instead of being
// retried. A verified delivery is stored, then answered 204; a `webhook-id`
// seen before (chorus sends the same id on every retry) is answered 204 and
// not stored again.

import { createServer } from "node:http";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

export const PATH = "/webhooks/chorus";

// What the receiver took, shared with the code waiting for it.
export class Notifications {
  byOrder = new Map(); // `${order_id} ${status}` -> {webhookId, notification}
  seenIds = new Set();
  refused = []; // why deliveries did not verify
  waiters = new Set();

  // False when this delivery id was stored before (a retry).
  add(webhookId, notification) {
    if (this.seenIds.has(webhookId)) return false;
    this.seenIds.add(webhookId);
    this.byOrder.set(`${notification.order_id} ${notification.status}`, { webhookId, notification });
    this.changed();
    return true;
  }

  refuse(reason) {
    this.refused.push(reason);
    this.changed();
  }

  changed() {
    for (const wake of this.waiters) wake();
  }

  // {webhookId, notification} of the order's final state; fails at once
  // when a delivery did not verify, or after `timeoutSecs`.
  waitFor(orderId, status, timeoutSecs = 30) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.byOrder.get(`${orderId} ${status}`);
        if (found) return done(() => resolve(found));
        if (this.refused.length > 0) {
          const why = `a webhook delivery did not verify (${this.refused[0]})`;
          return done(() =>
            reject(new Error(`${why}: does CHORUS_WEBHOOK_SECRET match the notification worker's?`)),
          );
        }
      };
      const timer = setTimeout(() => {
        const wanted = `no ${status} notification for order ${orderId} within ${timeoutSecs} s`;
        done(() =>
          reject(new Error(`${wanted}: does the notification worker's CHORUS_WEBHOOK_URL point here (${PATH})?`)),
        );
      }, timeoutSecs * 1000);
      const done = (settle) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }
}

// Serves PATH on host:port; resolves to the listening server.
export function startReceiver(host, port, secret, notifications) {
  const verifier = new Webhook(secret); // the whsec_… secret the worker signs with
  const server = createServer((request, response) => {
    const answer = (status) => response.writeHead(status).end();
    if (request.method !== "POST" || request.url !== PATH) return answer(404);
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      // Verify the exact bytes received, before parsing anything.
      const raw = Buffer.concat(chunks);
      let notification;
      try {
        notification = verifier.verify(raw, request.headers);
      } catch (invalid) {
        notifications.refuse(invalid.message);
        // Signed, but not JSON: a bug on the sender's side, not a forgery.
        return answer(invalid instanceof WebhookVerificationError ? 401 : 400);
      }
      notifications.add(request.headers["webhook-id"], notification);
      answer(204);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
