//! A SOCKS5 client (RFC 1928) for Tor's SocksPort. The destination always
//! travels as a domain name (ATYP 0x03): a `.onion` name, or any other host
//! name, is never looked up locally, so nothing leaks to DNS.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    #[error("cannot connect to the SOCKS proxy {proxy}: {source}")]
    Proxy {
        proxy: String,
        #[source]
        source: io::Error,
    },
    #[error("the SOCKS proxy {proxy} misbehaved: {detail}")]
    Protocol { proxy: String, detail: String },
    #[error("the SOCKS proxy {proxy} could not connect to {dest}: {reason}")]
    Refused {
        proxy: String,
        dest: String,
        code: u8,
        reason: &'static str,
    },
}

/// What a SOCKS5 reply code means, Tor's onion-service codes (proposal 304,
/// `SocksPort ... ExtendedErrors`) included.
pub fn reply_reason(code: u8) -> &'static str {
    match code {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired (timed out)",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        0xF0 => "onion service descriptor not found (is the service up? is the address right?)",
        0xF1 => "onion service descriptor is invalid",
        0xF2 => "onion service introduction failed",
        0xF3 => "onion service rendezvous failed",
        0xF4 => "onion service needs client authorization",
        0xF5 => "onion service client authorization is wrong",
        0xF6 => "invalid onion address",
        0xF7 => "onion service introduction timed out",
        _ => "unknown SOCKS error",
    }
}

/// Opens a TCP stream to `host:port` through the SOCKS5 proxy at `proxy`
/// (`HOST:PORT`). `timeout` bounds connecting to the proxy and each read
/// of the handshake; the returned stream has no timeouts.
pub fn connect(
    proxy: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, SocksError> {
    let perr = |source| SocksError::Proxy {
        proxy: proxy.to_string(),
        source,
    };
    let proto = |detail: String| SocksError::Protocol {
        proxy: proxy.to_string(),
        detail,
    };
    if host.is_empty() || host.len() > 255 {
        return Err(proto(format!(
            "host name of {} bytes cannot be sent",
            host.len()
        )));
    }
    let addrs: Vec<_> = proxy.to_socket_addrs().map_err(perr)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut s = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(c) => {
                s = Some(c);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut s = s.ok_or_else(|| perr(last))?;
    s.set_read_timeout(Some(timeout)).map_err(perr)?;
    s.set_write_timeout(Some(timeout)).map_err(perr)?;
    let _ = s.set_nodelay(true);

    // Greeting: version 5, one method, "no authentication".
    s.write_all(&[5, 1, 0]).map_err(perr)?;
    let mut rep = [0u8; 2];
    s.read_exact(&mut rep).map_err(perr)?;
    if rep[0] != 5 {
        return Err(proto(format!(
            "not a SOCKS5 server (version byte {})",
            rep[0]
        )));
    }
    if rep[1] != 0 {
        return Err(proto(format!(
            "it wants authentication method {:#04x}; Cairn offers none",
            rep[1]
        )));
    }
    // CONNECT with the destination as a domain name: never resolved here.
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).map_err(perr)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).map_err(perr)?;
    if head[0] != 5 {
        return Err(proto(format!("bad reply version {}", head[0])));
    }
    if head[1] != 0 {
        return Err(SocksError::Refused {
            proxy: proxy.to_string(),
            dest: format!("{host}:{port}"),
            code: head[1],
            reason: reply_reason(head[1]),
        });
    }
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).map_err(perr)?;
            l[0] as usize
        }
        t => return Err(proto(format!("bad address type {t} in the reply"))),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).map_err(perr)?;
    s.set_read_timeout(None).map_err(perr)?;
    s.set_write_timeout(None).map_err(perr)?;
    Ok(s)
}

/// Copies stdin to `stream` and `stream` to stdout until the remote side
/// closes, as rsync's `RSYNC_CONNECT_PROG` or ssh's `ProxyCommand` expect.
/// Tor streams have no half-close, so stdin's end only stops the sending.
pub fn relay_stdio(stream: TcpStream) -> io::Result<u64> {
    let mut up = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut down = stream;
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match down.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Tor closes with a reset when the service's end did; the
            // program on our side checks its own protocol's end.
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        };
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
        total += n as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot SOCKS5 server that records the request and answers `code`.
    fn fake(code: u8) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut g = [0u8; 3];
            c.read_exact(&mut g).unwrap();
            c.write_all(&[5, 0]).unwrap();
            let mut head = [0u8; 5];
            c.read_exact(&mut head).unwrap();
            let mut rest = vec![0u8; head[4] as usize + 2];
            c.read_exact(&mut rest).unwrap();
            c.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
            if code == 0 {
                c.write_all(b"hello").unwrap();
            }
            let mut req = head.to_vec();
            req.extend(rest);
            req
        });
        (addr, h)
    }

    #[test]
    fn sends_the_name_unresolved() {
        let (proxy, h) = fake(0);
        let mut s = connect(&proxy, "abcdef.onion", 873, Duration::from_secs(5)).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello");
        let req = h.join().unwrap();
        assert_eq!(&req[..4], &[5, 1, 0, 3], "CONNECT with ATYP 3 (domain)");
        assert_eq!(&req[5..5 + 12], b"abcdef.onion");
        assert_eq!(&req[17..], &873u16.to_be_bytes());
    }

    #[test]
    fn maps_onion_errors() {
        let (proxy, h) = fake(0xF0);
        let e = connect(&proxy, "abcdef.onion", 873, Duration::from_secs(5)).unwrap_err();
        h.join().unwrap();
        let msg = e.to_string();
        assert!(msg.contains("descriptor not found"), "{msg}");
        assert!(msg.contains("abcdef.onion:873"), "{msg}");
        let e = connect("127.0.0.1:1", "x.onion", 1, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, SocksError::Proxy { .. }), "{e}");
    }
}
