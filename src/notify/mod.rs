//! Notifications: delivering the outbox to the configured targets.
//!
//! An I/O edge. The outbox is filled by the database itself (triggers on the queue and runs
//! tables, migration 0005), in the same transaction as each change, so a crash can neither lose
//! an event nor invent one. Delivery reads what each target has not accepted yet, sends it and
//! marks it delivered. Every request carries the event's idempotency key, so a delivery repeated
//! after a kill between sending and marking is recognisable by the receiver; the GitHub sync
//! finds its issues again by a marker in their bodies and converges instead of appending.
//!
//! A target that is down never fails a run: its events wait for the next delivery and are
//! counted by `check`. Targets are the operator's own configuration, not registry content, so
//! the address guard for cited sources does not apply to them. Secrets (the HMAC key, the
//! GitHub token, a Slack hook's path) never reach a log line, an error or the database.

pub mod github;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::report::State;
use crate::store::{OutboxEvent, QueueItem, Store, StoreError};

/// One `[[notify]]` table of `citewatch.toml` (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `webhook`, `slack` or `github`.
    pub kind: Kind,
    /// Webhook or Slack endpoint; for GitHub, the REST API base (default api.github.com).
    #[serde(default)]
    pub url: Option<String>,
    /// Webhook: environment variable holding the HMAC-SHA256 key.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// GitHub: `owner/name`.
    #[serde(default)]
    pub repo: Option<String>,
    /// GitHub: environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// GitHub: one issue per queue `item` (default) or per `offering`.
    #[serde(default)]
    pub per: Per,
    /// GitHub: labels of the issues citewatch opens; the first one also finds them again
    /// (default `["citewatch"]`).
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The kinds of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A POST of one JSON event per queue change.
    Webhook,
    /// A Slack-compatible incoming webhook: one summary message per delivery.
    Slack,
    /// GitHub issues.
    Github,
}

/// What one GitHub issue stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One issue per queue item (per citation and reason: a reopened item reopens its issue).
    #[default]
    Item,
    /// One issue per offering listing its open items, closed when none is left.
    Offering,
}

/// GitHub's REST API base.
pub const GITHUB_API: &str = "https://api.github.com";

impl Target {
    /// The target's identity in the database: its kind and a digest of where it sends, so a
    /// Slack hook's secret path is never stored or shown.
    pub fn id(&self) -> String {
        let place = match self.kind {
            Kind::Github => format!(
                "{} {}",
                self.url.as_deref().unwrap_or(GITHUB_API),
                self.repo.as_deref().unwrap_or("")
            ),
            Kind::Webhook | Kind::Slack => self.url.clone().unwrap_or_default(),
        };
        let digest = hex::encode(sha2::Sha256::digest(place.as_bytes()));
        format!("{}:{}", self.kind_word(), &digest[..16])
    }

    /// How people see the target: its kind and host (GitHub: the repository), never a path.
    pub fn name(&self) -> String {
        match self.kind {
            Kind::Github => format!("github {}", self.repo.as_deref().unwrap_or("?")),
            _ => {
                let host = self
                    .url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "?".into());
                format!("{} {host}", self.kind_word())
            }
        }
    }

    /// Checks the table: what each kind needs, URLs that parse, names that exist.
    pub fn validate(&self) -> Result<(), String> {
        let kind = self.kind_word();
        let need = |what: &Option<String>, name: &str| {
            what.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|_| ())
                .ok_or_else(|| format!("[[notify]] kind = \"{kind}\" needs `{name}`"))
        };
        let not_here = |what: &Option<String>, name: &str| match what {
            Some(_) => Err(format!(
                "[[notify]] kind = \"{kind}\" does not take `{name}`"
            )),
            None => Ok(()),
        };
        match self.kind {
            Kind::Webhook | Kind::Slack => {
                need(&self.url, "url")?;
                not_here(&self.repo, "repo")?;
                not_here(&self.token_env, "token_env")?;
                if self.kind == Kind::Slack {
                    not_here(&self.secret_env, "secret_env")?;
                }
            }
            Kind::Github => {
                need(&self.repo, "repo")?;
                need(&self.token_env, "token_env")?;
                not_here(&self.secret_env, "secret_env")?;
                let repo = self.repo.as_deref().unwrap_or("");
                let ok = repo.split('/').count() == 2
                    && repo.split('/').all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    });
                if !ok {
                    return Err(format!("[[notify]] repo `{repo}` must be owner/name"));
                }
            }
        }
        if self.kind != Kind::Github && (self.per != Per::Item || !self.labels.is_empty()) {
            return Err(format!(
                "[[notify]] kind = \"{kind}\" does not take `per` or `labels`"
            ));
        }
        if let Some(u) = &self.url {
            // The URL may hold a secret (a Slack hook's path): name the host only.
            let parsed = url::Url::parse(u).map_err(|e| format!("[[notify]] url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!(
                    "[[notify]] url of the {kind} target must be an http(s) URL with a host"
                ));
            }
        }
        for var in [&self.secret_env, &self.token_env].into_iter().flatten() {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(format!(
                    "[[notify]] `{var}` is not an environment variable name"
                ));
            }
        }
        Ok(())
    }

    fn kind_word(&self) -> &'static str {
        match self.kind {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Github => "github",
        }
    }
}

/// What a delivery did for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The target as people see it.
    pub target: String,
    /// Events it accepted.
    pub sent: usize,
    /// Events still waiting for a later delivery.
    pub waiting: usize,
    /// Why the last attempt failed, if one did (secrets redacted).
    pub error: Option<String>,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} sent, {} waiting",
            self.target, self.sent, self.waiting
        )?;
        match &self.error {
            Some(e) => write!(f, " (last error: {e})"),
            None => Ok(()),
        }
    }
}

/// Links readers can follow from a notification.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The published HTML report (`report_url`); an item's deep link is `#item-<id>` on it.
    pub report: Option<String>,
}

impl Links {
    /// The configured report URL, else the GitHub Actions run that sent the notification
    /// (its step summary holds the report).
    pub fn from_env(report_url: Option<&str>) -> Links {
        let actions = || {
            let server = std::env::var("GITHUB_SERVER_URL").ok()?;
            let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
            let run = std::env::var("GITHUB_RUN_ID").ok()?;
            Some(format!("{server}/{repo}/actions/runs/{run}"))
        };
        Links {
            report: report_url.map(str::to_string).or_else(actions),
        }
    }

    fn item(&self, id: i64) -> Option<String> {
        self.report
            .as_deref()
            .map(|r| format!("{}#item-{id}", r.split('#').next().unwrap_or(r)))
    }
}

/// What is known of an item beyond its queue row, from the recorded state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ItemDetail {
    /// The quoted evidence.
    pub quote: Option<String>,
    /// The citation's latest verdict word.
    pub verdict: Option<String>,
    /// When that verdict was made.
    pub checked_at: Option<String>,
    /// The live page with a text fragment at the quote, when it was found.
    pub link: Option<String>,
    /// The archived copy of the evidence, when one was found (SPEC §4 `archived`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<crate::archive::ArchivedCopy>,
    /// The item as the report shows it (Markdown: quote, where it went, change hunks).
    #[serde(skip)]
    pub markdown: String,
}

/// Looks up an item's detail in the recorded state (None: only the queue row is known).
pub fn detail(state: Option<&State<'_>>, item: &QueueItem) -> ItemDetail {
    let Some(s) = state else {
        return ItemDetail {
            markdown: format!(
                "- **{}** (#{}) <{}>: {}\n",
                item.reason,
                item.id,
                crate::redact(&item.url),
                crate::report::md_escape(&crate::redact(&item.detail))
            ),
            ..ItemDetail::default()
        };
    };
    let view = crate::report::item_view(s, item);
    ItemDetail {
        quote: view.status.and_then(|st| st.citation.quote.clone()),
        verdict: view.status.map(|st| st.verdict.to_string()),
        checked_at: view
            .status
            .and_then(|st| st.decided_at().map(str::to_string)),
        link: view.status.and_then(|st| st.link().map(str::to_string)),
        archived: view.archived.cloned(),
        markdown: crate::report::item_md(&view),
    }
}

/// The webhook's JSON event. Fixed fields (SPEC §2): `event`, `key`, `item` (absent for
/// `run_failed`). The rest is documented in the README.
#[derive(Debug, Serialize)]
pub struct WebhookEvent<'a> {
    /// `opened|reopened|closed|resolved|dismissed|run_failed`.
    pub event: &'a str,
    /// Idempotency key, stable across retries: a receiver that has seen it ignores it.
    pub key: &'a str,
    /// When the change happened (RFC 3339).
    pub created_at: &'a str,
    /// The queue item with the SPEC §4 fields, as of this event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<WebhookItem<'a>>,
    /// The run that ended abnormally (`run_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<&'a crate::store::RunRecord>,
    /// The report and the item in it, when a report URL is known.
    pub links: WebhookLinks,
}

/// A queue item in a webhook event.
#[derive(Debug, Serialize)]
pub struct WebhookItem<'a> {
    /// Queue item id.
    pub id: i64,
    /// Offering id.
    pub offering: &'a str,
    /// Dimension id.
    pub dimension: &'a str,
    /// URL as written in the registry.
    pub url: &'a str,
    /// Reason (a verdict word or `expired`).
    pub reason: &'a str,
    /// `open`, `resolved` or `dismissed` as of this event.
    pub status: &'a str,
    /// One line for people.
    pub detail: &'a str,
    /// First and latest sighting.
    pub first_seen: &'a str,
    /// Latest sighting.
    pub last_seen: &'a str,
    /// Who closed it (`citewatch` when it closed by itself) and why, for closing events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<&'a str>,
    /// Their note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    /// The quote, the latest verdict, when, and the live link.
    #[serde(flatten)]
    pub detail_more: &'a ItemDetail,
}

/// Links in a webhook event.
#[derive(Debug, Serialize)]
pub struct WebhookLinks {
    /// The report.
    pub report: Option<String>,
    /// The item in the report.
    pub item: Option<String>,
}

/// The status an event leaves its item in.
fn status_after(event: &str) -> &'static str {
    match event {
        "opened" | "reopened" => "open",
        "dismissed" => "dismissed",
        _ => "resolved",
    }
}

/// The webhook's body for one event.
pub fn webhook_body(e: &OutboxEvent, detail: Option<&ItemDetail>, links: &Links) -> Vec<u8> {
    let empty = ItemDetail::default();
    let item = e.item.as_ref().map(|i| {
        let closing = status_after(&e.event) != "open";
        WebhookItem {
            id: i.id,
            offering: &i.offering,
            dimension: &i.dimension,
            url: &i.url,
            reason: &i.reason,
            status: status_after(&e.event),
            detail: &i.detail,
            first_seen: &i.first_seen,
            last_seen: &i.last_seen,
            closed_by: i.closed_by.as_deref().filter(|_| closing),
            note: i.note.as_deref().filter(|_| closing),
            detail_more: detail.unwrap_or(&empty),
        }
    });
    let event = WebhookEvent {
        event: &e.event,
        key: &e.key,
        created_at: &e.created_at,
        links: WebhookLinks {
            report: links.report.clone(),
            item: e.item.as_ref().and_then(|i| links.item(i.id)),
        },
        item,
        run: e.run.as_ref(),
    };
    serde_json::to_vec(&event).unwrap_or_default()
}

/// The webhook's signature header value: `sha256=` and the hex HMAC-SHA256 of the raw body
/// under the secret. A receiver recomputes it over the bytes it received and compares in
/// constant time.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The HTTP header carrying [`signature`].
pub const SIGNATURE_HEADER: &str = "x-citewatch-signature";

/// How long one target may take per delivery before the rest waits for the next.
const TARGET_BUDGET: Duration = Duration::from_secs(120);
/// Events read per target per delivery (Slack: per message).
const BATCH: i64 = 500;

/// One failed attempt: whether trying again soon may help.
#[derive(Debug, Clone)]
pub(crate) struct SendError {
    pub message: String,
    /// A timeout, a connection failure, a 5xx or a 429: the target may be back shortly.
    pub transient: bool,
    /// Seconds the target asked us to wait (Retry-After).
    pub retry_after: Option<u64>,
}

impl SendError {
    pub(crate) fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            transient: false,
            retry_after: None,
        }
    }

    /// From a transport error: what happened, never the URL (it may hold a secret).
    pub(crate) fn transport(e: &reqwest::Error) -> SendError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else if e.is_body() || e.is_decode() {
            "the response broke off"
        } else {
            "request failed"
        };
        SendError {
            message: what.into(),
            transient: true,
            retry_after: None,
        }
    }

    /// From a response status that is not a success.
    pub(crate) fn status(resp: &reqwest::Response) -> SendError {
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        SendError {
            message: format!("HTTP {code}"),
            transient: code >= 500 || code == 429 || code == 408,
            retry_after,
        }
    }
}

/// Tries `send` up to three times while the failure is transient: after 0.5 s, then 2 s (or
/// the Retry-After the target asked for, up to 30 s).
pub(crate) async fn with_retries<F, Fut>(mut send: F) -> Result<(), SendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), SendError>>,
{
    let mut last = None;
    for pause in [
        Duration::ZERO,
        Duration::from_millis(500),
        Duration::from_secs(2),
    ] {
        if let Some(SendError {
            retry_after: Some(secs),
            ..
        }) = &last
        {
            if *secs > 30 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(*secs).max(pause)).await;
        } else {
            tokio::time::sleep(pause).await;
        }
        match send().await {
            Ok(()) => return Ok(()),
            Err(e) if e.transient => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| SendError::permanent("not sent")))
}

/// The HTTP client for notifications: our User-Agent, no redirects (a target that redirects
/// is misconfigured, and a redirect must not carry a token elsewhere), bounded time.
pub(crate) fn client(user_agent: &str) -> Option<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if crate::fetch::guard::loopback_only_from_env() {
        builder = builder.dns_resolver(crate::fetch::guard::GuardedResolver::new(
            crate::fetch::guard::AddressPolicy::LoopbackOnly,
        ));
    }
    builder
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| tracing::error!(error = %e, "notifications: cannot build an HTTP client"))
        .ok()
}

/// Whether any target has events waiting (so the caller can skip loading state).
pub async fn anything_pending(store: &Store, targets: &[Target]) -> Result<bool, StoreError> {
    for t in targets {
        if store.undelivered(&t.id()).await?.0 > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Delivers what is pending to every target, in outbox order. A failing target costs its own
/// events a wait, never the run; only a database failure is an error.
pub async fn deliver(
    store: &Store,
    targets: &[Target],
    state: Option<&State<'_>>,
    links: &Links,
    user_agent: &str,
    clock: &crate::pipeline::Clock,
) -> Result<Vec<Delivered>, StoreError> {
    let mut out = Vec::new();
    let Some(client) = client(user_agent) else {
        return Ok(out);
    };
    let loopback_only = crate::fetch::guard::loopback_only_from_env();
    for t in targets {
        let id = t.id();
        let mut done = Delivered {
            target: t.name(),
            ..Delivered::default()
        };
        let here = t
            .url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| {
                crate::fetch::guard::check_host(
                    &u,
                    crate::fetch::guard::AddressPolicy::LoopbackOnly,
                )
                .is_ok()
            });
        if loopback_only && !here {
            done.error = Some("not loopback, refused in loopback-only mode".into());
            done.waiting = store.undelivered(&id).await?.0 as usize;
            out.push(done);
            continue;
        }
        let started = Instant::now();
        let events = store.pending_events(&id, BATCH).await?;
        match t.kind {
            Kind::Webhook => {
                for e in &events {
                    if started.elapsed() > TARGET_BUDGET {
                        break;
                    }
                    let detail = e.item.as_ref().map(|i| detail(state, i));
                    let body = webhook_body(e, detail.as_ref(), links);
                    match send_webhook(&client, t, e, body).await {
                        Ok(()) => {
                            store.mark_delivered(e.id, &id, clock()).await?;
                            done.sent += 1;
                        }
                        Err(err) => {
                            store.mark_failed(e.id, &id, &err.message, clock()).await?;
                            let down = err.transient;
                            done.error = Some(err.message);
                            // A target that is down gets the rest next time, not 500 timeouts.
                            if down {
                                break;
                            }
                        }
                    }
                }
            }
            Kind::Slack => {
                if !events.is_empty() {
                    match send_slack(&client, t, &events, links).await {
                        Ok(()) => {
                            for e in &events {
                                store.mark_delivered(e.id, &id, clock()).await?;
                            }
                            done.sent += events.len();
                        }
                        Err(err) => {
                            for e in &events {
                                store.mark_failed(e.id, &id, &err.message, clock()).await?;
                            }
                            done.error = Some(err.message);
                        }
                    }
                }
            }
            Kind::Github => {
                let token = t
                    .token_env
                    .as_deref()
                    .and_then(|v| std::env::var(v).ok())
                    .filter(|v| !v.trim().is_empty());
                match token {
                    None => {
                        if !events.is_empty() {
                            done.error = Some(format!(
                                "environment variable {} (the GitHub token) is not set",
                                t.token_env.as_deref().unwrap_or("?")
                            ));
                        }
                    }
                    Some(token) => {
                        let mut sync = github::Sync::new(&client, t, token, links);
                        for e in &events {
                            if started.elapsed() > TARGET_BUDGET {
                                break;
                            }
                            match sync.event(store, e, state).await {
                                Ok(()) => {
                                    store.mark_delivered(e.id, &id, clock()).await?;
                                    done.sent += 1;
                                }
                                Err(err) => {
                                    store.mark_failed(e.id, &id, &err.message, clock()).await?;
                                    let stop = err.transient || err.message.contains("rate limit");
                                    done.error = Some(err.message);
                                    if stop {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        done.waiting = store.undelivered(&id).await?.0 as usize;
        if let Some(err) = &done.error {
            tracing::warn!(target = %done.target, waiting = done.waiting, error = %err, "notifications: not everything was delivered");
        }
        out.push(done);
    }
    Ok(out)
}

async fn send_webhook(
    client: &reqwest::Client,
    t: &Target,
    e: &OutboxEvent,
    body: Vec<u8>,
) -> Result<(), SendError> {
    let url = t.url.as_deref().unwrap_or("");
    let signature = match &t.secret_env {
        Some(var) => match std::env::var(var) {
            Ok(secret) if !secret.is_empty() => Some(signature(secret.as_bytes(), &body)),
            _ => {
                return Err(SendError::permanent(format!(
                    "environment variable {var} (the webhook secret) is not set"
                )));
            }
        },
        None => None,
    };
    with_retries(|| {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", &e.key)
            .header("x-citewatch-event", &e.event)
            .body(body.clone());
        if let Some(sig) = &signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        post(req)
    })
    .await
}

/// Sends one request; a 2xx answer is success.
async fn post(req: reqwest::RequestBuilder) -> Result<(), SendError> {
    let resp = req.send().await.map_err(|e| SendError::transport(&e))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(SendError::status(&resp))
    }
}

/// One line per event for the Slack message.
fn slack_line(e: &OutboxEvent, links: &Links) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    match (&e.item, &e.run) {
        (Some(i), _) => {
            let id = match links.item(i.id) {
                Some(link) => format!("<{}|#{}>", esc(&link), i.id),
                None => format!("#{}", i.id),
            };
            format!(
                "• {} {id} *{}* {}/{} {}",
                e.event,
                esc(&i.reason),
                esc(&i.offering),
                esc(&i.dimension),
                esc(&crate::redact(&i.url))
            )
        }
        (None, Some(r)) => format!(
            "• run #{} ended abnormally: {}",
            r.id,
            esc(r
                .ended
                .as_deref()
                .unwrap_or("interrupted (its process died)"))
        ),
        (None, None) => format!("• {}", e.event),
    }
}

/// The Slack message summarising a delivery's events.
pub fn slack_text(events: &[OutboxEvent], links: &Links) -> String {
    let count = |names: &[&str]| {
        events
            .iter()
            .filter(|e| names.contains(&e.event.as_str()))
            .count()
    };
    let opened = count(&["opened", "reopened"]);
    let closed = count(&["closed", "resolved", "dismissed"]);
    let failed = count(&["run_failed"]);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut text = format!(
        "citewatch: {opened} queue item{} opened, {closed} closed",
        plural(opened)
    );
    if failed > 0 {
        text.push_str(&format!(
            ", {failed} run{} ended abnormally",
            plural(failed)
        ));
    }
    if let Some(r) = &links.report {
        text.push_str(&format!(" (<{r}|report>)"));
    }
    const SHOWN: usize = 40;
    for e in events.iter().take(SHOWN) {
        text.push('\n');
        text.push_str(&slack_line(e, links));
    }
    if events.len() > SHOWN {
        text.push_str(&format!("\n… and {} more", events.len() - SHOWN));
    }
    text
}

async fn send_slack(
    client: &reqwest::Client,
    t: &Target,
    events: &[OutboxEvent],
    links: &Links,
) -> Result<(), SendError> {
    let body = serde_json::json!({ "text": slack_text(events, links) }).to_string();
    let url = t.url.as_deref().unwrap_or("");
    with_retries(|| {
        let req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        post(req)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: Kind) -> Target {
        Target {
            kind,
            url: Some("https://hooks.example.org/services/T0/B0/s3cr3t".into()),
            secret_env: None,
            repo: None,
            token_env: None,
            per: Per::Item,
            labels: vec![],
        }
    }

    #[test]
    fn identity_and_name_never_show_the_url_path() {
        let t = target(Kind::Slack);
        assert!(!t.id().contains("s3cr3t") && t.id().starts_with("slack:"));
        assert_eq!(t.name(), "slack hooks.example.org");
        let mut other = t.clone();
        other.url = Some("https://hooks.example.org/services/T0/B0/other".into());
        assert_ne!(t.id(), other.id());
    }

    #[test]
    fn validation_names_what_is_missing() {
        assert!(target(Kind::Webhook).validate().is_ok());
        let mut g = target(Kind::Github);
        g.url = None;
        assert!(g.validate().unwrap_err().contains("needs `repo`"));
        g.repo = Some("owner/name".into());
        assert!(g.validate().unwrap_err().contains("needs `token_env`"));
        g.token_env = Some("GITHUB_TOKEN".into());
        assert!(g.validate().is_ok());
        g.repo = Some("owner/name/extra".into());
        assert!(g.validate().unwrap_err().contains("owner/name"));
        let mut w = target(Kind::Webhook);
        w.url = Some("ftp://x.example/".into());
        let e = w.validate().unwrap_err();
        assert!(e.contains("http(s)"), "{e}");
        let mut w = target(Kind::Webhook);
        w.url = Some("not a url with s3cr3t".into());
        assert!(!w.validate().unwrap_err().contains("s3cr3t"));
        let mut s = target(Kind::Slack);
        s.per = Per::Offering;
        assert!(s.validate().is_err());
    }

    /// The documented check a receiver makes (RFC 2104 test case 2, and a forged body).
    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = br#"{"event":"opened"}"#;
        let good = signature(b"k", body);
        assert_ne!(good, signature(b"k", br#"{"event":"closed"}"#));
        assert_ne!(good, signature(b"other", body));
    }

    #[test]
    fn item_links_point_into_the_report() {
        let l = Links {
            report: Some("https://ci.example/report.html#top".into()),
        };
        assert_eq!(
            l.item(7).as_deref(),
            Some("https://ci.example/report.html#item-7")
        );
        assert_eq!(Links::default().item(7), None);
    }
}
