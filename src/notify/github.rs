//! GitHub issues for queue items, kept in step with the queue.
//!
//! REST endpoints used (docs: <https://docs.github.com/en/rest/issues/issues> and
//! <https://docs.github.com/en/rest/issues/comments>): list a repository's issues
//! (`GET /repos/{owner}/{repo}/issues?state=all&labels=…`), create one
//! (`POST /repos/{owner}/{repo}/issues`), update one (`PATCH /repos/{owner}/{repo}/issues/{n}`),
//! list and create its comments (`GET`/`POST /repos/{owner}/{repo}/issues/{n}/comments`).
//!
//! The sync converges instead of appending: each issue carries a marker in its body
//! (`<!-- citewatch:item KEY REASON -->` or `<!-- citewatch:offering ID -->`), found again by
//! listing the repository's citewatch-labelled issues, so a lost database, a re-run or a kill
//! between a request and its recording never opens a second issue; each comment citewatch
//! writes carries its event's idempotency key, and is written only when no comment has it yet.
//!
//! Rate limits (<https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>):
//! `x-ratelimit-remaining: 0` stops requests until `x-ratelimit-reset` (waited for when it is
//! at most a minute away, else the rest waits for the next delivery); a 403/429 with
//! `retry-after` is retried after that many seconds when it is at most a minute; writes are
//! spaced one second apart, as GitHub asks of clients making many of them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Links, Per, SendError, Target};
use crate::report::State;
use crate::store::{OutboxEvent, QueueItem, Store};

/// GitHub's limit on an issue or comment body is 65,536 characters.
const MAX_BODY: usize = 60_000;
/// Pages of issues read to find markers (100 per page).
const MAX_PAGES: usize = 50;
/// Longest wait for a rate limit within one delivery.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Space between writes.
const WRITE_GAP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Issue {
    number: u64,
    open: bool,
}

/// One delivery's GitHub session: the repository's citewatch issues by marker, the rate-limit
/// state and the write pacing.
pub struct Sync<'c> {
    client: &'c reqwest::Client,
    api: url::Url,
    repo: String,
    token: String,
    per: Per,
    labels: Vec<String>,
    links: Links,
    index: Option<HashMap<String, Issue>>,
    blocked_until: Option<chrono::DateTime<chrono::Utc>>,
    last_write: Option<Instant>,
    synced_offerings: HashSet<String>,
}

impl<'c> Sync<'c> {
    /// A session for `target` with its token.
    pub fn new(client: &'c reqwest::Client, target: &Target, token: String, links: &Links) -> Self {
        let base = target.url.as_deref().unwrap_or(super::GITHUB_API);
        let api = url::Url::parse(&format!("{}/", base.trim_end_matches('/')))
            .unwrap_or_else(|_| url::Url::parse("https://api.github.com/").expect("constant URL"));
        let labels = if target.labels.is_empty() {
            vec!["citewatch".to_string()]
        } else {
            target.labels.clone()
        };
        Sync {
            client,
            api,
            repo: target.repo.clone().unwrap_or_default(),
            token,
            per: target.per,
            labels,
            links: links.clone(),
            index: None,
            blocked_until: None,
            last_write: None,
            synced_offerings: HashSet::new(),
        }
    }

    /// Brings GitHub in step with one event.
    pub(crate) async fn event(
        &mut self,
        store: &Store,
        e: &OutboxEvent,
        state: Option<&State<'_>>,
    ) -> Result<(), SendError> {
        // Abnormal runs are not queue items: the GitHub target leaves them to the others.
        let Some(item) = &e.item else { return Ok(()) };
        self.ensure_index().await?;
        match self.per {
            Per::Item => self.item_event(e, item, state).await,
            Per::Offering => {
                // The offering's issue shows the queue as it is now: once per delivery is enough.
                if self.synced_offerings.contains(&item.offering) {
                    return Ok(());
                }
                let open: Vec<QueueItem> = store
                    .queue(Some("open"))
                    .await
                    .map_err(|err| SendError::permanent(err.to_string()))?
                    .into_iter()
                    .filter(|q| q.offering == item.offering)
                    .collect();
                self.offering_event(e, &item.offering, &open, state).await?;
                self.synced_offerings.insert(item.offering.clone());
                Ok(())
            }
        }
    }

    async fn item_event(
        &mut self,
        e: &OutboxEvent,
        item: &QueueItem,
        state: Option<&State<'_>>,
    ) -> Result<(), SendError> {
        let marker = format!(
            "<!-- citewatch:item {} {} -->",
            item.citation_key, item.reason
        );
        let found = self.index.as_ref().and_then(|i| i.get(&marker)).copied();
        match e.event.as_str() {
            "opened" | "reopened" => match found {
                None => {
                    let title = format!(
                        "citewatch: {} — {} / {}",
                        item.reason, item.offering, item.dimension
                    );
                    let body = format!("{marker}\n{}", self.item_body(item, state));
                    let issue = self.create(&title, &body).await?;
                    self.remember(marker, issue);
                    Ok(())
                }
                Some(Issue { open: true, .. }) => Ok(()),
                Some(Issue { number, .. }) => {
                    let text = format!(
                        "Reopened: the problem is back (queue item #{}).\n\n{}",
                        item.id,
                        super::detail(state, item).markdown
                    );
                    self.comment_once(number, &e.key, &text).await?;
                    self.set_state(number, true, None, None).await?;
                    self.remember(marker, Issue { number, open: true });
                    Ok(())
                }
            },
            _ => match found {
                Some(Issue { number, open: true }) => {
                    let text = closing_text(e, item);
                    self.comment_once(number, &e.key, &text).await?;
                    let reason = if e.event == "dismissed" {
                        "not_planned"
                    } else {
                        "completed"
                    };
                    self.set_state(number, false, Some(reason), None).await?;
                    self.remember(
                        marker,
                        Issue {
                            number,
                            open: false,
                        },
                    );
                    Ok(())
                }
                // Never opened here, or already closed (by us before a kill, or by a person).
                _ => Ok(()),
            },
        }
    }

    async fn offering_event(
        &mut self,
        e: &OutboxEvent,
        offering: &str,
        open: &[QueueItem],
        state: Option<&State<'_>>,
    ) -> Result<(), SendError> {
        let marker = format!("<!-- citewatch:offering {offering} -->");
        let found = self.index.as_ref().and_then(|i| i.get(&marker)).copied();
        if open.is_empty() {
            if let Some(Issue { number, open: true }) = found {
                self.comment_once(
                    number,
                    &e.key,
                    "All queue items of this offering are closed.",
                )
                .await?;
                self.set_state(number, false, Some("completed"), None)
                    .await?;
                self.remember(
                    marker,
                    Issue {
                        number,
                        open: false,
                    },
                );
            }
            return Ok(());
        }
        let mut body = format!(
            "{marker}\nOpen queue items of `{offering}` ({}), as of the latest citewatch run.\n\n",
            open.len()
        );
        for q in open {
            body.push_str(&super::detail(state, q).markdown);
        }
        if let Some(r) = &self.links.report {
            body.push_str(&format!("\n[Review report]({r})\n"));
        }
        match found {
            None => {
                let title = format!("citewatch: evidence to re-verify for {offering}");
                let issue = self.create(&title, &body).await?;
                self.remember(marker, issue);
            }
            Some(Issue {
                number,
                open: was_open,
            }) => {
                if !was_open {
                    self.comment_once(number, &e.key, "Reopened: new queue items.")
                        .await?;
                }
                self.set_state(number, true, None, Some(&body)).await?;
                self.remember(marker, Issue { number, open: true });
            }
        }
        Ok(())
    }

    fn item_body(&self, item: &QueueItem, state: Option<&State<'_>>) -> String {
        let d = super::detail(state, item);
        let mut body = format!(
            "citewatch queued **{}** for `{}` / `{}`.\n\n",
            item.reason, item.offering, item.dimension
        );
        if let Some(q) = &d.quote {
            body.push_str(&format!("> {}\n\n", crate::report::md_escape(q)));
        }
        body.push_str(&d.markdown);
        if let Some(link) = self.links.item(item.id) {
            body.push_str(&format!("\n[This item in the review report]({link})\n"));
        }
        // `queue accept` only where there is an obvious fix (as `queue show` says).
        let accept = matches!(
            item.reason.as_str(),
            "drifted" | "moved" | "expired" | "context_changed"
        );
        body.push_str(&format!(
            "\nSettle it with `citewatch queue show {id}`, then {}`citewatch queue resolve {id} --note …` \
             or `dismiss {id} --note …`; this issue closes when the item does.\n",
            if accept {
                format!("`citewatch queue accept {}`, ", item.id)
            } else {
                String::new()
            },
            id = item.id
        ));
        body
    }

    fn remember(&mut self, marker: String, issue: Issue) {
        if let Some(i) = self.index.as_mut() {
            i.insert(marker, issue);
        }
    }

    /// Lists the repository's citewatch issues (all states) once per delivery.
    async fn ensure_index(&mut self) -> Result<(), SendError> {
        if self.index.is_some() {
            return Ok(());
        }
        let mut index = HashMap::new();
        let first = self.url(&format!(
            "repos/{}/issues?state=all&per_page=100&labels={}",
            self.repo,
            percent(&self.labels[0])
        ))?;
        for issue in self.list(first).await? {
            if issue.get("pull_request").is_some() {
                continue;
            }
            let (Some(number), Some(text)) = (
                issue.get("number").and_then(Value::as_u64),
                issue.get("body").and_then(Value::as_str),
            ) else {
                continue;
            };
            let open = issue.get("state").and_then(Value::as_str) == Some("open");
            if let Some(marker) = marker_in(text) {
                // Several issues with one marker (edited by hand): the open one wins.
                let e = index.entry(marker).or_insert(Issue { number, open });
                if open && !e.open {
                    *e = Issue { number, open };
                }
            }
        }
        self.index = Some(index);
        Ok(())
    }

    /// Writes a comment on issue `number` unless one carrying `key` exists already.
    async fn comment_once(&mut self, number: u64, key: &str, text: &str) -> Result<(), SendError> {
        let tag = format!("<!-- citewatch:event {key} -->");
        let first = self.url(&format!(
            "repos/{}/issues/{number}/comments?per_page=100",
            self.repo
        ))?;
        let seen = self.list(first).await?.iter().any(|c| {
            c.get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(&tag))
        });
        if seen {
            return Ok(());
        }
        let url = self.url(&format!("repos/{}/issues/{number}/comments", self.repo))?;
        self.request(
            reqwest::Method::POST,
            url,
            Some(json!({ "body": clip(&format!("{tag}\n{text}")) })),
        )
        .await?;
        Ok(())
    }

    async fn create(&mut self, title: &str, body: &str) -> Result<Issue, SendError> {
        let url = self.url(&format!("repos/{}/issues", self.repo))?;
        let (_, _, created) = self
            .request(
                reqwest::Method::POST,
                url,
                Some(json!({ "title": title, "body": clip(body), "labels": self.labels })),
            )
            .await?;
        let number = created
            .get("number")
            .and_then(Value::as_u64)
            .ok_or_else(|| SendError::permanent("GitHub created an issue without a number"))?;
        Ok(Issue { number, open: true })
    }

    async fn set_state(
        &mut self,
        number: u64,
        open: bool,
        reason: Option<&str>,
        body: Option<&str>,
    ) -> Result<(), SendError> {
        let mut patch = json!({ "state": if open { "open" } else { "closed" } });
        if let Some(r) = reason {
            patch["state_reason"] = json!(r);
        }
        if let Some(b) = body {
            patch["body"] = json!(clip(b));
        }
        let url = self.url(&format!("repos/{}/issues/{number}", self.repo))?;
        self.request(reqwest::Method::PATCH, url, Some(patch))
            .await?;
        Ok(())
    }

    /// Every element of a paginated list, following `Link: rel="next"` (at most
    /// [`MAX_PAGES`] pages).
    async fn list(&mut self, first: url::Url) -> Result<Vec<Value>, SendError> {
        let mut all = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                break;
            }
            let (_, headers, body) = self.request(reqwest::Method::GET, url, None).await?;
            if let Value::Array(items) = body {
                all.extend(items);
            }
            next = next_link(&headers).and_then(|n| self.same_origin(&n));
        }
        Ok(all)
    }

    fn url(&self, path: &str) -> Result<url::Url, SendError> {
        self.api
            .join(path)
            .map_err(|e| SendError::permanent(format!("GitHub API URL: {e}")))
    }

    /// A pagination link, only when it stays on the API's origin: the token goes nowhere else.
    fn same_origin(&self, link: &str) -> Option<url::Url> {
        let u = url::Url::parse(link).ok()?;
        (u.origin() == self.api.origin()).then_some(u)
    }

    /// One API request with the token, honouring the rate limits; the JSON answer.
    async fn request(
        &mut self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<Value>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Value), SendError> {
        let write = method != reqwest::Method::GET;
        for attempt in 0..3 {
            if let Some(until) = self.blocked_until {
                let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
                if wait > MAX_WAIT {
                    return Err(SendError::permanent(format!(
                        "GitHub rate limit exhausted until {}",
                        until.format("%Y-%m-%d %H:%M UTC")
                    )));
                }
                tokio::time::sleep(wait).await;
                self.blocked_until = None;
            }
            if write && let Some(last) = self.last_write {
                let gap = WRITE_GAP.saturating_sub(last.elapsed());
                tokio::time::sleep(gap).await;
            }
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .bearer_auth(&self.token);
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            if write {
                self.last_write = Some(Instant::now());
            }
            let resp = req.send().await.map_err(|e| SendError::transport(&e))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let remaining = header_u64(&headers, "x-ratelimit-remaining");
            let reset = header_u64(&headers, "x-ratelimit-reset")
                .and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0));
            if remaining == Some(0) {
                self.blocked_until =
                    reset.or_else(|| Some(chrono::Utc::now() + chrono::Duration::minutes(1)));
            }
            if (200..300).contains(&status) {
                let value = read_json(resp).await?;
                return Ok((status, headers, value));
            }
            let retry_after = header_u64(&headers, "retry-after");
            let message = read_json(resp)
                .await
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .map(|m| crate::redact(&m))
                .unwrap_or_default();
            let limited =
                matches!(status, 403 | 429) && (remaining == Some(0) || retry_after.is_some());
            if limited && attempt < 2 {
                if let Some(secs) = retry_after {
                    if Duration::from_secs(secs) > MAX_WAIT {
                        return Err(SendError::permanent(format!(
                            "GitHub rate limit: retry after {secs} s"
                        )));
                    }
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
                // Else the loop's top waits for the reset, or gives up when it is far.
                continue;
            }
            let what = format!(
                "GitHub {} {}: HTTP {status}{}{}",
                method,
                url.path(),
                if message.is_empty() { "" } else { ": " },
                message
            );
            return Err(SendError {
                transient: status >= 500,
                message: if limited {
                    format!("{what} (rate limit)")
                } else {
                    what
                },
                retry_after: None,
            });
        }
        Err(SendError::permanent(
            "GitHub rate limit: gave up after retries",
        ))
    }
}

/// Most bytes of one API answer read (a page of 100 issues with long bodies is a few MB).
const MAX_ANSWER: usize = 32 << 20;

/// Reads a JSON answer, bounded; an empty answer is `null`.
async fn read_json(mut resp: reqwest::Response) -> Result<Value, SendError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| SendError::transport(&e))? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(SendError::permanent("GitHub answer too large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| SendError::permanent(format!("GitHub answer is not JSON: {e}")))
}

/// The closing comment's text.
fn closing_text(e: &OutboxEvent, item: &QueueItem) -> String {
    let who = item.closed_by.as_deref().unwrap_or("someone");
    let note = item
        .note
        .as_deref()
        .map(|n| format!(": {}", crate::report::md_escape(n)))
        .unwrap_or_default();
    match e.event.as_str() {
        "closed" => format!("citewatch closed queue item #{}{note}", item.id),
        "dismissed" => format!(
            "Queue item #{} dismissed by {}{note}",
            item.id,
            crate::report::md_escape(who)
        ),
        _ => format!(
            "Queue item #{} resolved by {}{note}",
            item.id,
            crate::report::md_escape(who)
        ),
    }
}

/// The citewatch marker in an issue body, if any.
fn marker_in(body: &str) -> Option<String> {
    let start = body.find("<!-- citewatch:")?;
    let len = body[start..].find("-->")? + 3;
    let marker = &body[start..start + len];
    (!marker.starts_with("<!-- citewatch:event ")).then(|| marker.to_string())
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

fn header_u64(h: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn percent(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A body cut to GitHub's limit, at a character boundary, saying so.
fn clip(s: &str) -> String {
    if s.len() <= MAX_BODY {
        return s.to_string();
    }
    let mut end = MAX_BODY;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n\n… (cut at {MAX_BODY} bytes; `citewatch queue show` has the rest)",
        &s[..end]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_and_event_tags_are_not_markers() {
        assert_eq!(
            marker_in("text\n<!-- citewatch:item abc missing -->\nmore").as_deref(),
            Some("<!-- citewatch:item abc missing -->")
        );
        assert_eq!(marker_in("<!-- citewatch:event k -->"), None);
        assert_eq!(marker_in("no marker <!-- other -->"), None);
    }

    #[test]
    fn next_link_is_read_from_the_link_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "link",
            "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        h.insert("link", "<https://x/?page=5>; rel=\"last\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn bodies_are_clipped_at_a_character_boundary() {
        let long = "é".repeat(MAX_BODY);
        let c = clip(&long);
        assert!(c.len() < MAX_BODY + 100 && c.contains("cut at"));
        assert_eq!(clip("short"), "short");
    }
}
