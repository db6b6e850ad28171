//! JSON Pointer (RFC 6901) tokens: escaping when a patch is generated, unescaping when it is
//! applied.

/// The token of one object key or array index inside a pointer: `~` becomes `~0` and `/`
/// becomes `~1`, in that order, so the result never contains a bare `/`.
pub fn escape(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1").into()
    } else {
        token.into()
    }
}

/// Splits a pointer into its unescaped tokens. `""` is the whole document (no tokens); any
/// other pointer must start with `/`. `None` for a malformed pointer: a missing leading `/`,
/// or a `~` not followed by `0` or `1`.
pub fn parse(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A pointer under construction: the escaped tokens from the root to the current value.
#[derive(Debug, Default, Clone)]
pub(super) struct Path {
    text: String,
}

impl Path {
    /// The pointer of `token` below this path.
    pub fn child(&self, token: &str) -> Path {
        let escaped = escape(token);
        let mut text = String::with_capacity(self.text.len() + 1 + escaped.len());
        text.push_str(&self.text);
        text.push('/');
        text.push_str(&escaped);
        Path { text }
    }

    pub fn index(&self, i: usize) -> Path {
        Path {
            text: format!("{}/{i}", self.text),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_is_escaped_before_slash() {
        assert_eq!(escape("a/b"), "a~1b");
        assert_eq!(escape("m~n"), "m~0n");
        // "~1" must not turn into "/" on the way back: it is "~01" once escaped.
        assert_eq!(escape("~1"), "~01");
        assert_eq!(parse("/~01").unwrap(), vec!["~1".to_owned()]);
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn pointers_parse_to_unescaped_tokens() {
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("/").unwrap(), vec![String::new()]);
        assert_eq!(
            parse("/a~1b/0/c~0d").unwrap(),
            vec!["a/b".to_owned(), "0".to_owned(), "c~d".to_owned()]
        );
        assert!(parse("a").is_none());
        assert!(parse("/a~2").is_none());
        assert!(parse("/a~").is_none());
    }

    #[test]
    fn paths_compose_escaped_children() {
        let p = Path::default().child("a/b").index(3).child("");
        assert_eq!(p.as_str(), "/a~1b/3/");
        assert_eq!(
            parse(p.as_str()).unwrap(),
            vec!["a/b".to_owned(), "3".to_owned(), String::new()]
        );
    }
}
