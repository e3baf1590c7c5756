//! One trace per order, proven on a real OTLP/gRPC endpoint: with
//! `CHORUS_OTLP_ENDPOINT` set, an order's spans come from the gateway and all
//! four workers, in one trace, each worker's span a child of the span that
//! produced its message (across every Kafka hop), named for what happened and
//! carrying the order id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chorus_tests::saga::{Saga, sku};

use crate::otlp::{OtlpReceiver, ReceivedSpan};
use crate::webhook_receiver::WebhookReceiver;

const WEBHOOK_SECRET: &str = "whsec_Y2hvcnVzIHRyYWNlIHRlc3Qga2V5LCAyNCBieXRlcyBvciBtb3Jl";

/// (service, span name) that one confirmed order with a webhook produces.
const EXPECTED: [(&str, &str); 9] = [
    ("gateway", "POST /v1/orders"),
    ("order", "process OrderPlaced"),
    ("inventory", "process OrderPlaced"),
    ("payment", "process StockReserved"),
    ("payment", "authorize payment"),
    ("order", "process PaymentAuthorized"),
    ("inventory", "process OrderConfirmed"),
    ("notification", "process OrderConfirmed"),
    ("notification", "deliver webhook"),
];

/// `chorus-gateway` and `gateway` are the same service.
fn service(span: &ReceivedSpan) -> &str {
    span.service
        .strip_prefix("chorus-")
        .unwrap_or(&span.service)
}

fn shown(spans: &[&ReceivedSpan]) -> String {
    spans
        .iter()
        .map(|s| format!("  {s}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The trace ids of the spans that name `order_id`.
fn traces_of(spans: &[ReceivedSpan], order_id: &str) -> BTreeSet<String> {
    spans
        .iter()
        .filter(|s| s.attribute("order_id") == Some(order_id))
        .map(|s| s.trace_id.clone())
        .collect()
}

fn has_every_expected_span(trace: &[&ReceivedSpan]) -> bool {
    EXPECTED
        .iter()
        .all(|(svc, name)| trace.iter().any(|s| service(s) == *svc && s.name == *name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_from_the_gateway_through_every_worker() {
    let receiver = OtlpReceiver::start().await;
    let hooks = WebhookReceiver::start().await;
    let saga = Saga::start_with(&[
        ("CHORUS_OTLP_ENDPOINT", &receiver.endpoint),
        ("CHORUS_WEBHOOK_URL", &hooks.url),
        ("CHORUS_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ])
    .await;
    let sku = sku("TRACE");
    saga.set_stock(&sku, 10, "4.50").await;

    let order_id = saga.place_ok("alice", &[(&sku, 2)], "tok_ok").await;
    let order = saga
        .wait_final("alice", &order_id, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");

    // The services export in batches: wait until the whole trace is in.
    let spans = receiver
        .spans_when(Duration::from_secs(60), |spans| {
            traces_of(spans, &order_id).iter().any(|trace_id| {
                let trace: Vec<&ReceivedSpan> =
                    spans.iter().filter(|s| &s.trace_id == trace_id).collect();
                has_every_expected_span(&trace)
            })
        })
        .await;
    let of_order: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.attribute("order_id") == Some(order_id.as_str()))
        .collect();
    assert!(
        !spans.is_empty(),
        "the receiver at {} got no span at all",
        receiver.endpoint
    );
    let trace_ids = traces_of(&spans, &order_id);
    assert_eq!(
        trace_ids.len(),
        1,
        "order {order_id} is spread over {} traces:\n{}",
        trace_ids.len(),
        shown(&of_order)
    );
    let trace_id = trace_ids.into_iter().next().unwrap();
    let trace: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).collect();

    let services: BTreeSet<&str> = trace.iter().map(|s| service(s)).collect();
    for expected in ["gateway", "order", "inventory", "payment", "notification"] {
        assert!(
            services.contains(expected),
            "no span from {expected} in the trace of {order_id}:\n{}",
            shown(&trace)
        );
    }
    for (svc, name) in EXPECTED {
        assert!(
            trace.iter().any(|s| service(s) == svc && s.name == name),
            "no {name:?} span from {svc} in the trace of {order_id}:\n{}",
            shown(&trace)
        );
    }

    assert_linked_from_the_gateway(&trace, &order_id);
    assert_process_spans_say_what_they_processed(&trace, &order_id);
    let deliveries = hooks.deliveries();
    assert!(!deliveries.is_empty(), "the webhook was delivered");
    let verifier = standardwebhooks::Webhook::new(WEBHOOK_SECRET).unwrap();
    for delivery in &deliveries {
        verifier
            .verify(&delivery.body, &delivery.headers)
            .expect("a Standard Webhooks library verifies the delivery");
    }
}

/// One root, the gateway's `POST /v1/orders`, and every other span's parent
/// in the trace: a Kafka hop that lost its `traceparent` would start a root
/// (or a trace) of its own, one whose producer's span was never exported
/// would leave its parent missing.
fn assert_linked_from_the_gateway(trace: &[&ReceivedSpan], order_id: &str) {
    let by_id: BTreeMap<&str, &ReceivedSpan> =
        trace.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let roots: Vec<&ReceivedSpan> = trace
        .iter()
        .copied()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "roots of the trace:\n{}", shown(&roots));
    let root = roots[0];
    assert_eq!(
        (service(root), root.name.as_str()),
        ("gateway", "POST /v1/orders"),
        "the trace starts at the gateway"
    );
    assert_eq!(root.attribute("order_id"), Some(order_id), "{root}");
    for span in trace.iter().filter(|s| !s.parent_span_id.is_empty()) {
        assert!(
            by_id.contains_key(span.parent_span_id.as_str()),
            "the parent of {span} is not in the trace:\n{}",
            shown(trace)
        );
    }
}

fn assert_process_spans_say_what_they_processed(trace: &[&ReceivedSpan], order_id: &str) {
    for span in trace.iter().filter(|s| s.name.starts_with("process ")) {
        let event_type = span.name.trim_start_matches("process ");
        assert_eq!(span.attribute("order_id"), Some(order_id), "{span}");
        assert_eq!(span.attribute("event_type"), Some(event_type), "{span}");
        for key in ["event_id", "topic"] {
            assert!(
                span.attribute(key).is_some_and(|v| !v.is_empty()),
                "{span} lacks {key}"
            );
        }
        for key in ["partition", "offset"] {
            assert!(
                span.attribute(key)
                    .is_some_and(|v| v.parse::<i64>().is_ok()),
                "{span} lacks a numeric {key}"
            );
        }
    }
}
