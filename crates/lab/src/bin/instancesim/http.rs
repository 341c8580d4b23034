//! HTTP/1.1 requests read from a connection one after another (keep-alive,
//! as an instance's front end keeps a client's connection open), each
//! answered in turn; a client's `Connection: close` is answered in kind
//! and ends the connection. Enough for a Table API client:
//! `Content-Length` bodies, no chunked uploads, no pipelining.

use std::io::{self, BufRead, Write};

const HEADER_LIMIT: usize = 64 * 1024;
const BODY_LIMIT: usize = 1024 * 1024;

/// A request as the tables see it.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    /// The DER of the client certificate the TLS handshake verified
    /// (`--client-ca`), if the client sent one.
    pub client_certificate: Option<Vec<u8>>,
    /// The client asked to close the connection after the answer.
    pub close: bool,
}

impl Request {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads one request; `Ok(None)` when the peer closed first, or left the
/// connection idle past its read timeout.
pub fn read_request(reader: &mut dyn BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(error)
            if line.is_empty()
                && matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
        {
            return Ok(None)
        }
        Err(error) => return Err(error),
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("bad request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: percent_decode(path, false),
        query: parse_query(query),
        ..Request::default()
    };
    let mut length = 0usize;
    let mut header_bytes = line.len();
    loop {
        let mut header = String::new();
        let read = reader.read_line(&mut header)?;
        header_bytes += read;
        if read == 0 || header_bytes > HEADER_LIMIT {
            return Err(invalid("headers too long or cut short"));
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(invalid("bad header"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = value.parse().map_err(|_| invalid("bad Content-Length"))?;
            }
            "authorization" => request.authorization = Some(value.to_string()),
            "connection" => request.close = value.eq_ignore_ascii_case("close"),
            "transfer-encoding" => return Err(invalid("chunked bodies are not supported")),
            _ => {}
        }
    }
    if length > BODY_LIMIT {
        return Err(invalid("body too large"));
    }
    request.body = vec![0; length];
    reader.read_exact(&mut request.body)?;
    Ok(Some(request))
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
}

/// Writes one answer; `keep_alive` says whether the connection stays open
/// for the next request.
pub fn write_response(
    stream: &mut dyn Write,
    status: u16,
    extra_headers: &[(&str, String)],
    body: &str,
    keep_alive: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: {}\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// `a=1&b=x%5Ey` → pairs, `+` as a space.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true), percent_decode(value, true))
        })
        .collect()
}

fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_request_with_query_and_body() {
        let raw = b"POST /api/now/table/sys_user?sysparm_query=user_name%3Dsvc%5Eactive%3Dtrue&x=a+b HTTP/1.1\r\n\
                    Host: x\r\nAuthorization: Basic YTpi\r\nContent-Length: 2\r\n\r\n{}";
        let request = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/now/table/sys_user");
        assert_eq!(
            request.query_value("sysparm_query"),
            Some("user_name=svc^active=true")
        );
        assert_eq!(request.query_value("x"), Some("a b"));
        assert_eq!(request.authorization.as_deref(), Some("Basic YTpi"));
        assert_eq!(request.body, b"{}");
        assert!(!request.close);
    }

    /// Requests one after another on one connection, the last asking to
    /// close; then the end of the stream.
    #[test]
    fn reads_requests_one_after_another() {
        let raw = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
                    POST /b HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
        let mut reader = &raw[..];
        let first = read_request(&mut reader).unwrap().unwrap();
        assert_eq!((first.path.as_str(), first.close), ("/a", false));
        let second = read_request(&mut reader).unwrap().unwrap();
        assert_eq!((second.path.as_str(), second.close), ("/b", true));
        assert_eq!(second.body, b"abc");
        assert!(read_request(&mut reader).unwrap().is_none());
    }

    #[test]
    fn a_lone_percent_stays() {
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%4", false), "%4");
        assert_eq!(percent_decode("%41%zz", false), "A%zz");
    }
}
