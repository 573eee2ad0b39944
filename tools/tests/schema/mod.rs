//! The tools' statistics JSON checked against `docs/stats.schema.json`.
//!
//! Every property the schema lists for a closed object is required here
//! (the schema file lists each field once; adding one is one edit), and the
//! unit rules of the vocabulary are checked by name.

use serde_json::Value;

const SCHEMA: &str = include_str!("../../../docs/stats.schema.json");

/// The schema with the top-level choice replaced by `$defs/<def>`, and
/// every property of a closed object required.
fn schema_for(def: &str) -> Value {
    let mut s: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let top = s.as_object_mut().unwrap();
    top.remove("oneOf");
    assert!(top["$defs"].get(def).is_some(), "no $defs/{def}");
    top.insert("$ref".into(), Value::String(format!("#/$defs/{def}")));
    require_all(&mut s);
    s
}

fn require_all(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("additionalProperties") == Some(&Value::Bool(false))
                && let Some(Value::Object(props)) = o.get("properties")
            {
                let names = props.keys().cloned().map(Value::String).collect();
                o.insert("required".into(), Value::Array(names));
            }
            o.values_mut().for_each(require_all);
        }
        Value::Array(a) => a.iter_mut().for_each(require_all),
        _ => {}
    }
}

/// `json` (a document the tools wrote) is a valid `def` of the schema.
pub fn assert_valid(def: &str, json: &Value) {
    let validator = jsonschema::validator_for(&schema_for(def)).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{def} does not match docs/stats.schema.json:\n{}\n{json:#}",
        errors.join("\n")
    );
}

/// The unit rules, by field name: a `*_us` field is the schema's integer
/// microseconds, `*_ratio` a ratio or fraction, and no field says `_ms`,
/// `_secs` or is a serde `Duration` (`secs`/`nanos`).
pub fn assert_units_by_name() {
    let s: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut checked = 0;
    walk_props(&s, &mut |name, prop| {
        checked += 1;
        let r = prop.get("$ref").and_then(Value::as_str).unwrap_or("");
        assert!(
            !(name.ends_with("_ms")
                || name.ends_with("_secs")
                || name == "secs"
                || name == "nanos"),
            "{name}: durations are *_us"
        );
        if name.ends_with("_us") {
            assert!(
                r == "#/$defs/us" || r == "#/$defs/signed_us",
                "{name} must be integer microseconds"
            );
        }
        if name.ends_with("_ratio") {
            assert!(
                r == "#/$defs/ratio" || r == "#/$defs/fraction",
                "{name} must be a ratio"
            );
        }
        if name.ends_with("_delay") || name == "tick_deviation" {
            assert_eq!(r, "#/$defs/percentiles", "{name}");
        }
    });
    assert!(checked > 50, "walked {checked} properties");
}

fn walk_props(v: &Value, f: &mut dyn FnMut(&str, &Value)) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get("properties") {
                props.iter().for_each(|(k, p)| f(k, p));
            }
            o.values().for_each(|c| walk_props(c, f));
        }
        Value::Array(a) => a.iter().for_each(|c| walk_props(c, f)),
        _ => {}
    }
}

/// Parse a JSON file the tools wrote.
pub fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
