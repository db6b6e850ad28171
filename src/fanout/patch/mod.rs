//! RFC 6902 JSON Patch: a small generator ([`diff`]) and the matching applier ([`apply`]).
//!
//! The generator emits only `add`, `remove` and `replace`. Objects are compared key by key.
//! Arrays keep their common prefix and suffix, diff the elements in between position by
//! position, then remove (highest index first) or append what is left over; when those
//! operations would serialize larger than the new array itself, the array is replaced
//! wholesale instead. Values of different types, and different scalars, are replaced.
//!
//! Invariant (tested by property): `apply(diff(a, b), a) == b` for every pair of JSON values.
//! The patch is correct but not minimal: a move inside an array shows up as edits, never as a
//! `move` operation.

mod apply;
pub mod pointer;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use apply::{apply, PatchError};
use pointer::Path;

/// One operation of a JSON Patch document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Add { path: String, value: Value },
    Remove { path: String },
    Replace { path: String, value: Value },
}

/// The operations that turn `from` into `to`; empty when they are equal.
pub fn diff(from: &Value, to: &Value) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    diff_into(from, to, &Path::default(), &mut ops);
    ops
}

fn diff_into(from: &Value, to: &Value, path: &Path, ops: &mut Vec<PatchOp>) {
    if from == to {
        return;
    }
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => diff_objects(a, b, path, ops),
        (Value::Array(a), Value::Array(b)) => {
            let mut array_ops = Vec::new();
            diff_arrays(a, b, path, &mut array_ops);
            if array_ops.len() > 1 && ops_len(&array_ops) > json_len(to) + path.as_str().len() {
                ops.push(replace(path, to));
            } else {
                ops.append(&mut array_ops);
            }
        }
        _ => ops.push(replace(path, to)),
    }
}

fn diff_objects(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    path: &Path,
    ops: &mut Vec<PatchOp>,
) {
    for key in a.keys().filter(|k| !b.contains_key(*k)) {
        ops.push(PatchOp::Remove {
            path: path.child(key).as_str().to_owned(),
        });
    }
    for (key, new) in b {
        let child = path.child(key);
        match a.get(key) {
            Some(old) => diff_into(old, new, &child, ops),
            None => ops.push(PatchOp::Add {
                path: child.as_str().to_owned(),
                value: new.clone(),
            }),
        }
    }
}

/// Keeps the common prefix and suffix; the middle parts are diffed position by position and
/// the longer one's rest is removed or inserted before the suffix.
fn diff_arrays(a: &[Value], b: &[Value], path: &Path, ops: &mut Vec<PatchOp>) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let a_mid = &a[prefix..a.len() - suffix];
    let b_mid = &b[prefix..b.len() - suffix];
    let common = a_mid.len().min(b_mid.len());
    for i in 0..common {
        diff_into(&a_mid[i], &b_mid[i], &path.index(prefix + i), ops);
    }
    // Removing from the highest index down keeps the lower indices valid.
    for i in (common..a_mid.len()).rev() {
        ops.push(PatchOp::Remove {
            path: path.index(prefix + i).as_str().to_owned(),
        });
    }
    for (i, value) in b_mid.iter().enumerate().skip(common) {
        ops.push(PatchOp::Add {
            path: path.index(prefix + i).as_str().to_owned(),
            value: value.clone(),
        });
    }
}

fn replace(path: &Path, to: &Value) -> PatchOp {
    PatchOp::Replace {
        path: path.as_str().to_owned(),
        value: to.clone(),
    }
}

/// Serialized length of a value, counted without building the string.
fn json_len(value: &Value) -> usize {
    let mut counter = ByteCounter(0);
    // Writing a `Value` to an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn ops_len(ops: &[PatchOp]) -> usize {
    let mut counter = ByteCounter(0);
    let _ = serde_json::to_writer(&mut counter, ops);
    counter.0
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
