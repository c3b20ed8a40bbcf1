//! The browser's one way out: a forward proxy citewatch runs in-process on a loopback port for
//! the length of a run. Chromium is started with `--proxy-server` pointing here and nothing
//! bypassing it, so every connection it makes — documents, subresources, XHR/fetch, WebSocket
//! handshakes, anything — arrives here first.
//!
//! For each connection the proxy resolves the host once, applies the address policy to the
//! answer, and connects to exactly the address it checked (no second look-up, so no DNS
//! rebinding window). Plain HTTP requests (absolute-form) are forwarded with
//! `Connection: close` (one request per connection, so a kept-alive connection can never be
//! reused for another host); `CONNECT` opens a tunnel (HTTPS, and WebSockets, which Chromium
//! always tunnels through a proxy). The bytes a page pulls in are counted against its budget;
//! past it, connections are cut and new ones refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::guard::{self, AddressPolicy};

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 32 * 1024;
/// Time to connect upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which addresses the browser may reach.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    /// The address policy, as for plain fetches.
    pub policy: AddressPolicy,
    /// When set, only these socket addresses (tests: the test's own servers).
    pub only: Option<Vec<SocketAddr>>,
}

impl Egress {
    /// Checks one resolved address.
    pub fn check(&self, addr: SocketAddr) -> Result<(), String> {
        guard::check_ip(addr.ip(), self.policy).map_err(|r| r.to_string())?;
        if let Some(only) = &self.only
            && !only.contains(&addr)
        {
            return Err(format!("{addr} is outside the allowed origins"));
        }
        Ok(())
    }

    /// Resolves `host:port` once and returns the first address the policy admits.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                if !guard::may_resolve(host, self.policy) {
                    return Err(format!("{host}: not resolved in loopback-only mode"));
                }
                tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| format!("DNS {host}: {e}"))?
                    .collect()
            }
        };
        let mut why = format!("DNS {host}: no address");
        for a in candidates {
            match self.check(a) {
                Ok(()) => return Ok(a),
                Err(e) => why = e,
            }
        }
        Err(why)
    }
}

/// What the proxy saw, for the current page.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes relayed to the browser.
    pub bytes: AtomicU64,
    /// Connections refused, with why.
    pub refused: Mutex<Vec<String>>,
    /// The page's byte budget is spent: cut everything.
    pub over_budget: AtomicBool,
}

/// A running egress proxy.
pub struct EgressProxy {
    /// Where it listens (127.0.0.1, an OS-chosen port).
    pub addr: SocketAddr,
    /// Per-page traffic, reset by the renderer for each page.
    pub traffic: Arc<Traffic>,
    /// The byte budget per page.
    pub budget: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressProxy {
    /// Starts the proxy on 127.0.0.1.
    pub async fn start(egress: Egress, page_budget: u64) -> std::io::Result<EgressProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let traffic = Arc::new(Traffic::default());
        let budget = Arc::new(AtomicU64::new(page_budget));
        let egress = Arc::new(egress);
        let (t, b) = (traffic.clone(), budget.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, peer)) = listener.accept().await else {
                    continue;
                };
                // Only this machine's browser may use it.
                if !peer.ip().is_loopback() {
                    continue;
                }
                let (egress, t, b) = (egress.clone(), t.clone(), b.clone());
                tokio::spawn(async move {
                    if let Err(why) = serve(client, &egress, &t, &b).await {
                        tracing::debug!(error = %why, "browser egress: connection refused");
                        t.refused
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(why);
                    }
                });
            }
        });
        Ok(EgressProxy {
            addr,
            traffic,
            budget,
            task,
        })
    }

    /// Starts a new page: counters to zero.
    pub fn new_page(&self) {
        self.traffic.bytes.store(0, Ordering::Relaxed);
        self.traffic.over_budget.store(false, Ordering::Relaxed);
        self.traffic
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Reads a request head (up to the blank line); returns it and whatever came after it.
async fn read_head(client: &mut TcpStream) -> Result<(String, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return Ok((head, buf[end + 4..].to_vec()));
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too long".into());
        }
        let n = tokio::time::timeout(Duration::from_secs(30), client.read(&mut chunk))
            .await
            .map_err(|_| "request head timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn refuse(client: &mut TcpStream, why: &str) {
    let body = format!("refused by citewatch: {why}\n");
    let _ = client
        .write_all(
            format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
}

/// The target of a request line: `CONNECT host:port` or an absolute-form URL.
pub fn target(request_line: &str) -> Result<(bool, String, u16, String), String> {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().ok_or("no request target")?;
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = target
            .rsplit_once(':')
            .ok_or_else(|| format!("CONNECT {target}: no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("CONNECT {target}: bad port"))?;
        return Ok((true, host.to_string(), port, String::new()));
    }
    let url = url::Url::parse(target).map_err(|_| format!("{method} {target}: not absolute"))?;
    if url.scheme() != "http" {
        return Err(format!("scheme {} refused", url.scheme()));
    }
    let host = url.host_str().ok_or("no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok((false, host, port, path))
}

/// The request head for the origin server: origin-form target, no proxy headers, and
/// `Connection: close`.
pub fn origin_head(head: &str, path: &str) -> String {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("GET");
    let version = parts.nth(1).unwrap_or("HTTP/1.1");
    let mut out = format!("{method} {path} {version}\r\n");
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("proxy-authorization")
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn serve(
    mut client: TcpStream,
    egress: &Egress,
    traffic: &Traffic,
    budget: &AtomicU64,
) -> Result<(), String> {
    let (head, rest) = read_head(&mut client).await?;
    let line = head.lines().next().unwrap_or("").to_string();
    let (tunnel, host, port, path) = match target(&line) {
        Ok(t) => t,
        Err(why) => {
            refuse(&mut client, &why).await;
            return Err(why);
        }
    };
    if traffic.over_budget.load(Ordering::Relaxed) {
        let why = format!("{host}:{port}: the page's byte budget is spent");
        refuse(&mut client, &why).await;
        return Err(why);
    }
    let addr = match egress.resolve(&host, port).await {
        Ok(a) => a,
        Err(why) => {
            refuse(&mut client, &why).await;
            return Err(format!("{host}:{port}: {why}"));
        }
    };
    let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let why = format!("{host}:{port}: {e}");
            let _ = client
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            return Err(why);
        }
        Err(_) => {
            let _ = client
                .write_all(b"HTTP/1.1 504 Gateway Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .await;
            return Err(format!("{host}:{port}: connect timed out"));
        }
    };
    if tunnel {
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
    } else {
        upstream
            .write_all(origin_head(&head, &path).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    if !rest.is_empty() {
        upstream.write_all(&rest).await.map_err(|e| e.to_string())?;
    }
    relay(client, upstream, traffic, budget).await;
    Ok(())
}

/// Copies both ways until either side closes; downstream bytes count against the budget.
async fn relay(client: TcpStream, upstream: TcpStream, traffic: &Traffic, budget: &AtomicU64) {
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
        let _ = uw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let total = traffic.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            if total > budget.load(Ordering::Relaxed) {
                traffic.over_budget.store(true, Ordering::Relaxed);
                break;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    // Either direction ending ends the exchange (the browser or the server hung up).
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets() {
        assert_eq!(
            target("CONNECT example.org:443 HTTP/1.1").unwrap(),
            (true, "example.org".into(), 443, String::new())
        );
        assert_eq!(
            target("CONNECT [::1]:8443 HTTP/1.1").unwrap(),
            (true, "[::1]".into(), 8443, String::new())
        );
        assert_eq!(
            target("GET http://127.0.0.1:8080/a/b?c=1 HTTP/1.1").unwrap(),
            (false, "127.0.0.1".into(), 8080, "/a/b?c=1".into())
        );
        assert!(target("GET /relative HTTP/1.1").is_err());
        assert!(target("GET ftp://x.example/ HTTP/1.1").is_err());
        assert!(target("CONNECT nohost HTTP/1.1").is_err());
    }

    #[test]
    fn origin_heads_drop_proxy_headers_and_close() {
        let head = "GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nUser-Agent: citewatch/1\r\n\r\n";
        assert_eq!(
            origin_head(head, "/p"),
            "GET /p HTTP/1.1\r\nHost: a.example\r\nUser-Agent: citewatch/1\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn egress_checks_policy_and_allowlist() {
        let e = Egress {
            policy: AddressPolicy::LoopbackOnly,
            only: Some(vec!["127.0.0.1:8080".parse().unwrap()]),
        };
        assert!(e.check("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(e.check("127.0.0.1:8081".parse().unwrap()).is_err());
        assert!(e.check("93.184.216.34:80".parse().unwrap()).is_err());
        let public = Egress::default();
        assert!(public.check("10.0.0.1:80".parse().unwrap()).is_err());
        assert!(public.check("169.254.169.254:80".parse().unwrap()).is_err());
    }
}
