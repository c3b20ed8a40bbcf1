//! Rendering JavaScript pages in headless Chromium (Debian's `chromium`), for sources cited
//! with `render = "browser"`.
//!
//! An I/O edge beside the HTTP fetcher. One browser process per run, launched on first use
//! and killed with the run; one tab, reused page after page.
//!
//! Containment, in two layers:
//! - **One egress.** Chromium's only way out is citewatch's in-process forward proxy
//!   ([`super::proxy`]): `--proxy-server` with loopback not exempt, WebRTC limited to proxied
//!   traffic, DNS prefetch off, service workers bypassed. The proxy resolves each host once,
//!   applies the address policy to the answer and connects to exactly that address.
//! - **Polite requests.** Every HTTP request the page makes is paused through the DevTools
//!   Fetch domain and decided by the caller's [`Gate`] (the fetcher: that origin's robots.txt,
//!   fetched once per run, and its per-host pace), after the address policy. Images, media,
//!   fonts and stylesheets are not fetched at all (the text does not depend on them); a page
//!   may make at most [`PageBudget::max_requests`] requests and pull
//!   [`PageBudget::max_bytes`] through the proxy.
//!
//! The browser dies with citewatch, SIGKILL included: it is started through `setpriv
//! --pdeathsig KILL`, and its profile lives in a directory named after citewatch's process id,
//! so a later run finds and removes what a killed one left (processes included). A page gets a
//! hard deadline; one that never stops loading is captured as it stands at the deadline.

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
use super::proxy::{Egress, EgressProxy};

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

/// What one page may pull in.
#[derive(Debug, Clone, Copy)]
pub struct PageBudget {
    /// Requests (document included) one page may make; later ones are refused.
    pub max_requests: usize,
    /// Bytes one page may pull through the proxy; past it, its connections are cut.
    pub max_bytes: u64,
}

impl Default for PageBudget {
    fn default() -> Self {
        PageBudget {
            max_requests: 100,
            max_bytes: 20 << 20,
        }
    }
}

/// How a browser is launched.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Which addresses it may reach.
    pub egress: Egress,
    /// The User-Agent of every request.
    pub user_agent: String,
    /// Per-page limits on requests and bytes.
    pub budget: PageBudget,
}

/// Decides whether the page may send a request (robots.txt, pacing): the fetcher.
pub trait Gate: Sync {
    /// Waits for the request's turn, or says why it may not be sent.
    fn admit<'a>(
        &'a self,
        url: &'a url::Url,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
}

/// Resource types a text reading never needs: not fetched at all.
fn unneeded(t: &ResourceType) -> bool {
    matches!(
        t,
        ResourceType::Image
            | ResourceType::Media
            | ResourceType::Font
            | ResourceType::Stylesheet
            | ResourceType::Ping
            | ResourceType::CspViolationReport
            | ResourceType::Prefetch
    )
}

/// A request the page wants to send, paused until decided.
struct Paused {
    id: chromiumoxide::cdp::browser_protocol::fetch::RequestId,
    url: String,
    kind: ResourceType,
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
    egress: Egress,
    proxy: EgressProxy,
    budget: PageBudget,
    /// Requests paused by the browser, decided by `render`.
    requests: Mutex<tokio::sync::mpsc::UnboundedReceiver<Paused>>,
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

/// Whether a URL the browser wants may be requested under the egress policy (an early, clear
/// refusal; the proxy checks the address it connects to again).
async fn allowed(url: &str, egress: &Egress) -> Result<(), String> {
    let Ok(u) = url::Url::parse(url) else {
        return Err(format!("unparseable URL {url}"));
    };
    match u.scheme() {
        "http" | "https" | "ws" | "wss" => {}
        other => return Err(format!("scheme {other} refused")),
    }
    if let Err(r) = guard::check_host(&u, egress.policy) {
        return Err(r.to_string());
    }
    let host = u.host_str().unwrap_or_default();
    let port = u.port_or_known_default().unwrap_or(80);
    egress.resolve(host, port).await.map(|_| ())
}

/// Profiles of citewatch's browsers live in directories named `citewatch-chromium-<pid>-…`
/// under the temporary directory.
const PROFILE_PREFIX: &str = "citewatch-chromium-";

/// Removes what browsers of dead citewatch processes left: their processes (found by their
/// profile path on the command line) and their profile directories.
pub fn reap_stale_browsers() -> usize {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return 0;
    };
    let mut reaped = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PROFILE_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let dir = e.path();
        kill_processes_using(&dir);
        if std::fs::remove_dir_all(&dir).is_ok() {
            reaped += 1;
            tracing::info!(profile = %dir.display(), "removed a browser profile left by a killed run");
        }
    }
    reaped
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills every process whose command line names `dir` (a stale browser and its helpers).
fn kill_processes_using(dir: &std::path::Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(&needle) {
            // SAFETY-free: `kill` via the command, no unsafe code here.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A launcher script in the profile's directory: Chromium started through `setpriv
/// --pdeathsig KILL`, so it is killed when the citewatch thread that started it dies.
fn launcher(dir: &std::path::Path, exe: &std::path::Path) -> std::io::Result<PathBuf> {
    let quoted =
        |p: &std::path::Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists());
    let script = match setpriv {
        Some(sp) => format!(
            "#!/bin/sh\nexec {} --pdeathsig KILL -- {} \"$@\"\n",
            quoted(sp),
            quoted(exe)
        ),
        None => format!("#!/bin/sh\nexec {} \"$@\"\n", quoted(exe)),
    };
    let path = dir.join("chromium.sh");
    std::fs::write(&path, script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(path)
}

impl Renderer {
    /// Launches headless Chromium with a throwaway profile and no background traffic. Every
    /// request it sends carries `user_agent` (the run's configured User-Agent), never
    /// Chromium's own `HeadlessChrome` string.
    pub async fn launch(policy: AddressPolicy, user_agent: &str) -> Result<Renderer, RenderError> {
        Renderer::launch_with(LaunchOptions {
            egress: Egress { policy, only: None },
            user_agent: user_agent.to_string(),
            budget: PageBudget::default(),
        })
        .await
    }

    /// Launches headless Chromium behind citewatch's egress proxy (see the module docs).
    pub async fn launch_with(opts: LaunchOptions) -> Result<Renderer, RenderError> {
        let user_agent = opts.user_agent.as_str();
        let policy = opts.egress.policy;
        // A User-Agent is one header line: control characters would end it early.
        if user_agent.chars().any(char::is_control) {
            return Err(RenderError::Browser(
                "the configured user_agent contains control characters".into(),
            ));
        }
        let exe = chromium_path().ok_or(RenderError::NoBrowser)?;
        reap_stale_browsers();
        let err = |e: std::io::Error| RenderError::Browser(e.to_string());
        let profile = tempfile::Builder::new()
            .prefix(&format!("{PROFILE_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(err)?;
        let launcher = launcher(profile.path(), &exe).map_err(err)?;
        let proxy = EgressProxy::start(opts.egress.clone(), opts.budget.max_bytes)
            .await
            .map_err(err)?;
        let config = BrowserConfig::builder()
            .chrome_executable(launcher)
            .no_sandbox()
            .user_data_dir(profile.path().join("profile"))
            .launch_timeout(Duration::from_secs(20))
            .request_timeout(Duration::from_secs(20))
            // chromiumoxide adds the leading `--` itself.
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "disable-domain-reliability",
                "no-pings",
                "dns-prefetch-disable",
            ])
            // One egress: the proxy, loopback not exempt, nothing around it.
            .arg(("proxy-server", format!("http://{}", proxy.addr).as_str()))
            .arg(("proxy-bypass-list", "<-loopback>"))
            .arg(("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"))
            .arg(("webrtc-ip-handling-policy", "disable_non_proxied_udp"))
            .arg((
                "disable-features",
                "TranslateUI,NetworkPrediction,Prerender2,PreloadMediaEngagementData",
            ))
            .arg(("user-agent", user_agent))
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
        // Service workers would answer requests outside the Fetch domain's view.
        page.execute(
            chromiumoxide::cdp::browser_protocol::network::SetBypassServiceWorkerParams::new(true),
        )
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
        let (tx, requests) = tokio::sync::mpsc::unbounded_channel();
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
                let paused = Paused {
                    id: ev.request_id.clone(),
                    url: ev.request.url.clone(),
                    kind: ev.resource_type.clone(),
                };
                // Decided by `render`; with nobody to decide (the renderer is gone), refused.
                if let Err(e) = tx.send(paused) {
                    let _ = r;
                    let _ = p
                        .execute(FailRequestParams::new(e.0.id, ErrorReason::BlockedByClient))
                        .await;
                }
            }
        });
        Ok(Renderer {
            browser: Mutex::new(browser),
            page: Mutex::new(page),
            handler,
            _profile: profile,
            policy,
            egress: opts.egress,
            proxy,
            budget: opts.budget,
            requests: Mutex::new(requests),
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
    /// returns the DOM. Pages are rendered one at a time in the shared tab. Every request the
    /// page makes is decided here: the address policy, the page's budget, then `gate`
    /// (robots.txt and pacing); without a gate only the first two apply.
    pub async fn render(
        &self,
        url: &url::Url,
        limits: RenderLimits,
    ) -> Result<Rendered, RenderError> {
        self.render_gated(url, limits, None).await
    }

    /// [`Renderer::render`] with every request also admitted by `gate`.
    pub async fn render_gated(
        &self,
        url: &url::Url,
        limits: RenderLimits,
        gate: Option<&dyn Gate>,
    ) -> Result<Rendered, RenderError> {
        let page = self.page.lock().await;
        let mut requests = self.requests.lock().await;
        // Anything still paused from before this page is refused.
        while let Ok(p) = requests.try_recv() {
            self.refuse(&page, p, None).await;
        }
        self.seen.store(0, Ordering::Relaxed);
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        *self
            .raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.proxy.new_page();
        let mut admitted = 0usize;
        let started = Instant::now();
        let end = started + limits.deadline;
        let mut hit_deadline = false;
        let nav = page.goto(url.as_str());
        tokio::pin!(nav);
        let nav = loop {
            tokio::select! {
                r = &mut nav => break Some(r),
                Some(p) = requests.recv() => self.decide(&page, p, gate, &mut admitted).await,
                _ = tokio::time::sleep_until(end) => break None,
            }
        };
        match nav {
            None => hit_deadline = true,
            Some(Err(e)) => {
                let refused = self.refused_now();
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
            Some(Ok(_)) => {}
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
            if Instant::now() >= end {
                hit_deadline = true;
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(quiet_until.min(end)) => {}
                Some(p) = requests.recv() => self.decide(&page, p, gate, &mut admitted).await,
            }
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
        // Leave the tab empty for the next page (and stop anything still running); requests
        // made meanwhile are refused.
        let blank = page.goto("about:blank");
        tokio::pin!(blank);
        let leave = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(leave);
        loop {
            tokio::select! {
                _ = &mut blank => break,
                _ = &mut leave => break,
                Some(p) = requests.recv() => {
                    if p.url.starts_with("about:") {
                        let _ = page.execute(ContinueRequestParams::new(p.id)).await;
                    } else {
                        self.refuse(&page, p, None).await;
                    }
                }
            }
        }
        let mut refused = self.refused_now();
        refused.extend(
            self.proxy
                .traffic
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|r| format!("proxy: {}", crate::redact(r))),
        );
        if self.proxy.traffic.over_budget.load(Ordering::Relaxed) {
            refused.push(format!(
                "the page pulled more than {} bytes; the rest was cut",
                self.budget.max_bytes
            ));
        }
        Ok(Rendered {
            raw,
            html,
            requests: self.seen.load(Ordering::Relaxed),
            refused,
            hit_deadline,
        })
    }

    fn refused_now(&self) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Decides one paused request: continue it or refuse it (recording why).
    async fn decide(&self, page: &Page, p: Paused, gate: Option<&dyn Gate>, admitted: &mut usize) {
        if p.url.starts_with("data:") || p.url.starts_with("blob:") || p.url.starts_with("about:") {
            let _ = page.execute(ContinueRequestParams::new(p.id)).await;
            return;
        }
        if unneeded(&p.kind) {
            // Not needed to read the text: never sent, and not counted as a refusal.
            let _ = page
                .execute(FailRequestParams::new(p.id, ErrorReason::BlockedByClient))
                .await;
            return;
        }
        if *admitted >= self.budget.max_requests {
            let why = format!(
                "more than {} requests on one page",
                self.budget.max_requests
            );
            self.refuse(page, p, Some(why)).await;
            return;
        }
        if let Err(why) = allowed(&p.url, &self.egress).await {
            self.refuse(page, p, Some(why)).await;
            return;
        }
        if let Some(gate) = gate {
            let Ok(u) = url::Url::parse(&p.url) else {
                self.refuse(page, p, Some("unparseable URL".into())).await;
                return;
            };
            if let Err(why) = gate.admit(&u).await {
                self.refuse(page, p, Some(why)).await;
                return;
            }
        }
        *admitted += 1;
        *self
            .last_request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        let _ = page.execute(ContinueRequestParams::new(p.id)).await;
    }

    async fn refuse(&self, page: &Page, p: Paused, why: Option<String>) {
        if let Some(why) = why {
            self.refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{}: {why}", crate::redact(&p.url)));
        }
        let _ = page
            .execute(FailRequestParams::new(p.id, ErrorReason::BlockedByClient))
            .await;
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
