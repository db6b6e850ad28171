//! CQL native protocol v4 bodies a scripted node sends back: PREPARED and ROWS results, and
//! the encoding of the values inside them (protocol spec, sections 4.2.5 and 6).

use bytes::{BufMut, Bytes, BytesMut};

/// The column types statewire's schema uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CqlType {
    Text,
    BigInt,
    Int,
    Boolean,
    Uuid,
    Blob,
    List(Box<CqlType>),
}

/// A CQL value of one of those types.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Text(String),
    BigInt(i64),
    Int(i32),
    Boolean(bool),
    Uuid(uuid::Uuid),
    Blob(Vec<u8>),
    List(Vec<Value>),
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bigint(&self) -> Option<i64> {
        match self {
            Value::BigInt(v) => Some(*v),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i32> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
    pub fn as_uuid(&self) -> Option<uuid::Uuid> {
        match self {
            Value::Uuid(v) => Some(*v),
            _ => None,
        }
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

fn put_type(buf: &mut BytesMut, ty: &CqlType) {
    match ty {
        CqlType::Text => buf.put_u16(0x000D),
        CqlType::BigInt => buf.put_u16(0x0002),
        CqlType::Int => buf.put_u16(0x0009),
        CqlType::Boolean => buf.put_u16(0x0004),
        CqlType::Uuid => buf.put_u16(0x000C),
        CqlType::Blob => buf.put_u16(0x0003),
        CqlType::List(inner) => {
            buf.put_u16(0x0020);
            put_type(buf, inner);
        }
    }
}

/// The serialized form of a non-null value (without its length prefix).
pub fn encode_value(v: &Value) -> Option<Vec<u8>> {
    Some(match v {
        Value::Null => return None,
        Value::Text(s) => s.as_bytes().to_vec(),
        Value::BigInt(n) => n.to_be_bytes().to_vec(),
        Value::Int(n) => n.to_be_bytes().to_vec(),
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::Uuid(u) => u.as_bytes().to_vec(),
        Value::Blob(b) => b.clone(),
        Value::List(items) => {
            let mut out = BytesMut::new();
            out.put_i32(items.len() as i32);
            for item in items {
                put_cell(&mut out, item);
            }
            out.to_vec()
        }
    })
}

fn put_cell(buf: &mut BytesMut, v: &Value) {
    match encode_value(v) {
        None => buf.put_i32(-1),
        Some(bytes) => {
            buf.put_i32(bytes.len() as i32);
            buf.put_slice(&bytes);
        }
    }
}

/// Decodes a bound value of type `ty`; `None` bytes are a null.
pub fn decode_value(ty: &CqlType, bytes: Option<&[u8]>) -> Result<Value, String> {
    let Some(b) = bytes else {
        return Ok(Value::Null);
    };
    let fixed = |n: usize| -> Result<&[u8], String> {
        (b.len() == n)
            .then_some(b)
            .ok_or_else(|| format!("{ty:?} of {} bytes", b.len()))
    };
    Ok(match ty {
        CqlType::Text => Value::Text(String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?),
        CqlType::BigInt => Value::BigInt(i64::from_be_bytes(fixed(8)?.try_into().unwrap())),
        CqlType::Int => Value::Int(i32::from_be_bytes(fixed(4)?.try_into().unwrap())),
        CqlType::Boolean => Value::Boolean(fixed(1)?[0] != 0),
        CqlType::Uuid => {
            Value::Uuid(uuid::Uuid::from_slice(fixed(16)?).map_err(|e| e.to_string())?)
        }
        CqlType::Blob => Value::Blob(b.to_vec()),
        CqlType::List(inner) => {
            let mut rest = b;
            let mut take = |n: usize| -> Result<&[u8], String> {
                if rest.len() < n {
                    return Err("short list".into());
                }
                let (head, tail) = rest.split_at(n);
                rest = tail;
                Ok(head)
            };
            let count = i32::from_be_bytes(take(4)?.try_into().unwrap());
            let mut items = Vec::new();
            for _ in 0..count {
                let len = i32::from_be_bytes(take(4)?.try_into().unwrap());
                let item = if len < 0 {
                    None
                } else {
                    Some(take(len as usize)?)
                };
                items.push(decode_value(inner, item)?);
            }
            Value::List(items)
        }
    })
}

/// RESULT/Void.
pub fn void_result() -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0x0001);
    buf.freeze()
}

/// RESULT/Prepared: the statement's id and its bind markers; result metadata left out, so
/// every ROWS reply carries its own (as servers do for conditional statements).
pub fn prepared_result(
    id: &[u8],
    keyspace: &str,
    table: &str,
    binds: &[(String, CqlType)],
    pk_indexes: &[u16],
    lwt: bool,
) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0x0004);
    buf.put_u16(id.len() as u16);
    buf.put_slice(id);
    let mut flags: u32 = 0x0001;
    if lwt {
        // The bit announced by SCYLLA_LWT_ADD_METADATA_MARK in SUPPORTED.
        flags |= LWT_MARK;
    }
    buf.put_u32(flags);
    buf.put_i32(binds.len() as i32);
    buf.put_i32(pk_indexes.len() as i32);
    for i in pk_indexes {
        buf.put_u16(*i);
    }
    put_string(&mut buf, keyspace);
    put_string(&mut buf, table);
    for (name, ty) in binds {
        put_string(&mut buf, name);
        put_type(&mut buf, ty);
    }
    buf.put_i32(0x0004);
    buf.put_i32(0);
    buf.freeze()
}

/// The LWT bit of PREPARED metadata flags, as advertised to the driver.
pub const LWT_MARK: u32 = 0x8000_0000;

/// RESULT/Rows with full metadata.
pub fn rows_result(
    keyspace: &str,
    table: &str,
    columns: &[(String, CqlType)],
    rows: &[Vec<Value>],
) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0x0002);
    buf.put_i32(0x0001);
    buf.put_i32(columns.len() as i32);
    put_string(&mut buf, keyspace);
    put_string(&mut buf, table);
    for (name, ty) in columns {
        put_string(&mut buf, name);
        put_type(&mut buf, ty);
    }
    buf.put_i32(rows.len() as i32);
    for row in rows {
        for v in row {
            put_cell(&mut buf, v);
        }
    }
    buf.freeze()
}
