//! Without the stack, the tests fail saying how to start it; the CLI gives up
//! within a bounded time naming the address it tried.

use std::time::{Duration, Instant};

use chorus_tests::{HOW_TO_START, Stack, describe, run};

/// Addresses where nothing listens.
fn nowhere() -> Stack {
    Stack {
        brokers: "127.0.0.1:1".to_string(),
        registry: "http://127.0.0.1:1/apis/ccompat/v7".to_string(),
        sasl_brokers: "127.0.0.1:1".to_string(),
    }
}

#[tokio::test]
async fn an_unreachable_stack_fails_with_how_to_start_it() {
    let problem = nowhere().check(Duration::from_secs(2)).await.unwrap_err();
    assert!(problem.contains("127.0.0.1:1"), "{problem}");
    assert!(problem.contains(HOW_TO_START), "{problem}");
}

#[tokio::test]
async fn the_cli_gives_up_naming_the_address_it_tried() {
    let stack = nowhere();
    let topics = chorus_avro::TopicCatalogue::default();
    for args in [
        vec!["topics", "list"],
        vec!["topics", "create"],
        vec!["schemas", "check"],
        vec!["tail", "orders"],
    ] {
        let started = Instant::now();
        let output = run(stack
            .chorus(&topics)
            .args(&args)
            .env("CHORUS_TIMEOUT_SECS", "2"));
        assert!(!output.status.success(), "{args:?}: {}", describe(&output));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took too long"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("127.0.0.1:1"), "{args:?}: {stderr}");
    }
}
