//! A tiny scripted HTTP/1.1 server on 127.0.0.1 for the fetcher tests: each path has a list of
//! replies, used in order (the last one repeats), so a test can stage "cut the connection, then
//! serve the rest". Every connection is closed after one reply. The server stops when dropped
//! and, at the latest, after `LIFETIME`, so no test can hang on it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LIFETIME: Duration = Duration::from_secs(60);

/// How the server answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The body; a `Range: bytes=N-` request gets 206 and the tail when `honour_range`.
    Serve { body: Vec<u8>, honour_range: bool },
    /// Promise the whole (remaining) body, send only `n` bytes of it, then close.
    CutAfter { body: Vec<u8>, n: usize },
    /// Send `n` bytes, then go silent for `pause` before closing.
    StallAfter { body: Vec<u8>, n: usize, pause: Duration },
    /// Declare `declared` as Content-Length but send the whole body (or `declared` bytes if fewer).
    LyingLength { body: Vec<u8>, declared: usize },
    /// Serve the whole body (honouring Range) in `chunks` pieces with `delay` between them.
    Slow { body: Vec<u8>, chunks: usize, delay: Duration },
    Status(u16),
    Redirect(String),
    /// A 200 with no Content-Length whose body never ends (until the client hangs up or the
    /// server's lifetime is over).
    Endless,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range_start: Option<u64>,
}

pub struct Server {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(routes: Vec<(&str, Vec<Reply>)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, Vec<Reply>> = routes.into_iter().map(|(p, r)| (p.to_string(), r)).collect();
        let routes = Arc::new(Mutex::new(routes));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !stop2.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (routes, seen) = (routes.clone(), seen2.clone());
                        // One thread per connection: a stalled reply must not block the retry.
                        std::thread::spawn(move || handle(stream, &routes, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { base, seen, stop, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, routes: &Mutex<HashMap<String, Vec<Reply>>>, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range_start = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("range: bytes=").map(|r| r.trim_end_matches('-').trim().to_string()))
        .and_then(|r| r.parse().ok());
    seen.lock().unwrap().push(Seen { path: path.clone(), range_start });
    let reply = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(&path) {
            Some(list) if list.len() > 1 => Some(list.remove(0)),
            Some(list) => list.first().cloned(),
            None => None,
        }
    };
    let _ = respond(&mut stream, reply.unwrap_or(Reply::Status(404)), range_start);
}

fn respond(s: &mut TcpStream, reply: Reply, range_start: Option<u64>) -> std::io::Result<()> {
    let head = |s: &mut TcpStream, status: &str, len: usize, extra: &str| {
        write!(s, "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    // (status line, extra headers, bytes to send) for a body, honouring Range.
    let ranged = |body: &[u8], honour: bool| -> (String, String, Vec<u8>) {
        match range_start {
            Some(start) if honour && (start as usize) < body.len() => (
                "206 Partial Content".into(),
                format!("Content-Range: bytes {start}-{}/{}\r\n", body.len() - 1, body.len()),
                body[start as usize..].to_vec(),
            ),
            _ => ("200 OK".into(), String::new(), body.to_vec()),
        }
    };
    match reply {
        Reply::Serve { body, honour_range } => {
            let (status, extra, bytes) = ranged(&body, honour_range);
            head(s, &status, bytes.len(), &extra)?;
            s.write_all(&bytes)
        }
        Reply::CutAfter { body, n } => {
            let (status, extra, bytes) = ranged(&body, true);
            head(s, &status, bytes.len(), &extra)?;
            s.write_all(&bytes[..n.min(bytes.len())])
        }
        Reply::StallAfter { body, n, pause } => {
            let (status, extra, bytes) = ranged(&body, true);
            head(s, &status, bytes.len(), &extra)?;
            s.write_all(&bytes[..n.min(bytes.len())])?;
            s.flush()?;
            std::thread::sleep(pause);
            Ok(())
        }
        Reply::LyingLength { body, declared } => {
            let (status, extra, bytes) = ranged(&body, true);
            head(s, &status, declared, &extra)?;
            s.write_all(&bytes[..declared.min(bytes.len())])
        }
        Reply::Slow { body, chunks, delay } => {
            let (status, extra, bytes) = ranged(&body, true);
            head(s, &status, bytes.len(), &extra)?;
            for piece in bytes.chunks(bytes.len().div_ceil(chunks.max(1)).max(1)) {
                s.write_all(piece)?;
                s.flush()?;
                std::thread::sleep(delay);
            }
            Ok(())
        }
        Reply::Status(code) => {
            let text = match code {
                404 => "Not Found",
                500 => "Internal Server Error",
                503 => "Service Unavailable",
                _ => "Error",
            };
            head(s, &format!("{code} {text}"), 0, "")
        }
        Reply::Redirect(to) => head(s, "302 Found", 0, &format!("Location: {to}\r\n")),
        Reply::Endless => {
            write!(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![0u8; 1 << 16];
            let started = Instant::now();
            while started.elapsed() < LIFETIME {
                s.write_all(&chunk)?;
            }
            Ok(())
        }
    }
}
