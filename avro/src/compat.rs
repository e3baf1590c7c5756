//! Names the fields that make a local schema BACKWARD-incompatible with the
//! registered one (a reader with the local schema could not read data
//! written with the registered one), so `chorus schemas check` can point at
//! the offending field even when the registry only answers yes or no.

use serde_json::Value;

/// One incompatibility, at a field path such as `OrderPlaced.items[].quantity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDiff {
    pub field: String,
    pub problem: String,
}

impl std::fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

/// The BACKWARD incompatibilities of `reader` (local) against `writer` (registered).
pub fn backward_incompatibilities(reader: &str, writer: &str) -> Result<Vec<SchemaDiff>, String> {
    let reader: Value = serde_json::from_str(reader).map_err(|e| format!("local schema: {e}"))?;
    let writer: Value =
        serde_json::from_str(writer).map_err(|e| format!("registered schema: {e}"))?;
    let mut diffs = Vec::new();
    let root = reader["name"].as_str().unwrap_or("record").to_string();
    compare(&root, &reader, &writer, &mut diffs);
    Ok(diffs)
}

fn compare(path: &str, reader: &Value, writer: &Value, diffs: &mut Vec<SchemaDiff>) {
    match (kind(reader), kind(writer)) {
        ("record", "record") => compare_records(path, reader, writer, diffs),
        ("array", "array") => compare(
            &format!("{path}[]"),
            &reader["items"],
            &writer["items"],
            diffs,
        ),
        ("map", "map") => compare(
            &format!("{path}{{}}"),
            &reader["values"],
            &writer["values"],
            diffs,
        ),
        ("union", "union") => {
            // Every branch the writer may have used needs a match in the reader.
            let branches = reader.as_array().cloned().unwrap_or_default();
            for w in writer.as_array().into_iter().flatten() {
                if !branches.iter().any(|r| readable(r, w)) {
                    diffs.push(SchemaDiff {
                        field: path.to_string(),
                        problem: format!("union branch {} was removed", kind(w)),
                    });
                }
            }
        }
        ("union", _) => {
            let branches = reader.as_array().cloned().unwrap_or_default();
            if !branches.iter().any(|r| readable(r, writer)) {
                diffs.push(changed(path, reader, writer));
            }
        }
        (r, w) if r == w || promotes(w, r) => {}
        _ => diffs.push(changed(path, reader, writer)),
    }
}

fn compare_records(path: &str, reader: &Value, writer: &Value, diffs: &mut Vec<SchemaDiff>) {
    let writer_fields = writer["fields"].as_array().cloned().unwrap_or_default();
    for field in reader["fields"].as_array().into_iter().flatten() {
        let name = field["name"].as_str().unwrap_or_default();
        let field_path = format!("{path}.{name}");
        match writer_fields.iter().find(|w| w["name"] == field["name"]) {
            Some(w) => compare(&field_path, &field["type"], &w["type"], diffs),
            None if field.get("default").is_none() => diffs.push(SchemaDiff {
                field: field_path,
                problem: "added without a default, so data written before it cannot be read"
                    .to_string(),
            }),
            None => {}
        }
    }
}

fn readable(reader: &Value, writer: &Value) -> bool {
    let mut diffs = Vec::new();
    compare("", reader, writer, &mut diffs);
    diffs.is_empty()
}

fn changed(path: &str, reader: &Value, writer: &Value) -> SchemaDiff {
    SchemaDiff {
        field: path.to_string(),
        problem: format!("type changed from {} to {}", kind(writer), kind(reader)),
    }
}

/// Avro's permitted promotions of a writer type to a reader type.
fn promotes(writer: &str, reader: &str) -> bool {
    matches!(
        (writer, reader),
        ("int", "long" | "float" | "double")
            | ("long", "float" | "double")
            | ("float", "double")
            | ("string", "bytes")
            | ("bytes", "string")
    )
}

/// The type's kind: a primitive name, `record`, `array`, `map`, `enum`, `fixed` or `union`.
fn kind(schema: &Value) -> &str {
    match schema {
        Value::String(s) => s,
        Value::Array(_) => "union",
        Value::Object(o) => o.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"E","fields":[
        {"name":"id","type":"string"},
        {"name":"items","type":{"type":"array","items":{"type":"record","name":"L","fields":[{"name":"q","type":"int"}]}}}]}"#;

    fn with_extra(field: &str) -> String {
        V1.replacen("[\n", &format!("[{field},\n"), 1)
    }

    #[test]
    fn a_new_field_without_a_default_is_named() {
        let diffs =
            backward_incompatibilities(&with_extra(r#"{"name":"note","type":"string"}"#), V1)
                .unwrap();
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].field, "E.note");
    }

    #[test]
    fn a_new_optional_field_with_a_default_is_compatible() {
        let local = with_extra(r#"{"name":"note","type":["null","string"],"default":null}"#);
        assert_eq!(backward_incompatibilities(&local, V1).unwrap(), vec![]);
    }

    #[test]
    fn a_narrowed_nested_type_is_named_with_its_path() {
        let local = V1.replace(
            r#""name":"q","type":"int""#,
            r#""name":"q","type":"string""#,
        );
        let diffs = backward_incompatibilities(&local, V1).unwrap();
        assert_eq!(diffs[0].field, "E.items[].q");
        let widened = V1.replace(r#""name":"q","type":"int""#, r#""name":"q","type":"long""#);
        assert!(backward_incompatibilities(&widened, V1).unwrap().is_empty());
    }
}
