//! Fetching: one polite, guarded HTTP GET per source URL.
//!
//! An I/O edge. It owns the HTTP client, per-host pacing, the address guard, redirects,
//! retries and size/time caps, and it classifies every failure once, here, into a
//! [`FailureClass`]: the verdict stage reads the class, never an error string. A failure is a
//! value ([`FetchOutcome::Failed`]), not an `Err`. It does not know about citations, snapshots
//! or the database.

pub mod browser;
pub mod guard;
pub mod proxy;
pub mod robots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use crate::verdict::FailureClass;

/// Knobs of the fetch stage.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Requests per second per host.
    pub rate: f64,
    /// Requests in flight across all hosts.
    pub concurrency: usize,
    /// Which addresses may be contacted (`--allow-private` lifts the guard).
    pub addresses: guard::AddressPolicy,
    /// The User-Agent header.
    pub user_agent: String,
    /// Deadline for one request, connection to last body byte.
    pub timeout: Duration,
    /// Cap on the decoded body.
    pub max_body_bytes: usize,
    /// Redirect hops followed.
    pub max_redirects: usize,
    /// Retries of transient failures.
    pub retries: u32,
    /// Longest `Retry-After` honoured; a longer one skips the host for this run.
    pub max_retry_after: Duration,
    /// First backoff delay (doubled per retry, with jitter).
    pub backoff: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            rate: 1.0,
            concurrency: 8,
            addresses: guard::AddressPolicy::PublicOnly,
            user_agent: default_user_agent(),
            timeout: Duration::from_secs(30),
            max_body_bytes: 20 * 1024 * 1024,
            max_redirects: 5,
            retries: 2,
            max_retry_after: Duration::from_secs(60),
            backoff: Duration::from_millis(500),
        }
    }
}

/// `citewatch/<version> (+<contact URL>)`.
pub fn default_user_agent() -> String {
    format!(
        "citewatch/{} (+{})",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_REPOSITORY")
    )
}

/// Validators from the last good response, sent as a conditional request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// `ETag` to send as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified` to send as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// One redirect hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// The URL that redirected.
    pub from: String,
    /// Where it pointed.
    pub to: String,
}

impl Hop {
    /// Whether the hop is a permanent redirect.
    pub fn is_permanent(&self) -> bool {
        matches!(self.status, 301 | 308)
    }
}

/// Formats a redirect chain as `301 a -> b; 302 b -> c`.
pub fn describe_chain(hops: &[Hop]) -> String {
    hops.iter()
        .map(|h| {
            format!(
                "{} {} -> {}",
                h.status,
                crate::redact(&h.from),
                crate::redact(&h.to)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The URL a cited URL permanently moved to: the end of the leading run of permanent hops.
pub fn permanent_target(hops: &[Hop]) -> Option<&str> {
    hops.iter()
        .take_while(|h| h.is_permanent())
        .last()
        .map(|h| h.to.as_str())
}

/// One HTTP exchange as it went over the wire, for the record (WARC export): the request as
/// citewatch sent it and the response's status line and headers as received (reqwest removes
/// `Content-Encoding` and `Content-Length` when it decodes a compressed body; the body kept is
/// the decoded one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    /// The URL requested.
    pub url: String,
    /// Request line and headers, CRLF-separated, ending with an empty line.
    pub request: String,
    /// Status line and headers, CRLF-separated, ending with an empty line.
    pub response: String,
    /// HTTP status.
    pub status: u16,
    /// The response head was not seen but reconstructed (a browser render's document).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconstructed: bool,
}

/// A request's head as citewatch sends it (reqwest adds `Accept-Encoding` itself; it is
/// written here as reqwest sends it).
fn request_head(url: &Url, user_agent: &str, headers: &reqwest::header::HeaderMap) -> String {
    let host = url.host_str().unwrap_or("");
    let mut head = String::with_capacity(384);
    head.push_str("GET ");
    head.push_str(url.path());
    if let Some(q) = url.query() {
        head.push('?');
        head.push_str(q);
    }
    head.push_str(" HTTP/1.1\r\nHost: ");
    head.push_str(host);
    if let Some(p) = url.port() {
        head.push(':');
        head.push_str(&p.to_string());
    }
    head.push_str("\r\nUser-Agent: ");
    head.push_str(user_agent);
    head.push_str("\r\n");
    push_header_lines(&mut head, headers);
    head.push_str("Accept-Encoding: gzip, br, deflate\r\n\r\n");
    head
}

/// Appends `name: value` CRLF lines, one per header (a value that is not UTF-8 written lossily).
fn push_header_lines(head: &mut String, headers: &reqwest::header::HeaderMap) {
    for (name, value) in headers {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(&String::from_utf8_lossy(value.as_bytes()));
        head.push_str("\r\n");
    }
}

/// A response's status line and headers as received.
fn response_head(resp: &reqwest::Response) -> String {
    // HTTP/2 and /3 have no status line; they are written as HTTP/1.1, as web archives do, so
    // that replay tools read them.
    let version = match resp.version() {
        reqwest::Version::HTTP_09 => "HTTP/0.9",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let status = resp.status();
    let mut head = String::with_capacity(256);
    head.push_str(version);
    head.push(' ');
    head.push_str(status.as_str());
    head.push(' ');
    head.push_str(status.canonical_reason().unwrap_or(""));
    head.push_str("\r\n");
    push_header_lines(&mut head, resp.headers());
    head.push_str("\r\n");
    head
}

/// What became of one fetch.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    /// A 2xx response with its body.
    Fetched(Fetched),
    /// A 304: the stored snapshot is still current.
    NotModified {
        /// The URL that answered.
        final_url: Url,
        /// Redirects on the way.
        redirects: Vec<Hop>,
        /// The exchanges: each redirect hop, then the 304.
        exchanges: Vec<Exchange>,
    },
    /// The fetch failed.
    Failed {
        /// Classified once, here.
        class: FailureClass,
        /// HTTP status, when there was one.
        status: Option<u16>,
        /// One line for people.
        detail: String,
        /// Redirects on the way.
        redirects: Vec<Hop>,
    },
}

impl FetchOutcome {
    /// Redirect hops, whatever the outcome.
    pub fn redirects(&self) -> &[Hop] {
        match self {
            FetchOutcome::Fetched(f) => &f.redirects,
            FetchOutcome::NotModified { redirects, .. }
            | FetchOutcome::Failed { redirects, .. } => redirects,
        }
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL that answered.
    pub final_url: Url,
    /// HTTP status (2xx).
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// Validators for the next conditional request.
    pub validators: Validators,
    /// The decoded body (for a browser render: the rendered DOM).
    pub body: Vec<u8>,
    /// For a browser render: the document as the server sent it.
    pub raw_body: Option<Vec<u8>>,
    /// Redirects on the way.
    pub redirects: Vec<Hop>,
    /// The exchanges: each redirect hop, then the response whose body this is.
    pub exchanges: Vec<Exchange>,
}

/// Per-host pacing.
struct HostPacer {
    /// Steady rate per host (`--rate`). Governor does the token-bucket arithmetic.
    /// On the standard monotonic clock, not governor's default (quanta), which calibrates the
    /// TSC against it the first time it is made, spinning until its estimate settles (~0.1 s
    /// at the start of a run under `perf`, whose interrupts unsettle it; within noise
    /// without a profiler), for a clock that only paces requests milliseconds apart.
    governor: RateLimiter<
        String,
        DefaultKeyedStateStore<String>,
        MonotonicClock,
        NoOpMiddleware<std::time::Instant>,
    >,
    /// Earliest next request per host, pushed forward by `Retry-After` and backoff. Governor
    /// cannot delay one key by an arbitrary time, so this map does that part.
    next_allowed: Mutex<HashMap<String, Instant>>,
    /// One request in flight per host: the rate bounds starts, this bounds overlap, so a slow
    /// host never has several of our requests open at once.
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Per-host spacing longer than the quota's (robots.txt `Crawl-delay`), applied by pushing
    /// `next_allowed` after each request.
    min_interval: Mutex<HashMap<String, Duration>>,
    /// Hosts that asked to be left alone for longer than the run can wait (`Retry-After` over
    /// the cap), with why. Their remaining URLs are not attempted this run: they fail at once
    /// as deferred instead of sleeping into the run deadline and being left unjudged.
    skipped: Mutex<HashMap<String, String>>,
}

impl HostPacer {
    fn new(rate: f64) -> Self {
        let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN));
        HostPacer {
            governor: RateLimiter::new(quota, DefaultKeyedStateStore::default(), MonotonicClock),
            next_allowed: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            min_interval: Mutex::new(HashMap::new()),
            skipped: Mutex::new(HashMap::new()),
        }
    }

    /// Skips `host` for the rest of the run.
    fn skip(&self, host: &str, why: String) {
        self.skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(host.to_string())
            .or_insert(why);
    }

    /// Why `host` is skipped this run, if it is.
    fn skipped(&self, host: &str) -> Option<String> {
        self.skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    fn host_slot(&self, host: &str) -> Arc<Semaphore> {
        // (cloned out of the map so the map's lock is not held while waiting)
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }

    /// Waits until `host` may receive a request.
    async fn ready(&self, host: &str) {
        loop {
            let until = self
                .next_allowed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(host)
                .copied();
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        self.governor.until_key_ready(&host.to_string()).await;
    }

    /// Spaces requests to `host` at least `interval` apart from now on.
    fn set_min_interval(&self, host: &str, interval: Duration) {
        self.min_interval
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_string(), interval);
    }

    /// Records that a request to `host` was just sent.
    fn after_request(&self, host: &str) {
        let interval = self
            .min_interval
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .copied();
        if let Some(i) = interval {
            self.push_back(host, i);
        }
    }

    /// Makes `host` wait at least `delay` before its next request.
    fn push_back(&self, host: &str, delay: Duration) {
        let t = Instant::now() + delay;
        let mut map = self
            .next_allowed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = map.entry(host.to_string()).or_insert(t);
        if *e < t {
            *e = t;
        }
    }
}

/// The browser's requests go through the same politeness as plain fetches: the origin's
/// robots.txt (fetched once per run) and the host's pace (`--rate`, `Crawl-delay`,
/// `Retry-After`).
impl browser::Gate for Fetcher {
    fn admit<'a>(
        &'a self,
        url: &'a Url,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            match &*self.robots_for(url).await {
                RobotsRules::Rules(r) if !r.allowed(&self.agent, url.as_str()) => {
                    return Err(format!(
                        "robots.txt of {} disallows it for {}",
                        origin(url),
                        self.agent
                    ));
                }
                RobotsRules::Rules(_) => {}
                RobotsRules::Unreachable { detail, .. } => {
                    return Err(format!(
                        "robots.txt of {} could not be read ({detail})",
                        origin(url)
                    ));
                }
            }
            let host = host_key(url);
            if let Some(why) = self.pacer.skipped(&host) {
                return Err(format!("not attempted: {why}"));
            }
            self.pacer.ready(&host).await;
            self.pacer.after_request(&host);
            Ok(())
        })
    }
}

/// The polite, guarded HTTP client.
pub struct Fetcher {
    /// Sends every `http://` request. Its TLS settings are never used, so it is built without
    /// loading the system's certificate roots (a few milliseconds a run).
    plain: reqwest::Client,
    /// Sends every `https://` request; built, with the system's roots, on first use or by
    /// [`Fetcher::prepare_tls`]. The redirect chain is followed here, hop by hop, so each
    /// hop goes to the client of its own scheme.
    tls: std::sync::OnceLock<Result<reqwest::Client, String>>,
    cfg: FetchConfig,
    pacer: HostPacer,
    global: Semaphore,
    /// robots.txt per origin, fetched at most once per run (the cell makes concurrent askers
    /// wait for the one fetch).
    robots: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<RobotsRules>>>>>,
    /// The product token matched against robots.txt groups (`citewatch`).
    agent: String,
}

/// What an origin's robots.txt says for this run.
#[derive(Debug, Clone)]
pub enum RobotsRules {
    /// Rules to obey (an empty set when the file is missing: RFC 9309 "unavailable").
    Rules(robots::Robots),
    /// The file could not be read (5xx, 429, network, or the address guard refused the
    /// origin): nothing on the origin is fetched this run (RFC 9309 "unreachable").
    Unreachable {
        /// Transient, or Blocked when the guard refused the address.
        class: FailureClass,
        /// Why.
        detail: String,
    },
}

/// Longest `Crawl-delay` honoured; a longer one is treated as this.
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);

/// A response with the permits that were held to send it (released when it is dropped, after
/// the body has been read).
struct Sent<'a> {
    resp: reqwest::Response,
    /// The request's head, for the record.
    request: String,
    _host: tokio::sync::OwnedSemaphorePermit,
    _global: tokio::sync::SemaphorePermit<'a>,
}

/// The fetcher could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build HTTP client: {0}")]
pub struct BuildError(String);

/// `scheme://host:port` of a URL: the scope of a robots.txt.
pub fn origin(url: &Url) -> String {
    let (scheme, host) = (url.scheme(), url.host_str().unwrap_or(""));
    let mut s = String::with_capacity(scheme.len() + host.len() + 9);
    s.push_str(scheme);
    s.push_str("://");
    s.push_str(host);
    push_port(&mut s, url);
    s
}

/// Host key for pacing: host and port, so distinct ports are distinct hosts.
pub fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    let mut s = String::with_capacity(host.len() + 6);
    s.push_str(host);
    push_port(&mut s, url);
    s
}

/// `:port` (the scheme's default when none is written). Built without the formatting
/// machinery: [`origin`] and [`host_key`] are built for every request.
fn push_port(s: &mut String, url: &Url) {
    s.push(':');
    s.push_str(itoa::Buffer::new().format(url.port_or_known_default().unwrap_or(0)));
}

/// What both clients share: no redirects followed (the chain is followed hop by hop, each
/// through the guard), no proxy, the guarded resolver, timeouts and header caps.
fn client_builder(cfg: &FetchConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none())
        // No retries inside the client: every request goes through the host's pacer and
        // robots.txt, and a transient failure is retried by `Fetcher::fetch` with backoff.
        // (reqwest's default re-sends an HTTP/2 or HTTP/3 request the server refused, past
        // the pacer, and copies every request's head in case it has to.)
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .no_proxy()
        .dns_resolver(guard::GuardedResolver::new(cfg.addresses))
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
        // Header caps: at most 200 header lines over HTTP/1 (hyper also bounds its read
        // buffer), 64 KiB of headers over HTTP/2.
        .http1_max_headers(200)
        .http2_max_header_list_size(64 * 1024)
}

impl Fetcher {
    /// Builds a fetcher.
    pub fn new(cfg: FetchConfig) -> Result<Self, BuildError> {
        let plain = client_builder(&cfg)
            .tls_certs_only(std::iter::empty())
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        Ok(Fetcher {
            plain,
            tls: std::sync::OnceLock::new(),
            pacer: HostPacer::new(cfg.rate),
            global: Semaphore::new(cfg.concurrency.max(1)),
            robots: Mutex::new(HashMap::new()),
            agent: robots::product_token(&cfg.user_agent).to_ascii_lowercase(),
            cfg,
        })
    }

    /// Builds the `https://` client now. A run whose plan has an https source calls this
    /// before fetching anything, so a client that cannot be built stops the run at once
    /// instead of failing its https sources one by one.
    pub fn prepare_tls(&self) -> Result<(), BuildError> {
        self.tls_client().map(|_| ())
    }

    /// Whether the `https://` client has been built (by an https request or
    /// [`Fetcher::prepare_tls`]).
    pub fn tls_ready(&self) -> bool {
        self.tls.get().is_some()
    }

    fn tls_client(&self) -> Result<&reqwest::Client, BuildError> {
        self.tls
            .get_or_init(|| client_builder(&self.cfg).build().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| BuildError(e.clone()))
    }

    /// The client for this URL's scheme.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, BuildError> {
        match url.scheme() {
            "http" => Ok(&self.plain),
            _ => self.tls_client(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// Fetches a URL, following redirects and retrying transient failures.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> FetchOutcome {
        let mut attempt = 0;
        loop {
            let (outcome, retry_after) = self.fetch_chain(url, validators).await;
            let transient = matches!(
                outcome,
                FetchOutcome::Failed {
                    class: FailureClass::Transient,
                    ..
                }
            );
            if !transient || attempt >= self.cfg.retries {
                return outcome;
            }
            let host = host_key(url);
            let delay = match retry_after {
                Some(d) if d > self.cfg.max_retry_after => {
                    let why = format!(
                        "Retry-After {}s exceeds the {}s cap, host skipped this run",
                        d.as_secs(),
                        self.cfg.max_retry_after.as_secs()
                    );
                    self.pacer.skip(&host, why.clone());
                    return match outcome {
                        FetchOutcome::Failed {
                            status,
                            detail,
                            redirects,
                            ..
                        } => FetchOutcome::Failed {
                            class: FailureClass::Deferred,
                            status,
                            detail: format!("{detail}; {why}"),
                            redirects,
                        },
                        other => other,
                    };
                }
                Some(d) => d,
                None => backoff(self.cfg.backoff, attempt),
            };
            tracing::debug!(url = %crate::redact(url.as_str()), ?delay, attempt, "retrying");
            self.pacer.push_back(&host, delay);
            attempt += 1;
        }
    }

    /// One attempt: the request and its redirect chain. Returns a `Retry-After` when given.
    async fn fetch_chain(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> (FetchOutcome, Option<Duration>) {
        let mut current = url.clone();
        let mut hops: Vec<Hop> = Vec::new();
        let mut exchanges: Vec<Exchange> = Vec::new();
        loop {
            if let Err(refused) = guard::check_host(&current, self.cfg.addresses) {
                return (
                    failed(FailureClass::Blocked, None, refused.to_string(), hops),
                    None,
                );
            }
            match &*self.robots_for(&current).await {
                RobotsRules::Rules(r) if !r.allowed(&self.agent, current.as_str()) => {
                    let detail = format!(
                        "robots.txt of {} disallows {} for {}",
                        origin(&current),
                        robots::path_params_query(current.as_str()),
                        self.agent
                    );
                    return (
                        failed(FailureClass::Blocked, None, crate::redact(&detail), hops),
                        None,
                    );
                }
                RobotsRules::Rules(_) => {}
                RobotsRules::Unreachable {
                    class: FailureClass::Blocked,
                    detail,
                } => {
                    return (
                        failed(FailureClass::Blocked, None, detail.clone(), hops),
                        None,
                    );
                }
                RobotsRules::Unreachable { detail, .. } => {
                    let detail = format!(
                        "robots.txt of {} could not be read ({detail}); nothing there is fetched this run",
                        origin(&current)
                    );
                    return (failed(FailureClass::Deferred, None, detail, hops), None);
                }
            }
            let sent = match self.send(&current, Some(validators)).await {
                Ok(s) => s,
                Err((class, detail)) => return (failed(class, None, detail, hops), None),
            };
            let Sent {
                resp,
                request,
                _host: _host_permit,
                _global: _global_permit,
            } = sent;
            let status = resp.status();
            exchanges.push(Exchange {
                url: current.to_string(),
                request,
                response: response_head(&resp),
                status: status.as_u16(),
                reconstructed: false,
            });
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                // Browsers read a Location header as UTF-8; the URL parser percent-encodes it.
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string);
                let Some(location) = location else {
                    return (
                        failed(
                            FailureClass::Dead,
                            Some(status.as_u16()),
                            format!("HTTP {} without Location", status.as_u16()),
                            hops,
                        ),
                        None,
                    );
                };
                let next = match current.join(&location) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => u,
                    _ => {
                        return (
                            failed(
                                FailureClass::Blocked,
                                Some(status.as_u16()),
                                format!(
                                    "redirect to unusable location `{}`",
                                    crate::redact(&location.chars().take(200).collect::<String>())
                                ),
                                hops,
                            ),
                            None,
                        );
                    }
                };
                let mut next_clean = next.clone();
                next_clean.set_fragment(None);
                hops.push(Hop {
                    status: status.as_u16(),
                    from: current.to_string(),
                    to: next_clean.to_string(),
                });
                let looped =
                    next_clean == *url || hops.iter().any(|h| h.from == next_clean.as_str());
                if looped {
                    return (
                        failed(
                            FailureClass::Dead,
                            Some(status.as_u16()),
                            "redirect loop".into(),
                            hops,
                        ),
                        None,
                    );
                }
                if hops.len() > self.cfg.max_redirects {
                    return (
                        failed(
                            FailureClass::Dead,
                            Some(status.as_u16()),
                            format!("more than {} redirects", self.cfg.max_redirects),
                            hops,
                        ),
                        None,
                    );
                }
                current = next_clean;
                continue;
            }
            if status == StatusCode::NOT_MODIFIED {
                return (
                    FetchOutcome::NotModified {
                        final_url: current,
                        redirects: hops,
                        exchanges,
                    },
                    None,
                );
            }
            if status == StatusCode::PARTIAL_CONTENT {
                // We never ask for a range: part of a document is not the document.
                return (
                    failed(
                        FailureClass::Transient,
                        Some(206),
                        "HTTP 206 Partial Content to a request without Range".into(),
                        hops,
                    ),
                    None,
                );
            }
            if !status.is_success() {
                let retry_after = retry_after(resp.headers());
                let class = classify_status(status);
                let detail = format!("HTTP {}", status.as_u16());
                return (
                    failed(class, Some(status.as_u16()), detail, hops),
                    retry_after,
                );
            }
            let content_type = header_str(resp.headers(), header::CONTENT_TYPE);
            let validators = Validators {
                etag: header_str(resp.headers(), header::ETAG),
                last_modified: header_str(resp.headers(), header::LAST_MODIFIED),
            };
            return match self.read_body(resp).await {
                Ok(body) => (
                    FetchOutcome::Fetched(Fetched {
                        final_url: current,
                        status: status.as_u16(),
                        content_type,
                        validators,
                        body,
                        raw_body: None,
                        redirects: hops,
                        exchanges,
                    }),
                    None,
                ),
                Err((class, detail)) => (failed(class, Some(status.as_u16()), detail, hops), None),
            };
        }
    }

    /// What a browser render of `url` must pass first, as a plain fetch would: the address
    /// guard, robots.txt, and the host's pace (the render counts as a request to the host).
    pub async fn browser_preflight(&self, url: &Url) -> Result<(), (FailureClass, String)> {
        guard::check_host(url, self.cfg.addresses)
            .map_err(|r| (FailureClass::Blocked, r.to_string()))?;
        match &*self.robots_for(url).await {
            RobotsRules::Rules(r) if !r.allowed(&self.agent, url.as_str()) => {
                return Err((
                    FailureClass::Blocked,
                    crate::redact(&format!(
                        "robots.txt of {} disallows {} for {}",
                        origin(url),
                        robots::path_params_query(url.as_str()),
                        self.agent
                    )),
                ));
            }
            RobotsRules::Rules(_) => {}
            RobotsRules::Unreachable { class, detail } => {
                return Err((
                    *class,
                    format!("robots.txt of {} could not be read ({detail})", origin(url)),
                ));
            }
        }
        // The document's request is paced with the page's others, by the gate.
        Ok(())
    }

    /// Renders a page in the run's headless browser (`renderer`, or why there is none) after
    /// the same guard, robots.txt and pacing as a plain fetch, and classifies what happened,
    /// here, like any other fetch: no browser, a refused document or an oversized DOM is
    /// `Blocked`; a browser error is `Transient`.
    pub async fn render(
        &self,
        renderer: Result<&browser::Renderer, &str>,
        url: &Url,
    ) -> FetchOutcome {
        let failed = |class, detail: String| FetchOutcome::Failed {
            class,
            status: None,
            detail,
            redirects: vec![],
        };
        if let Err((class, detail)) = self.browser_preflight(url).await {
            return failed(class, detail);
        }
        let renderer = match renderer {
            Ok(r) => r,
            Err(e) => return failed(FailureClass::Blocked, e.to_string()),
        };
        match renderer
            .render_gated(url, browser::RenderLimits::default(), Some(self))
            .await
        {
            Ok(page) if page.html.is_empty() && !page.refused.is_empty() => failed(
                FailureClass::Blocked,
                format!(
                    "the browser's request was refused: {}",
                    page.refused.join("; ")
                ),
            ),
            Ok(page) if page.html.len() > self.cfg.max_body_bytes => failed(
                FailureClass::Blocked,
                format!(
                    "the rendered page exceeds the {}-byte cap",
                    self.cfg.max_body_bytes
                ),
            ),
            Ok(page) => {
                if page.hit_deadline {
                    tracing::info!(url = %crate::redact(url.as_str()), "page still loading at the render deadline; captured as it stood");
                }
                FetchOutcome::Fetched(Fetched {
                    final_url: url.clone(),
                    status: 200,
                    content_type: Some("text/html; charset=utf-8".into()),
                    validators: Validators::default(),
                    body: page.html.into_bytes(),
                    raw_body: page.raw,
                    redirects: vec![],
                    // The browser fetched the document itself: its head is not seen here.
                    exchanges: vec![Exchange {
                        url: url.to_string(),
                        request: request_head(
                            url,
                            &self.cfg.user_agent,
                            &reqwest::header::HeaderMap::new(),
                        ),
                        response: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n".into(),
                        status: 200,
                        reconstructed: true,
                    }],
                })
            }
            Err(e) => failed(FailureClass::Transient, e.to_string()),
        }
    }

    /// Sends one GET, paced for its host and within the global limit, after the address
    /// guard has passed it.
    async fn send(
        &self,
        url: &Url,
        validators: Option<&Validators>,
    ) -> Result<Sent<'_>, (FailureClass, String)> {
        if let Err(refused) = guard::check_host(url, self.cfg.addresses) {
            return Err((FailureClass::Blocked, refused.to_string()));
        }
        let host = host_key(url);
        if let Some(why) = self.pacer.skipped(&host) {
            return Err((FailureClass::Deferred, format!("not attempted: {why}")));
        }
        let slot = self.pacer.host_slot(&host);
        // The semaphores are never closed, so acquiring cannot fail; if it ever did, the URL
        // would be deferred, not the run aborted.
        let Ok(host_permit) = slot.acquire_owned().await else {
            return Err((FailureClass::Deferred, "host slot closed".into()));
        };
        self.pacer.ready(&host).await;
        let Ok(global) = self.global.acquire().await else {
            return Err((FailureClass::Deferred, "request slots closed".into()));
        };
        // Only an https client that failed to build (after the run's start checked it, so
        // only for an https hop of an http source's redirects) stops a request here: the
        // source is deferred, not judged.
        let client = self
            .client_for(url)
            .map_err(|e| (FailureClass::Deferred, e.to_string()))?;
        let mut req = client
            .get(url.clone())
            .header(
                header::ACCEPT,
                header::HeaderValue::from_static(
                    "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,*/*;q=0.5",
                ),
            )
            .header(header::ACCEPT_LANGUAGE, header::HeaderValue::from_static("en"));
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
        }
        // Built once: its head is recorded from the very request that is sent.
        let built = req.build().map_err(|e| classify_error(&e))?;
        let request = request_head(url, &self.cfg.user_agent, built.headers());
        let resp = client
            .execute(built)
            .await
            .map_err(|e| classify_error(&e))?;
        self.pacer.after_request(&host);
        Ok(Sent {
            request,
            resp,
            _host: host_permit,
            _global: global,
        })
    }

    /// The robots.txt rules of `url`'s origin, fetching them on first use in this run;
    /// shared, not copied, for every URL of the origin.
    pub async fn robots_for(&self, url: &Url) -> Arc<RobotsRules> {
        let key = origin(url);
        let cell = {
            let mut map = self
                .robots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(key.clone())
                .or_insert_with(|| Arc::new(tokio::sync::OnceCell::new()))
                .clone()
        };
        cell.get_or_init(|| async {
            let rules = self.fetch_robots(&key).await;
            if let RobotsRules::Rules(r) = &rules
                && let Some(delay) = r.crawl_delay(&self.agent)
            {
                let host = host_key(url);
                self.pacer
                    .set_min_interval(&host, delay.min(MAX_CRAWL_DELAY));
            }
            Arc::new(rules)
        })
        .await
        .clone()
    }

    /// Fetches `origin/robots.txt` (RFC 9309): 2xx → its rules; 4xx (and too many redirects)
    /// → no rules; 5xx, 429 or a network error → unreachable for this run. Redirects are
    /// followed up to five hops, each through the guard; at most 500 KiB is parsed.
    async fn fetch_robots(&self, origin: &str) -> RobotsRules {
        let Ok(mut url) = Url::parse(&format!("{origin}/robots.txt")) else {
            return RobotsRules::Rules(robots::Robots::allow_all());
        };
        for _ in 0..=5 {
            let sent = match self.send(&url, None).await {
                Ok(s) => s,
                Err((class, detail)) => {
                    let class = if class == FailureClass::Blocked {
                        class
                    } else {
                        FailureClass::Deferred
                    };
                    return RobotsRules::Unreachable { class, detail };
                }
            };
            let status = sent.resp.status();
            if status.is_redirection() {
                let next = sent
                    .resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                match next {
                    Some(n) if matches!(n.scheme(), "http" | "https") => {
                        url = n;
                        continue;
                    }
                    _ => return RobotsRules::Rules(robots::Robots::allow_all()),
                }
            }
            if status.is_success() {
                let mut resp = sent.resp;
                let mut body = Vec::new();
                loop {
                    match resp.chunk().await {
                        Ok(Some(c)) => {
                            body.extend_from_slice(&c);
                            if body.len() >= robots::MAX_ROBOTS_BYTES {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            return RobotsRules::Unreachable {
                                class: FailureClass::Deferred,
                                detail: classify_error(&e).1,
                            };
                        }
                    }
                }
                return RobotsRules::Rules(robots::Robots::parse(&body));
            }
            if status.as_u16() == 429 || status.is_server_error() {
                return RobotsRules::Unreachable {
                    class: FailureClass::Deferred,
                    detail: format!("HTTP {}", status.as_u16()),
                };
            }
            return RobotsRules::Rules(robots::Robots::allow_all());
        }
        RobotsRules::Rules(robots::Robots::allow_all())
    }

    /// Streams the body, stopping at the cap (so a compression bomb costs at most the cap).
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>, (FailureClass, String)> {
        let cap = self.cfg.max_body_bytes;
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > cap {
                        return Err((
                            FailureClass::Blocked,
                            format!("body exceeds the {cap}-byte cap"),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(classify_error(&e)),
            }
        }
    }
}

fn failed(
    class: FailureClass,
    status: Option<u16>,
    detail: String,
    redirects: Vec<Hop>,
) -> FetchOutcome {
    FetchOutcome::Failed {
        class,
        status,
        detail,
        redirects,
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Exponential backoff with up to 50% random jitter.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(10));
    let jitter = rand_fraction() * 0.5;
    exp.mul_f64(1.0 + jitter)
}

/// A cheap random fraction in [0, 1) for jitter (no need for a CSPRNG).
fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Classifies an HTTP error status.
pub fn classify_status(status: StatusCode) -> FailureClass {
    match status.as_u16() {
        401 | 403 | 451 => FailureClass::Blocked,
        410 => FailureClass::Gone,
        408 | 425 | 429 => FailureClass::Transient,
        s if s >= 500 => FailureClass::Transient,
        _ => FailureClass::Dead,
    }
}

/// Classifies a transport error, looking through its sources for the guard's refusal.
fn classify_error(e: &reqwest::Error) -> (FailureClass, String) {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain = Vec::new();
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<guard::Refused>() {
            return (FailureClass::Blocked, r.to_string());
        }
        chain.push(s.to_string());
        src = s.source();
    }
    let text = chain.join(": ");
    let text = crate::redact(&text);
    if e.is_timeout() {
        return (FailureClass::Transient, "timed out".into());
    }
    let lower = text.to_lowercase();
    if lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        return (
            FailureClass::Dead,
            format!("DNS: {}", chain.last().cloned().unwrap_or_default()),
        );
    }
    (FailureClass::Transient, last_meaningful(&chain))
}

fn last_meaningful(chain: &[String]) -> String {
    let mut parts: Vec<&str> = chain.iter().map(String::as_str).collect();
    parts.dedup();
    let s = parts.join(": ");
    crate::redact(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The robots.txt scope and the pacing key: the scheme's default port when none is
    /// written, hosts as the URL spells them (lower case, IPv6 in brackets).
    #[test]
    fn origins_and_host_keys_name_scheme_host_and_port() {
        for (url, origin_is, host_is) in [
            ("http://a.example/x", "http://a.example:80", "a.example:80"),
            (
                "https://A.Example/x?q",
                "https://a.example:443",
                "a.example:443",
            ),
            (
                "https://a.example:8443/",
                "https://a.example:8443",
                "a.example:8443",
            ),
            (
                "http://127.0.0.1:65535/",
                "http://127.0.0.1:65535",
                "127.0.0.1:65535",
            ),
            ("http://[::1]:8080/p", "http://[::1]:8080", "[::1]:8080"),
            ("http://a.example:0/", "http://a.example:0", "a.example:0"),
        ] {
            let u = Url::parse(url).unwrap();
            assert_eq!(origin(&u), origin_is, "{url}");
            assert_eq!(host_key(&u), host_is, "{url}");
        }
    }

    #[test]
    fn exchange_heads_are_written_as_sent_and_received() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("accept-language", "en".parse().unwrap());
        headers.insert("if-none-match", "\"v1\"".parse().unwrap());
        let url = Url::parse("http://127.0.0.1:8080/a/b?c=1&d").unwrap();
        assert_eq!(
            request_head(&url, "citewatch/0 (+x)", &headers),
            "GET /a/b?c=1&d HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: citewatch/0 (+x)\r\n\
             accept-language: en\r\nif-none-match: \"v1\"\r\n\
             Accept-Encoding: gzip, br, deflate\r\n\r\n"
        );
        let url = Url::parse("https://example.org/").unwrap();
        assert_eq!(
            request_head(&url, "ua", &reqwest::header::HeaderMap::new()),
            "GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: ua\r\nAccept-Encoding: gzip, br, deflate\r\n\r\n"
        );
        let resp = axum::http::Response::builder()
            .status(304)
            .header("etag", "\"v1\"")
            .header("x-odd", &b"caf\xe9"[..])
            .body("")
            .unwrap();
        assert_eq!(
            response_head(&reqwest::Response::from(resp)),
            "HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\nx-odd: caf\u{fffd}\r\n\r\n"
        );
    }

    #[test]
    fn statuses_are_classified_once() {
        assert_eq!(
            classify_status(StatusCode::FORBIDDEN),
            FailureClass::Blocked
        );
        assert_eq!(
            classify_status(StatusCode::UNAUTHORIZED),
            FailureClass::Blocked
        );
        assert_eq!(
            classify_status(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS),
            FailureClass::Blocked
        );
        assert_eq!(classify_status(StatusCode::NOT_FOUND), FailureClass::Dead);
        assert_eq!(classify_status(StatusCode::GONE), FailureClass::Gone);
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS),
            FailureClass::Transient
        );
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE),
            FailureClass::Transient
        );
    }

    #[test]
    fn permanent_target_is_the_leading_permanent_run() {
        let hop = |s, f: &str, t: &str| Hop {
            status: s,
            from: f.into(),
            to: t.into(),
        };
        assert_eq!(
            permanent_target(&[hop(301, "a", "b"), hop(308, "b", "c"), hop(302, "c", "d")]),
            Some("c")
        );
        assert_eq!(
            permanent_target(&[hop(302, "a", "b"), hop(301, "b", "c")]),
            None
        );
        assert_eq!(permanent_target(&[]), None);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_honours_push_back_and_crawl_delay_in_paused_time() {
        let p = HostPacer::new(1000.0);
        p.ready("h:80").await;
        // A Retry-After of 30 s holds the host, and only that host.
        p.push_back("h:80", Duration::from_secs(30));
        let t = Instant::now();
        p.ready("other:80").await;
        assert!(t.elapsed() < Duration::from_secs(1));
        p.ready("h:80").await;
        assert!(t.elapsed() >= Duration::from_secs(30), "{:?}", t.elapsed());
        // A crawl delay spaces every request after it.
        p.set_min_interval("h:80", Duration::from_secs(5));
        p.after_request("h:80");
        let t = Instant::now();
        p.ready("h:80").await;
        assert!(t.elapsed() >= Duration::from_secs(5), "{:?}", t.elapsed());
        // A shorter push-back never shortens a longer wait.
        p.push_back("h:80", Duration::from_secs(10));
        p.push_back("h:80", Duration::from_secs(1));
        let t = Instant::now();
        p.ready("h:80").await;
        assert!(t.elapsed() >= Duration::from_secs(10), "{:?}", t.elapsed());
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let b = Duration::from_millis(100);
        let d0 = backoff(b, 0);
        let d2 = backoff(b, 2);
        assert!(d0 >= b && d0 <= b.mul_f64(1.5));
        assert!(d2 >= b * 4 && d2 <= (b * 4).mul_f64(1.5));
    }
}
