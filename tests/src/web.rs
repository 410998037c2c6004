//! A plain HTTP/1.1 client for the dashboard, `/metrics` and event-stream tests: enough to see
//! exactly what a browser or Prometheus would be sent (status, headers, body), with no client
//! library deciding anything for us.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header lines, as sent (`Name: value`).
    pub headers: Vec<String>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn host_port(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

fn request(base: &str, path: &str, headers: &[(&str, &str)]) -> TcpStream {
    let host = host_port(base);
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut text = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).expect("send request");
    stream
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<String>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    (status, headers)
}

/// GETs `path` from `base` (`http://host:port`) with extra headers.
pub fn get_with(base: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut reader = BufReader::new(request(base, path, headers));
    let (status, headers) = read_head(&mut reader);
    let chunked = headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).expect("body");
    let body = if chunked { dechunk(&raw) } else { raw };
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// GETs `path` from `base`.
pub fn get(base: &str, path: &str) -> Answer {
    get_with(base, path, &[])
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            return body;
        }
        let start = end + 2;
        body.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
}

/// Reads the first `count` server-sent events of type `snapshot` from `path`, as JSON.
pub fn events(base: &str, path: &str, count: usize) -> Vec<serde_json::Value> {
    let mut reader = BufReader::new(request(base, path, &[]));
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200, "{headers:?}");
    let mut found = Vec::new();
    let mut line = String::new();
    while found.len() < count {
        line.clear();
        if reader.read_line(&mut line).expect("event line") == 0 {
            break;
        }
        // Chunk sizes of the chunked encoding interleave; only data lines matter.
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            found.push(serde_json::from_str(data).expect("event data is JSON"));
        }
    }
    found
}
