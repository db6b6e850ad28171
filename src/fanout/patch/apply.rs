//! Applying a JSON Patch document, for clients of the diff extension written in Rust and for
//! tests. Supports the three operations [`super::diff`] emits; the whole patch applies or
//! nothing does.

use serde_json::Value;

use super::pointer;
use super::PatchOp;

/// Why a patch does not apply to a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("malformed JSON pointer {0:?}")]
    BadPointer(String),
    #[error("path {0:?} does not exist in the document")]
    NoSuchPath(String),
    #[error("path {0:?} goes through a value that is neither object nor array")]
    NotAContainer(String),
    #[error("array index in {0:?} is not a valid index")]
    BadIndex(String),
}

/// `doc` with `ops` applied in order, or the first failure (and `doc` untouched).
pub fn apply(doc: &Value, ops: &[PatchOp]) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    for op in ops {
        apply_one(&mut out, op)?;
    }
    Ok(out)
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<(), PatchError> {
    let path = match op {
        PatchOp::Add { path, .. } | PatchOp::Remove { path } | PatchOp::Replace { path, .. } => {
            path
        }
    };
    let mut tokens = pointer::parse(path).ok_or_else(|| PatchError::BadPointer(path.clone()))?;
    let Some(last) = tokens.pop() else {
        // The root: add and replace swap the whole document; removing it is not allowed.
        return match op {
            PatchOp::Add { value, .. } | PatchOp::Replace { value, .. } => {
                *doc = value.clone();
                Ok(())
            }
            PatchOp::Remove { .. } => Err(PatchError::NoSuchPath(path.clone())),
        };
    };
    let parent = walk(doc, &tokens, path)?;
    match (parent, op) {
        (Value::Object(map), PatchOp::Add { value, .. }) => {
            map.insert(last, value.clone());
        }
        (Value::Object(map), PatchOp::Replace { value, .. }) => {
            let slot = map
                .get_mut(&last)
                .ok_or_else(|| PatchError::NoSuchPath(path.clone()))?;
            *slot = value.clone();
        }
        (Value::Object(map), PatchOp::Remove { .. }) => {
            map.remove(&last)
                .ok_or_else(|| PatchError::NoSuchPath(path.clone()))?;
        }
        (Value::Array(items), PatchOp::Add { value, .. }) => {
            let at = if last == "-" {
                items.len()
            } else {
                index(&last, items.len() + 1, path)?
            };
            items.insert(at, value.clone());
        }
        (Value::Array(items), PatchOp::Replace { value, .. }) => {
            let at = index(&last, items.len(), path)?;
            items[at] = value.clone();
        }
        (Value::Array(items), PatchOp::Remove { .. }) => {
            let at = index(&last, items.len(), path)?;
            items.remove(at);
        }
        _ => return Err(PatchError::NotAContainer(path.clone())),
    }
    Ok(())
}

/// The value `tokens` lead to.
fn walk<'a>(
    doc: &'a mut Value,
    tokens: &[String],
    path: &str,
) -> Result<&'a mut Value, PatchError> {
    let mut at = doc;
    for token in tokens {
        at = match at {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| PatchError::NoSuchPath(path.to_owned()))?,
            Value::Array(items) => {
                let i = index(token, items.len(), path)?;
                &mut items[i]
            }
            _ => return Err(PatchError::NotAContainer(path.to_owned())),
        };
    }
    Ok(at)
}

/// An array index below `bound`: digits only, no leading zero (RFC 6901 §4).
fn index(token: &str, bound: usize, path: &str) -> Result<usize, PatchError> {
    let well_formed = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let i = well_formed
        .then(|| token.parse::<usize>().ok())
        .flatten()
        .ok_or_else(|| PatchError::BadIndex(path.to_owned()))?;
    if i < bound {
        Ok(i)
    } else {
        Err(PatchError::NoSuchPath(path.to_owned()))
    }
}
