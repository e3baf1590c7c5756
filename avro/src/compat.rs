//! Whether a local schema can read what the registered one wrote (BACKWARD),
//! and which field is in the way, by the compatibility checker of
//! `apache-avro`: `chorus schemas check` takes the verdict from the
//! registry's own endpoint, and names the offending field from here (the
//! registry's messages may not).

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::SchemaCompatibility;

/// One incompatibility, at a field path such as `OrderPlaced.items.quantity`.
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

/// The BACKWARD incompatibility of `reader` (local) against `writer`
/// (registered), if any: a reader with the local schema could not read data
/// written with the registered one.
pub fn backward_incompatibilities(reader: &str, writer: &str) -> Result<Vec<SchemaDiff>, String> {
    let reader = Schema::parse_str(reader).map_err(|e| format!("local schema: {e}"))?;
    let writer = Schema::parse_str(writer).map_err(|e| format!("registered schema: {e}"))?;
    let root = match &reader {
        Schema::Record(record) => record.name.name().to_string(),
        _ => "schema".to_string(),
    };
    match SchemaCompatibility::can_read(&writer, &reader) {
        Ok(_) => Ok(Vec::new()),
        Err(error) => Ok(vec![diff(&root, &error)]),
    }
}

/// The path of fields the checker descended through, and what it found there.
fn diff(root: &str, error: &CompatibilityError) -> SchemaDiff {
    let mut path = vec![root.to_string()];
    let mut at = error;
    loop {
        match at {
            CompatibilityError::FieldTypeMismatch(field, inner) => {
                path.push(field.clone());
                at = inner;
            }
            CompatibilityError::MissingDefaultValue(field) => {
                path.push(field.clone());
                break;
            }
            _ => break,
        }
    }
    SchemaDiff {
        field: path.join("."),
        problem: at.to_string(),
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
        assert_eq!(diffs[0].field, "E.items.q");
        let widened = V1.replace(r#""name":"q","type":"int""#, r#""name":"q","type":"long""#);
        assert!(backward_incompatibilities(&widened, V1).unwrap().is_empty());
    }
}
