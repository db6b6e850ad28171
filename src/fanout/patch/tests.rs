use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn roundtrip(a: &Value, b: &Value) -> Vec<PatchOp> {
    let ops = diff(a, b);
    assert_eq!(apply(a, &ops).as_ref(), Ok(b), "ops {ops:?}");
    ops
}

#[test]
fn equal_values_need_no_operations() {
    let v = json!({"a": [1, {"b": null}], "c": "x"});
    assert!(diff(&v, &v).is_empty());
}

#[test]
fn object_keys_are_added_removed_and_replaced() {
    let ops = roundtrip(
        &json!({"keep": 1, "gone": 2, "change": 3}),
        &json!({"keep": 1, "change": 4, "new": [5]}),
    );
    assert_eq!(
        ops,
        vec![
            PatchOp::Remove {
                path: "/gone".into()
            },
            PatchOp::Replace {
                path: "/change".into(),
                value: json!(4)
            },
            PatchOp::Add {
                path: "/new".into(),
                value: json!([5])
            },
        ]
    );
}

#[test]
fn keys_with_slash_and_tilde_are_escaped() {
    let ops = roundtrip(&json!({}), &json!({"a/b": 1, "c~d": 2, "": 3}));
    let paths: Vec<&str> = ops
        .iter()
        .map(|op| match op {
            PatchOp::Add { path, .. } => path.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, ["/", "/a~1b", "/c~0d"]);
}

#[test]
fn nested_changes_produce_deep_paths() {
    let ops = roundtrip(
        &json!({"public": {"board": {"cells": [0, 0, 0]}}}),
        &json!({"public": {"board": {"cells": [0, 1, 0]}}}),
    );
    assert_eq!(
        ops,
        vec![PatchOp::Replace {
            path: "/public/board/cells/1".into(),
            value: json!(1)
        }]
    );
}

#[test]
fn appending_to_an_array_adds_at_the_end() {
    let a = json!({"log": ["a", "b", "c", "d", "e", "f"]});
    let b = json!({"log": ["a", "b", "c", "d", "e", "f", "g"]});
    assert_eq!(
        roundtrip(&a, &b),
        vec![PatchOp::Add {
            path: "/log/6".into(),
            value: json!("g")
        }]
    );
}

#[test]
fn prepending_to_an_array_inserts_at_zero() {
    let a = json!(["b", "c", "d", "e"]);
    let b = json!(["a", "b", "c", "d", "e"]);
    assert_eq!(
        roundtrip(&a, &b),
        vec![PatchOp::Add {
            path: "/0".into(),
            value: json!("a")
        }]
    );
}

#[test]
fn shrinking_arrays_remove_from_the_highest_index() {
    let long = |s: &str| Value::from(s.repeat(50));
    let a = Value::Array(["a", "b", "c", "d"].map(long).to_vec());
    let b = Value::Array(["a", "d"].map(long).to_vec());
    assert_eq!(
        roundtrip(&a, &b),
        vec![
            PatchOp::Remove { path: "/2".into() },
            PatchOp::Remove { path: "/1".into() },
        ]
    );
    // When removals would be longer than the array that is left, it is replaced instead.
    assert_eq!(
        roundtrip(&json!([1, 2, 3, 4, 5, 6]), &json!([1, 6])),
        vec![PatchOp::Replace {
            path: String::new(),
            value: json!([1, 6])
        }]
    );
}

#[test]
fn arrays_rewritten_everywhere_are_replaced_wholesale() {
    let ops = roundtrip(&json!({"xs": [1, 2, 3, 4]}), &json!({"xs": [5, 6, 7, 8]}));
    assert_eq!(
        ops,
        vec![PatchOp::Replace {
            path: "/xs".into(),
            value: json!([5, 6, 7, 8])
        }]
    );
}

#[test]
fn type_changes_and_the_root_are_replaced() {
    roundtrip(&json!({"a": 1}), &json!([1]));
    roundtrip(&json!("x"), &json!(null));
    assert_eq!(
        diff(&json!(1), &json!(2)),
        vec![PatchOp::Replace {
            path: String::new(),
            value: json!(2)
        }]
    );
}

#[test]
fn patches_serialize_as_rfc_6902_documents() {
    let ops = diff(&json!({"a": 1, "b": 2}), &json!({"a": 3, "c": 4}));
    assert_eq!(
        serde_json::to_value(&ops).unwrap(),
        json!([
            {"op": "remove", "path": "/b"},
            {"op": "replace", "path": "/a", "value": 3},
            {"op": "add", "path": "/c", "value": 4},
        ])
    );
}

#[test]
fn apply_refuses_what_does_not_fit_and_leaves_the_document_alone() {
    let doc = json!({"a": [1, 2]});
    let bad = [
        (
            json!([{"op": "replace", "path": "/missing", "value": 1}]),
            PatchError::NoSuchPath("/missing".into()),
        ),
        (
            json!([{"op": "remove", "path": "/a/2"}]),
            PatchError::NoSuchPath("/a/2".into()),
        ),
        (
            json!([{"op": "add", "path": "/a/01", "value": 1}]),
            PatchError::BadIndex("/a/01".into()),
        ),
        (
            json!([{"op": "add", "path": "/a/0/x", "value": 1}]),
            PatchError::NotAContainer("/a/0/x".into()),
        ),
        (
            json!([{"op": "add", "path": "a", "value": 1}]),
            PatchError::BadPointer("a".into()),
        ),
    ];
    for (patch, expected) in bad {
        let ops: Vec<PatchOp> = serde_json::from_value(patch).unwrap();
        assert_eq!(apply(&doc, &ops), Err(expected));
    }
    let ops: Vec<PatchOp> =
        serde_json::from_value(json!([{"op": "add", "path": "/a/-", "value": 3}])).unwrap();
    assert_eq!(apply(&doc, &ops).unwrap(), json!({"a": [1, 2, 3]}));
}

/// Arbitrary JSON: keys from a small alphabet (so that objects share keys and escaping is
/// exercised), small arrays, nesting up to a few levels.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        "[ab~/]{0,2}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[abc~/]{0,2}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A random edit of `v`: one subtree replaced, removed, or grown.
fn edited(v: Value) -> impl Strategy<Value = Value> {
    (json_value(), any::<prop::sample::Index>(), 0u8..3).prop_map(move |(fresh, at, how)| {
        let mut out = v.clone();
        let mut paths = Vec::new();
        collect_paths(&out, &mut Vec::new(), &mut paths);
        let path = at.get(&paths).clone();
        edit(&mut out, &path, fresh, how);
        out
    })
}

fn collect_paths(v: &Value, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(at.clone());
    let children: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => Vec::new(),
    };
    for (i, child) in children.into_iter().enumerate() {
        at.push(i);
        collect_paths(child, at, out);
        at.pop();
    }
}

fn edit(v: &mut Value, path: &[usize], fresh: Value, how: u8) {
    let Some((&first, rest)) = path.split_first() else {
        match (v, how) {
            (Value::Array(items), 1) => items.insert(items.len() / 2, fresh),
            (Value::Object(map), 1) => {
                map.insert("new".into(), fresh);
            }
            (v, _) => *v = fresh,
        }
        return;
    };
    match v {
        Value::Array(items) if rest.is_empty() && how == 2 => {
            items.remove(first);
        }
        Value::Array(items) => edit(&mut items[first], rest, fresh, how),
        Value::Object(map) => {
            let key = map.keys().nth(first).cloned().unwrap();
            if rest.is_empty() && how == 2 {
                map.remove(&key);
            } else {
                edit(map.get_mut(&key).unwrap(), rest, fresh, how);
            }
        }
        _ => unreachable!("paths only lead into containers"),
    }
}

proptest! {
    #[test]
    fn applying_the_diff_of_two_unrelated_values_gives_the_second(a in json_value(), b in json_value()) {
        let ops = diff(&a, &b);
        prop_assert_eq!(apply(&a, &ops), Ok(b));
    }

    #[test]
    fn applying_the_diff_of_an_edit_gives_the_edited_value(
        (a, b) in json_value().prop_flat_map(|a| (Just(a.clone()), edited(a)))
    ) {
        let ops = diff(&a, &b);
        prop_assert_eq!(apply(&a, &ops), Ok(b));
    }

    #[test]
    fn patches_survive_a_trip_through_their_json_form(a in json_value(), b in json_value()) {
        let ops = diff(&a, &b);
        let wire = serde_json::to_string(&ops).unwrap();
        let back: Vec<PatchOp> = serde_json::from_str(&wire).unwrap();
        prop_assert_eq!(back, ops);
    }
}
