//! Comparing a step's effect list with the one computed from real xstate under Node.
//!
//! The expectation is exact JSON, except where XState itself draws a value at random (the id
//! of an id-less XState 5 delayed send): there it holds `{"$any": "string"}`, which any string
//! matches. Order matters: effects are carried out in list order.

use serde_json::{json, Value};

/// Whether `actual` fits `expected`: equal JSON, with `{"$any": "string"}` standing for any
/// string.
pub fn fits(actual: &Value, expected: &Value) -> bool {
    if expected == &json!({"$any": "string"}) {
        return actual.is_string();
    }
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            actual.len() == expected.len()
                && expected
                    .iter()
                    .all(|(key, e)| actual.get(key).is_some_and(|a| fits(a, e)))
        }
        (Value::Array(actual), Value::Array(expected)) => {
            actual.len() == expected.len() && actual.iter().zip(expected).all(|(a, e)| fits(a, e))
        }
        _ => actual == expected,
    }
}

/// Describes how `actual` differs from `expected`, effect by effect; `None` when it fits.
pub fn compare(actual: &[Value], expected: &[Value]) -> Option<String> {
    let mut differences = Vec::new();
    for i in 0..actual.len().max(expected.len()) {
        match (actual.get(i), expected.get(i)) {
            (Some(a), Some(e)) if fits(a, e) => {}
            (Some(a), Some(e)) => differences.push(format!("#{i} is {a}, expected {e}")),
            (Some(a), None) => differences.push(format!("#{i} is extra: {a}")),
            (None, Some(e)) => differences.push(format!("#{i} is missing: {e}")),
            (None, None) => unreachable!("i is below the longer length"),
        }
    }
    if differences.is_empty() {
        return None;
    }
    Some(format!(
        "{}\n      actual:   {}\n      expected: {}",
        differences.join("; "),
        Value::Array(actual.to_vec()),
        Value::Array(expected.to_vec()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_matches_strings_only() {
        let expected = json!({"type": "schedule", "id": {"$any": "string"}, "delay": 5});
        assert!(fits(
            &json!({"type": "schedule", "id": "k3x", "delay": 5}),
            &expected
        ));
        assert!(!fits(
            &json!({"type": "schedule", "id": 7, "delay": 5}),
            &expected
        ));
        assert!(!fits(&json!({"type": "schedule", "delay": 5}), &expected));
        assert!(!fits(
            &json!({"type": "schedule", "id": "k", "delay": 5, "to": null}),
            &expected
        ));
    }

    #[test]
    fn missing_extra_reordered_and_changed_effects_are_reported() {
        let a = json!({"type": "cancel", "id": "a"});
        let b = json!({"type": "cancel", "id": "b"});
        let same = [a.clone(), b.clone()];
        assert_eq!(compare(&same, &same), None);
        assert!(
            compare(std::slice::from_ref(&a), &same).is_some_and(|m| m.contains("#1 is missing"))
        );
        assert!(compare(&[a.clone(), b.clone(), a.clone()], &same)
            .is_some_and(|m| m.contains("#2 is extra")));
        assert!(compare(&[b.clone(), a.clone()], &same).is_some());
        let changed = [a, json!({"type": "cancel", "id": "c"})];
        assert!(compare(&changed, &same).is_some_and(|m| m.contains("#1 is")));
    }
}
