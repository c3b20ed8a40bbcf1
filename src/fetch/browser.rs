//! Rendering JavaScript pages in headless Chromium (Debian's `chromium`), for sources cited
//! with `render = "browser"`.
//!
//! An I/O edge beside the HTTP fetcher. One browser process per run, launched on first use
//! and killed with the run; one tab, reused page after page. Every request the page makes —
//! the document, scripts, XHR/fetch, images — is paused through the DevTools Fetch domain and
//! checked against the same address policy as plain fetches (the browser's own DNS answer is
//! not trusted: citewatch resolves the name and checks every address) before it may continue;
//! refused requests fail as "blocked by client". The caller applies robots.txt and per-host
//! pacing to the document before asking for a render. A page gets a hard deadline; one that
//! never stops loading is captured as it stands at the deadline.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams,
    GetResponseBodyParams, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::guard::{self, AddressPolicy};

/// Where Debian installs Chromium; `CITEWATCH_CHROMIUM` overrides (a path that does not
/// exist means "no browser").
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CITEWATCH_CHROMIUM") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Per-page limits.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// Hard deadline for one page, navigation and settling included.
    pub deadline: Duration,
    /// The page counts as settled after this long without a new request.
    pub quiet: Duration,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            deadline: Duration::from_secs(20),
            quiet: Duration::from_millis(800),
        }
    }
}

/// What a render produced.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The DOM after scripts ran, serialised as HTML.
    pub html: String,
    /// Requests the page made (all checked).
    pub requests: usize,
    /// Requests refused by the address policy.
    pub refused: Vec<String>,
    /// Whether the page was still loading at the deadline.
    pub hit_deadline: bool,
    /// The raw response body of the page's document, as the server sent it (before scripts).
    pub raw: Option<Vec<u8>>,
}

/// A running headless browser with one reusable tab.
pub struct Renderer {
    browser: Mutex<Browser>,
    page: Mutex<Page>,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
    policy: AddressPolicy,
    /// Requests seen / refused on the current page; reset per render.
    seen: Arc<AtomicUsize>,
    refused: Arc<std::sync::Mutex<Vec<String>>>,
    last_request: Arc<std::sync::Mutex<Instant>>,
    /// The first document response body of the current page.
    raw: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

/// Why rendering is not possible.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No Chromium on this machine.
    #[error(
        "render = \"browser\" needs Chromium, which is not installed (Debian: apt-get install chromium)"
    )]
    NoBrowser,
    /// The browser failed.
    #[error("headless Chromium: {0}")]
    Browser(String),
}

/// Whether a URL the browser wants may be requested under `policy`.
async fn allowed(url: &str, policy: AddressPolicy) -> Result<(), String> {
    let Ok(u) = url::Url::parse(url) else {
        return Err(format!("unparseable URL {url}"));
    };
    match u.scheme() {
        "http" | "https" => {}
        // No network: inline and in-page resources.
        "data" | "blob" | "about" => return Ok(()),
        other => return Err(format!("scheme {other} refused")),
    }
    if let Err(r) = guard::check_host(&u, policy) {
        return Err(r.to_string());
    }
    if matches!(u.host(), Some(url::Host::Domain(_))) {
        let host = u.host_str().unwrap_or_default();
        let port = u.port_or_known_default().unwrap_or(80);
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("DNS {host}: {e}"))?
            .map(|a| a.ip())
            .collect();
        if addrs.is_empty() {
            return Err(format!("DNS {host}: no address"));
        }
        for a in addrs {
            guard::check_ip(a, policy).map_err(|r| r.to_string())?;
        }
    }
    Ok(())
}

impl Renderer {
    /// Launches headless Chromium with a throwaway profile and no background traffic. Every
    /// request it sends carries `user_agent` (the run's configured User-Agent), never
    /// Chromium's own `HeadlessChrome` string.
    pub async fn launch(policy: AddressPolicy, user_agent: &str) -> Result<Renderer, RenderError> {
        // A User-Agent is one header line: control characters would end it early.
        if user_agent.chars().any(char::is_control) {
            return Err(RenderError::Browser(
                "the configured user_agent contains control characters".into(),
            ));
        }
        let exe = chromium_path().ok_or(RenderError::NoBrowser)?;
        let profile = tempfile::tempdir().map_err(|e| RenderError::Browser(e.to_string()))?;
        let config = BrowserConfig::builder()
            .chrome_executable(exe)
            .no_sandbox()
            .user_data_dir(profile.path())
            .launch_timeout(Duration::from_secs(20))
            .request_timeout(Duration::from_secs(20))
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-domain-reliability",
                "--no-pings",
                // Proxies must not route around the address policy.
                "--no-proxy-server",
            ])
            .arg(format!("--user-agent={user_agent}"))
            .build()
            .map_err(RenderError::Browser)?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .map_err(|e| RenderError::Browser(e.to_string()))?;
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser
            .new_page("about:blank")
            .await
            .map_err(|e| RenderError::Browser(e.to_string()))?;
        // The command-line switch covers every request; the override also sets what scripts
        // read from navigator.userAgent on this tab.
        page.set_user_agent(user_agent)
            .await
            .map_err(|e| RenderError::Browser(e.to_string()))?;
        // Every request is paused before it is sent (for the guard); documents are paused again
        // when their response arrives (to keep the raw body beside the rendered DOM).
        let request_stage = RequestPattern::builder()
            .url_pattern("*")
            .request_stage(RequestStage::Request)
            .build();
        let document_response = RequestPattern::builder()
            .url_pattern("*")
            .resource_type(ResourceType::Document)
            .request_stage(RequestStage::Response)
            .build();
        page.execute(
            EnableParams::builder()
                .pattern(request_stage)
                .pattern(document_response)
                .build(),
        )
        .await
        .map_err(|e| RenderError::Browser(e.to_string()))?;
        let seen = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
        let last_request = Arc::new(std::sync::Mutex::new(Instant::now()));
        let raw = Arc::new(std::sync::Mutex::new(None));
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| RenderError::Browser(e.to_string()))?;
        let (p, s, r, l, w) = (
            page.clone(),
            seen.clone(),
            refused.clone(),
            last_request.clone(),
            raw.clone(),
        );
        tokio::spawn(async move {
            while let Some(ev) = paused.next().await {
                if ev.response_status_code.is_some() || ev.response_error_reason.is_some() {
                    // A document's response: keep the first one's body, then let it through.
                    let first = w
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .is_none();
                    let wanted = first
                        && ev
                            .response_status_code
                            .is_some_and(|c| !(300..400).contains(&c));
                    if wanted
                        && let Ok(body) = p
                            .execute(GetResponseBodyParams::new(ev.request_id.clone()))
                            .await
                    {
                        let bytes = if body.result.base64_encoded {
                            base64::engine::general_purpose::STANDARD
                                .decode(&body.result.body)
                                .unwrap_or_default()
                        } else {
                            body.result.body.clone().into_bytes()
                        };
                        *w.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bytes);
                    }
                    let _ = p
                        .execute(ContinueRequestParams::new(ev.request_id.clone()))
                        .await;
                    continue;
                }
                s.fetch_add(1, Ordering::Relaxed);
                *l.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
                let url = ev.request.url.clone();
                match allowed(&url, policy).await {
                    Ok(()) => {
                        let _ = p
                            .execute(ContinueRequestParams::new(ev.request_id.clone()))
                            .await;
                    }
                    Err(why) => {
                        r.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(format!("{}: {why}", crate::redact(&url)));
                        let _ = p
                            .execute(FailRequestParams::new(
                                ev.request_id.clone(),
                                ErrorReason::BlockedByClient,
                            ))
                            .await;
                    }
                }
            }
        });
        Ok(Renderer {
            browser: Mutex::new(browser),
            page: Mutex::new(page),
            handler,
            _profile: profile,
            policy,
            seen,
            refused,
            last_request,
            raw,
        })
    }

    /// The address policy applied to every request.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Loads `url`, lets scripts run until the network is quiet or the deadline passes, and
    /// returns the DOM. Pages are rendered one at a time in the shared tab.
    pub async fn render(
        &self,
        url: &url::Url,
        limits: RenderLimits,
    ) -> Result<Rendered, RenderError> {
        let page = self.page.lock().await;
        self.seen.store(0, Ordering::Relaxed);
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        *self
            .raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let started = Instant::now();
        let end = started + limits.deadline;
        let nav = tokio::time::timeout_at(end, page.goto(url.as_str())).await;
        let mut hit_deadline = false;
        match nav {
            Err(_) => hit_deadline = true,
            Ok(Err(e)) => {
                let refused = self
                    .refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if !refused.is_empty() {
                    return Ok(Rendered {
                        html: String::new(),
                        requests: self.seen.load(Ordering::Relaxed),
                        refused,
                        hit_deadline: false,
                        raw: None,
                    });
                }
                return Err(RenderError::Browser(format!(
                    "navigation to {} failed: {e}",
                    crate::redact(url.as_str())
                )));
            }
            Ok(Ok(_)) => {}
        }
        // Settle: wait until no request has started for `quiet`, within the deadline.
        while !hit_deadline {
            let last = *self
                .last_request
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let quiet_until = last.max(started) + limits.quiet;
            if Instant::now() >= quiet_until {
                break;
            }
            if quiet_until >= end {
                tokio::time::sleep_until(end).await;
                hit_deadline = true;
                break;
            }
            tokio::time::sleep_until(quiet_until).await;
        }
        let html = tokio::time::timeout(Duration::from_secs(5), page.content())
            .await
            .map_err(|_| RenderError::Browser("reading the DOM timed out".into()))?
            .map_err(|e| RenderError::Browser(e.to_string()))?;
        let raw = self
            .raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // Leave the tab empty for the next page (and stop anything still running).
        let _ = tokio::time::timeout(Duration::from_secs(5), page.goto("about:blank")).await;
        Ok(Rendered {
            raw,
            html,
            requests: self.seen.load(Ordering::Relaxed),
            refused: self
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            hit_deadline,
        })
    }

    /// Closes the browser (the process is killed if it does not exit).
    pub async fn close(self) {
        let mut b = self.browser.lock().await;
        if tokio::time::timeout(Duration::from_secs(5), b.close())
            .await
            .is_err()
        {
            let _ = b.kill().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), b.wait()).await;
        self.handler.abort();
    }
}
