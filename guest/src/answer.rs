//! Error answers the Rust side writes itself: when input cannot reach the glue, or the glue
//! itself failed (most often because the heap ran out while it answered).

/// The ABI error kinds this side can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidBundle,
    BadInput,
    OutOfMemory,
    Internal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidBundle => "invalid-bundle",
            Kind::BadInput => "bad-input",
            Kind::OutOfMemory => "out-of-memory",
            Kind::Internal => "internal",
        }
    }
}

/// `{"error":{"kind":…,"message":…}}`.
pub fn error(kind: Kind, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 48);
    out.push_str("{\"error\":{\"kind\":\"");
    out.push_str(kind.as_str());
    out.push_str("\",\"message\":\"");
    escape_into(&mut out, message);
    out.push_str("\"}}");
    out
}

/// Whether an answer (from the glue or from here) reports an exhausted heap.
pub fn is_out_of_memory(answer: &str) -> bool {
    answer.starts_with("{\"error\":{\"kind\":\"out-of-memory\"")
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}
