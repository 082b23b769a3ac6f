//! Target URLs as duplicity spells them. Not every one is a valid RFC 3986
//! URL (`rsync://host::module`), so they are taken apart by hand.

use super::BackendError;

/// The parts of a `scheme://[user[:password]@]host[:port]/path` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Everything after the host and port, `/` included (may be empty).
    pub path: String,
}

impl std::fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("TargetUrl")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .finish()
    }
}

fn bad(url: &str, reason: impl Into<String>) -> BackendError {
    BackendError::BadUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

/// Percent-decodes `%XX` sequences (user names and passwords may carry `@`,
/// `:` or `/` that way).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// User, password, host and port.
pub type Authority = (Option<String>, Option<String>, String, Option<u16>);

/// Splits `[user[:password]@]host[:port]` (an IPv6 host in brackets).
pub fn split_authority(url: &str, authority: &str) -> Result<Authority, BackendError> {
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (Some(percent_decode(user)), Some(percent_decode(pw))),
            None => (Some(percent_decode(u)), None),
        },
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| bad(url, "unclosed [ in the host"))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(url, p)?),
            None if after.is_empty() => None,
            None => return Err(bad(url, "junk after ]")),
        };
        (host.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(parse_port(url, p)?)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad(url, "no host name"));
    }
    Ok((user.filter(|u| !u.is_empty()), password, host, port))
}

fn parse_port(url: &str, p: &str) -> Result<u16, BackendError> {
    p.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| bad(url, format!("bad port {p:?}")))
}

impl TargetUrl {
    /// Parses `scheme://authority/path`.
    pub fn parse(url: &str) -> Result<TargetUrl, BackendError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(url, "no scheme://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, password, host, port) = split_authority(url, authority)?;
        Ok(TargetUrl {
            scheme: scheme.to_string(),
            user,
            password,
            host,
            port,
            path: path.to_string(),
        })
    }

    /// The host as it goes into `host:port` strings (IPv6 in brackets).
    pub fn host_for_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    pub fn is_onion(&self) -> bool {
        is_onion(&self.host)
    }
}

pub fn is_onion(host: &str) -> bool {
    host.to_ascii_lowercase()
        .trim_end_matches('.')
        .ends_with(".onion")
}

/// The URL with any password removed, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let first_slash = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..first_slash].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        let u = TargetUrl::parse("sftp://al%40ice:p%3Aw@example.org:2222/srv/x").unwrap();
        assert_eq!(u.user.as_deref(), Some("al@ice"));
        assert_eq!(u.password.as_deref(), Some("p:w"));
        assert_eq!(u.host, "example.org");
        assert_eq!(u.port, Some(2222));
        assert_eq!(u.path, "/srv/x");
        assert!(!format!("{u:?}").contains("p:w"));
        let u = TargetUrl::parse("sftp://[::1]:22//abs").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", Some(22), "//abs")
        );
        assert_eq!(u.host_for_addr(), "[::1]");
        assert!(TargetUrl::parse("sftp://h:0/x").is_err());
        assert!(TargetUrl::parse("sftp:///x").is_err());
        assert_eq!(
            redact("rsync://bob:s3cret@host::mod/p"),
            "rsync://bob@host::mod/p"
        );
        assert_eq!(redact("s3://bucket/a:b@c"), "s3://bucket/a:b@c");
        assert!(is_onion("abc.onion"));
        assert!(is_onion("ABC.ONION."));
        assert!(!is_onion("onion.example"));
    }
}
