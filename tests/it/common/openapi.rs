//! A small JSON Schema check for request bodies, against schemas taken from
//! GitHub's OpenAPI description (`fixtures/openapi/`). Covers the keywords
//! those schemas use: anyOf/oneOf/allOf, type, properties, required, enum,
//! maxLength, items.

#![allow(dead_code)]

use serde_json::Value;

/// The schema of a vendored request fixture.
pub fn request_schema(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/openapi/{name}.request.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["schema"].clone()
}

/// `Ok` when `value` satisfies `schema`, else the first reason it does not.
pub fn validate(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(any) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|s| validate(s, value, at).err())
            .collect();
        if errors.len() == any.len() {
            return Err(format!(
                "{at}: matches none of the alternatives ({})",
                errors.join("; ")
            ));
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(s, value, at)?;
        }
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: expected {t}, got {value}"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let (Some(max), Some(s)) = (schema["maxLength"].as_u64(), value.as_str()) {
        if s.chars().count() as u64 > max {
            return Err(format!("{at}: longer than {max} characters"));
        }
    }
    if let Some(required) = schema["required"].as_array() {
        for r in required.iter().filter_map(Value::as_str) {
            if value.get(r).is_none() {
                return Err(format!("{at}: `{r}` is required"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (k, v) in obj {
            if let Some(s) = props.get(k) {
                validate(s, v, &format!("{at}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            validate(items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
