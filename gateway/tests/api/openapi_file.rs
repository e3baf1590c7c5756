//! `docs/openapi.json` is the document the gateway serves, as
//! `document_text()` renders it (pretty-printed, keys sorted), so a
//! storefront developer reads it, or generates a client from it, without
//! running a gateway. After changing the API, regenerate it with
//! `CHORUS_UPDATE_OPENAPI=1 cargo test -p chorus-gateway --test api openapi_file`.

use std::path::PathBuf;

use chorus_gateway::routes::openapi::document_text;
use serde_json::Value;

use crate::openapi::served_document;

const REGENERATE: &str =
    "CHORUS_UPDATE_OPENAPI=1 cargo test -p chorus-gateway --test api openapi_file";

/// The JSON pointer of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
            keys.find_map(|key| {
                let (x, y) = (a.get(key), b.get(key));
                let at = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (x, y) {
                    (Some(x), Some(y)) => first_difference(x, y, at),
                    _ => Some(at),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}/{i}"))),
        _ => (a != b).then_some(at),
    }
}

#[tokio::test]
async fn docs_openapi_json_is_the_served_document() {
    let (_, served) = served_document().await;
    let generated = document_text();
    let rendered: Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(
        rendered, served,
        "document_text() renders what the route serves"
    );

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var("CHORUS_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; write it with `{REGENERATE}`", path.display()));
    let committed: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not JSON ({e}); regenerate it with `{REGENERATE}`",
            path.display()
        )
    });
    if let Some(at) = first_difference(&committed, &served, String::new()) {
        panic!(
            "{} differs from the document the gateway serves (first at {at:?}); \
             regenerate it with `{REGENERATE}` and commit it",
            path.display()
        );
    }
    assert!(
        text == generated,
        "{} holds the served document, but not as generated (pretty-printed, keys sorted, \
         a final newline); regenerate it with `{REGENERATE}`",
        path.display()
    );
}
