//! `chorus schemas register|check` against the real registry: a compatible
//! edit passes the check, an incompatible one fails naming the field.

use std::path::Path;

use chorus_avro::EventType;
use chorus_tests::{Stack, describe, run, stdout};

fn write_schemas(dir: &Path, edit: impl Fn(EventType, &str) -> String) {
    std::fs::create_dir_all(dir).unwrap();
    for &t in EventType::ALL {
        let text = edit(t, t.schema_text());
        std::fs::write(dir.join(format!("{}.avsc", t.name())), text).unwrap();
    }
}

fn add_field(text: &str, field: &str) -> String {
    let mut schema: serde_json::Value = serde_json::from_str(text).unwrap();
    let field: serde_json::Value = serde_json::from_str(field).unwrap();
    schema["fields"].as_array_mut().unwrap().push(field);
    serde_json::to_string_pretty(&schema).unwrap()
}

#[tokio::test]
async fn check_accepts_a_compatible_edit_and_names_the_field_of_an_incompatible_one() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let dir = std::env::temp_dir().join(format!("chorus-schemas-{}", topics.namespace()));

    let before = run(stack.chorus(&topics).args(["schemas", "check"]));
    assert!(before.status.success(), "{}", describe(&before));
    assert!(stdout(&before).contains("new "), "{}", describe(&before));

    let registered = run(stack.chorus(&topics).args(["schemas", "register"]));
    assert!(registered.status.success(), "{}", describe(&registered));
    assert_eq!(
        stdout(&registered).matches("registered ").count(),
        EventType::ALL.len()
    );

    let unchanged = run(stack.chorus(&topics).args(["schemas", "check"]));
    assert!(unchanged.status.success(), "{}", describe(&unchanged));
    assert_eq!(
        stdout(&unchanged).matches("compatible ").count(),
        EventType::ALL.len()
    );

    let compatible = dir.join("compatible");
    write_schemas(&compatible, |t, text| match t {
        EventType::OrderPlaced => add_field(
            text,
            r#"{"name":"gift_note","type":["null","string"],"default":null}"#,
        ),
        _ => text.to_string(),
    });
    let ok = run(stack
        .chorus(&topics)
        .args(["schemas", "check", "--dir"])
        .arg(&compatible));
    assert!(ok.status.success(), "{}", describe(&ok));

    let incompatible = dir.join("incompatible");
    write_schemas(&incompatible, |t, text| match t {
        EventType::OrderPlaced => add_field(text, r#"{"name":"gift_note","type":"string"}"#),
        _ => text.to_string(),
    });
    let rejected = run(stack
        .chorus(&topics)
        .args(["schemas", "check", "--dir"])
        .arg(&incompatible));
    assert!(!rejected.status.success(), "{}", describe(&rejected));
    let out = stdout(&rejected);
    assert!(out.contains("INCOMPATIBLE"), "{}", describe(&rejected));
    assert!(
        out.contains("OrderPlaced.gift_note"),
        "{}",
        describe(&rejected)
    );
    // Checking registered nothing: the subject still has its first version only.
    let again = run(stack.chorus(&topics).args(["schemas", "check"]));
    assert!(again.status.success(), "{}", describe(&again));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_schemas_of_this_version_are_backward_compatible_with_those_registered_before() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    // The schemas as the previous release registered them (before
    // cancellation, voids and sealed payment tokens).
    let before = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schemas-before-cancellation");
    let registered = run(stack
        .chorus(&topics)
        .args(["schemas", "register", "--dir"])
        .arg(&before));
    assert!(registered.status.success(), "{}", describe(&registered));

    let check = run(stack.chorus(&topics).args(["schemas", "check"]));
    assert!(check.status.success(), "{}", describe(&check));
    let out = stdout(&check);
    // The two event types that are new are new subjects; every other one,
    // OrderPlaced and StockReserved with their new optional field included,
    // reads what the previous version wrote.
    assert_eq!(out.matches("new ").count(), 2, "{out}");
    assert_eq!(
        out.matches("compatible ").count(),
        EventType::ALL.len() - 2,
        "{out}"
    );
    for new in ["OrderCancellationRequested", "PaymentVoided"] {
        assert!(
            out.lines().any(|l| l.starts_with("new") && l.contains(new)),
            "{out}"
        );
    }
}
