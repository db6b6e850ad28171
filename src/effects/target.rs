//! The URL of a `fetch`: parsed once, checked for scheme and credentials, and joined with the
//! `Location` of a redirect.

use std::fmt;
use std::net::IpAddr;

use http::Uri;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute `http:` or `https:` URL without its fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// Lowercase, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; includes the query.
    pub path_and_query: String,
}

impl Target {
    /// Parses an absolute URL; the error says, for the machine author, what is wrong.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = strip_fragment(url.trim());
        let Some((scheme, rest)) = split_scheme(url) else {
            return Err(format!("{url:?} is not an absolute URL"));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "only http and https URLs can be fetched, not {other}:"
                ))
            }
        };
        if !rest.starts_with("//") {
            return Err(format!("{url:?} is not an absolute URL"));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a valid URL: {e}"))?;
        let Some(authority) = uri.authority() else {
            return Err(format!("{url:?} has no host"));
        };
        if authority.as_str().contains('@') {
            return Err(
                "credentials in the URL are not supported; send an authorization header".into(),
            );
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_owned(),
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_owned(),
        };
        Ok(Target {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// The `Host` header: the host, bracketed when it is an IPv6 literal, and the port when it
    /// is not the scheme's default.
    pub fn authority(&self) -> String {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// Whether `other` has the same scheme, host and port.
    pub fn same_origin(&self, other: &Target) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// The URL a redirect's `Location` names, relative to this one.
    pub fn join(&self, location: &str) -> Result<Target, String> {
        let location = strip_fragment(location.trim());
        if split_scheme(location).is_some() {
            return Target::parse(location);
        }
        if location.starts_with("//") {
            return Target::parse(&format!("{}:{location}", self.scheme.as_str()));
        }
        let origin = format!("{}://{}", self.scheme.as_str(), self.authority());
        let (path, query) = match self.path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.path_and_query.as_str(), None),
        };
        let joined = if location.is_empty() {
            match query {
                Some(q) => format!("{path}?{q}"),
                None => path.to_owned(),
            }
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else if location.starts_with('/') {
            location.to_owned()
        } else {
            let dir = &path[..=path.rfind('/').unwrap_or(0)];
            format!("{dir}{location}")
        };
        Target::parse(&format!("{origin}{}", remove_dot_segments(&joined)))
    }
}

/// The whole URL, as the result reports it: `https://host:port/path?query`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path_and_query
        )
    }
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(before, _)| before)
}

/// `scheme` and the rest when `url` starts with a scheme (`letter *(letter / digit / + - .)`
/// then `:`).
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let ok = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some((scheme, rest))
}

/// Resolves `.` and `..` segments of a path (with its query kept as is).
fn remove_dot_segments(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut result = format!("/{}", out.join("/"));
    if let Some(q) = query {
        result.push('?');
        result.push_str(q);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn parses_host_port_and_path() {
        let a = t("HTTP://Example.COM:8080/a/b?x=1#frag");
        assert_eq!(a.scheme, Scheme::Http);
        assert_eq!(a.host, "example.com");
        assert_eq!(a.port, 8080);
        assert_eq!(a.path_and_query, "/a/b?x=1");
        assert_eq!(a.authority(), "example.com:8080");
        let b = t("https://[::1]/");
        assert_eq!(b.host, "::1");
        assert_eq!(b.port, 443);
        assert_eq!(b.authority(), "[::1]");
        assert_eq!(t("http://x").path_and_query, "/");
        assert_eq!(t("http://x?q").path_and_query, "/?q");
    }

    #[test]
    fn refuses_other_schemes_relative_urls_and_credentials() {
        let err = Target::parse("ftp://x/").unwrap_err();
        assert!(err.contains("only http and https"), "{err}");
        assert!(Target::parse("file:///etc/passwd").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("http:no-slashes").is_err());
        assert!(Target::parse("http://user:pw@x/")
            .unwrap_err()
            .contains("credentials"));
        assert!(Target::parse("http:///path").is_err());
    }

    #[test]
    fn joins_every_form_of_location() {
        let base = t("http://a.test:81/dir/page?q=1");
        let j = |loc: &str| base.join(loc).unwrap().to_string();
        assert_eq!(j("https://b.test/x"), "https://b.test/x");
        assert_eq!(j("//c.test/y"), "http://c.test/y");
        assert_eq!(j("/root"), "http://a.test:81/root");
        assert_eq!(j("other"), "http://a.test:81/dir/other");
        assert_eq!(j("../up?z"), "http://a.test:81/up?z");
        assert_eq!(j("./same/"), "http://a.test:81/dir/same/");
        assert_eq!(j("?r=2"), "http://a.test:81/dir/page?r=2");
        assert_eq!(j("#frag"), "http://a.test:81/dir/page?q=1");
        assert!(base.join("mailto:a@b").is_err());
    }
}
