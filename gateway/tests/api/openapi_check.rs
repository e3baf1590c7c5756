//! Validates an OpenAPI 3.1 document: `oas3` parses it into the typed model
//! of the specification (a wrong type or a missing required member such as
//! `info` fails) and resolves every parameter, body, response and schema of
//! every operation; then the rules the model cannot express are checked:
//! every `$ref` resolves, every path template variable is a required path
//! parameter, every response key is a status code, operation ids are unique,
//! security requirements name a declared scheme, and a schema's `required`
//! names only properties it has.

use std::collections::BTreeSet;

use serde_json::Value;

pub fn validate(text: &str) -> Result<(), Vec<String>> {
    let spec = oas3::from_json(text).map_err(|e| vec![format!("not an OpenAPI document: {e}")])?;
    let mut problems = Vec::new();
    if let Err(e) = spec.validate_version() {
        problems.push(format!("openapi {:?}: {e}", spec.openapi));
    }
    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let at = format!("{method} {path}");
        match &operation.operation_id {
            Some(id) if !operation_ids.insert(id.clone()) => {
                problems.push(format!("{at}: operationId {id} is used twice"));
            }
            Some(_) => {}
            None => problems.push(format!("{at}: no operationId")),
        }
        let parameters = match operation.parameters(&spec) {
            Ok(parameters) => parameters,
            Err(e) => {
                problems.push(format!("{at}: parameters: {e}"));
                Vec::new()
            }
        };
        for variable in template_variables(&path) {
            let declared = parameters.iter().any(|p| {
                p.name == variable
                    && p.location == oas3::spec::ParameterIn::Path
                    && p.required == Some(true)
            });
            if !declared {
                problems.push(format!(
                    "{at}: {{{variable}}} is not a required path parameter"
                ));
            }
        }
        if let Err(e) = operation.request_body(&spec) {
            problems.push(format!("{at}: requestBody: {e}"));
        }
        let declared = operation.responses.as_ref().map_or(0, |r| r.len());
        let responses = operation.responses(&spec);
        if declared == 0 || responses.len() != declared {
            problems.push(format!(
                "{at}: {declared} responses, {} resolve",
                responses.len()
            ));
        }
        for (status, response) in &responses {
            let valid = status == "default"
                || status
                    .parse::<u16>()
                    .is_ok_and(|s| (100..=599).contains(&s))
                || (status.len() == 3
                    && status.ends_with("XX")
                    && status.as_bytes()[0].is_ascii_digit());
            if !valid {
                problems.push(format!(
                    "{at}: response key {status:?} is not a status code"
                ));
            }
            for (media, content) in &response.content {
                if let Err(e) = content.schema(&spec) {
                    problems.push(format!("{at} {status} {media}: {e}"));
                }
            }
        }
    }
    let document: Value = serde_json::from_str(text).expect("parsed above");
    check_refs(&document, &document, &mut problems);
    check_security(&document, &mut problems);
    if let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            check_required(&format!("schema {name}"), schema, &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn template_variables(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

fn check_refs(document: &Value, value: &Value, problems: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let resolves = r
                    .strip_prefix('#')
                    .is_some_and(|pointer| document.pointer(pointer).is_some());
                if !resolves {
                    problems.push(format!("unresolved $ref {r}"));
                }
            }
            map.values().for_each(|v| check_refs(document, v, problems));
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(document, v, problems)),
        _ => {}
    }
}

fn check_security(document: &Value, problems: &mut Vec<String>) {
    let schemes = document.pointer("/components/securitySchemes");
    let operations = document["paths"].as_object().into_iter().flat_map(|paths| {
        paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
    });
    for operation in operations {
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
                if schemes.and_then(|s| s.get(name)).is_none() {
                    problems.push(format!("security scheme {name} is not declared"));
                }
            }
        }
    }
}

fn check_required(at: &str, schema: &Value, problems: &mut Vec<String>) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in required.iter().filter_map(Value::as_str) {
            if properties.is_none_or(|p| !p.contains_key(name)) {
                problems.push(format!("{at}: required {name} is not a property"));
            }
        }
    }
    for nested in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.iter())
    {
        check_required(&format!("{at}.{}", nested.0), nested.1, problems);
    }
}
