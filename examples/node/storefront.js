// A storefront's whole conversation with chorus, step by step:
//
// 1. get a customer token (the development way: `chorus token`);
// 2. place an order with an Idempotency-Key, and show that a retry with the
//    same key answers the same order instead of placing a second one;
// 3. long-poll the order to its final state;
// 4. place a second order and cancel it;
// 5. verify the notification webhook of each final state with the Standard
//    Webhooks library, as the notification worker delivers it.
//
// Settings come from the environment; the defaults match `make run` (see
// ../README.md). It prints one line per step and exits 0, or prints what
// went wrong and exits 1.

import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Gateway, developmentToken } from "./gateway.js";
import { Notifications, PATH, startReceiver } from "./webhook_receiver.js";

// The development secret examples/README.md starts `make run` with.
const DEVELOPMENT_WEBHOOK_SECRET = "whsec_Y2hvcnVzLWV4YW1wbGVzLWRldmVsb3BtZW50LXNlY3JldA==";
// The sandbox payment provider approves this token (workers/payment/README.md).
const PAYMENT_TOKEN = "tok_ok";

// CHORUS_BIN, else the `make run` build of this repository, else PATH.
function chorusCli() {
  const built = fileURLToPath(new URL("../../target/debug/chorus", import.meta.url));
  return process.env.CHORUS_BIN || (existsSync(built) ? built : "chorus");
}

function step(name, text) {
  console.log(`${name.padEnd(8)} ${text}`);
}

// The final state in one line: status, then reason or total.
function outcome(order) {
  if (order.status === "CANCELLED") return `CANCELLED reason ${order.reason}`;
  return `${order.status} total ${order.total} ${order.currency}`;
}

async function main() {
  const env = process.env;
  const gatewayUrl = env.CHORUS_GATEWAY_URL || "http://127.0.0.1:8000";
  const secret = env.CHORUS_WEBHOOK_SECRET || DEVELOPMENT_WEBHOOK_SECRET;
  const addr = env.STOREFRONT_WEBHOOK_ADDR || "127.0.0.1:8790";
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  const customer = env.STOREFRONT_CUSTOMER || "alice";
  const sku = env.STOREFRONT_SKU || "SKU-1";

  // The receiver listens before any order exists, so no notification waits.
  const notifications = new Notifications();
  const receiver = await startReceiver(host, port, secret, notifications);
  step("webhooks", `listening on http://${host}:${port}${PATH}`);

  let token = env.CHORUS_TOKEN;
  if (token) {
    step("token", "CHORUS_TOKEN");
  } else {
    token = developmentToken(chorusCli(), customer);
    step("token", `development token for ${customer} (chorus token)`);
  }
  const gateway = new Gateway(gatewayUrl, token);

  // One key per order attempt, kept for every retry of that attempt.
  const key = randomUUID();
  const items = [{ sku, quantity: 2 }];
  const placed = await gateway.placeOrder(items, "EUR", PAYMENT_TOKEN, key);
  step("placed", `${placed.order_id} ${placed.status} (Idempotency-Key ${key})`);
  const again = await gateway.placeOrder(items, "EUR", PAYMENT_TOKEN, key);
  if (again.order_id !== placed.order_id) {
    throw new Error(`the same Idempotency-Key placed a second order: ${JSON.stringify(again)}`);
  }
  step("retried", `${again.order_id} the same order for the same Idempotency-Key`);
  const bought = await gateway.waitFinal(placed.order_id);
  step("final", `${bought.order_id} ${outcome(bought)}`);

  // Cancelled while the payment is still being asked for. An order the
  // payment already confirmed stays confirmed: the cancel answers 409
  // already_final, or 202 and the order shows "cancellation": "rejected".
  const second = await gateway.placeOrder(items, "EUR", PAYMENT_TOKEN, randomUUID());
  step("placed", `${second.order_id} ${second.status}`);
  const { status, json: answer } = await gateway.cancel(second.order_id);
  step("cancel", `${second.order_id} ${status} ${answer.status ?? answer.error.code}`);
  const cancelled = await gateway.waitFinal(second.order_id);
  step("final", `${cancelled.order_id} ${outcome(cancelled)} cancellation ${cancelled.cancellation ?? "-"}`);

  for (const order of [bought, cancelled]) {
    const { webhookId, notification } = await notifications.waitFor(order.order_id, order.status);
    step("webhook", `${notification.order_id} ${outcome(notification)} verified (webhook-id ${webhookId})`);
  }
  receiver.close();
}

try {
  await main();
} catch (failure) {
  // A storefront would log it; here: say it and fail.
  console.error(`failed: ${failure.message}`);
  process.exit(1);
}
