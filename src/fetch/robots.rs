//! robots.txt: parsing and matching per RFC 9309, with the lenient parsing real files need.
//!
//! Pure: bytes in, decisions out. Written here rather than taken from a crate because none
//! passed every standard expectation of Google's robots.txt specification tests (the closest
//! failed on byte-order marks, wildcard edge cases, and sitemap or unknown lines closing a
//! group); `tests/integration/robots_conformance.rs` runs all 400 of them.
//!
//! Semantics, following RFC 9309 and Google's reference parser:
//! - lines end at LF, CR or CRLF; `#` starts a comment; a leading UTF-8 byte-order mark (or a
//!   prefix of one) is skipped; keys are case-insensitive; a missing colon is tolerated when a
//!   line has exactly two words ("disallow /");
//! - consecutive `user-agent` lines form one group; a rule line ends the group's agent list;
//!   sitemap and unknown lines do not;
//! - a crawler obeys every group naming its product token (case-insensitive, compared with the
//!   name's leading letters, `-` and `_`), else the `*` groups, else nothing is disallowed;
//! - the longest matching pattern wins, `allow` on a tie; `*` matches any run, a final `$`
//!   anchors the end; empty patterns match nothing; non-ASCII bytes in patterns are
//!   percent-encoded and escapes upper-cased so they compare with URLs as sent;
//! - `allow: /dir/index.html` also allows `/dir/` (as Google does).

use std::time::Duration;

/// Bytes of a robots.txt that are parsed (RFC 9309 asks for at least 500 KiB).
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// Longest line considered; the rest of a longer line is ignored.
const MAX_LINE: usize = 2083 * 8;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    UserAgent(String),
    Allow(String),
    Disallow(String),
    CrawlDelay(String),
    /// Sitemap and unknown keys: recorded so they keep their place, but they change nothing.
    Other,
}

/// A parsed robots.txt.
#[derive(Debug, Clone, Default)]
pub struct Robots {
    lines: Vec<Line>,
}

impl Robots {
    /// Parses a robots.txt body (only its first [`MAX_ROBOTS_BYTES`]).
    pub fn parse(body: &[u8]) -> Robots {
        let body = &body[..body.len().min(MAX_ROBOTS_BYTES)];
        let body = skip_bom(body);
        let mut lines = Vec::new();
        for raw in split_lines(body) {
            let raw = &raw[..raw.len().min(MAX_LINE)];
            if let Some(l) = parse_line(raw) {
                lines.push(l);
            }
        }
        Robots { lines }
    }

    /// A robots.txt that allows everything (a 4xx answer, RFC 9309 §2.3.1.3).
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// Whether `agent` (a product token such as `citewatch`) may fetch `url`.
    pub fn allowed(&self, agent: &str, url: &str) -> bool {
        let path = path_params_query(url);
        self.decide(agent, &path)
    }

    fn decide(&self, agent: &str, path: &str) -> bool {
        let mut m = Matcher::default();
        for line in &self.lines {
            match line {
                Line::UserAgent(v) => m.user_agent(v, agent),
                Line::Allow(p) => m.rule(path, p, true),
                Line::Disallow(p) => m.rule(path, p, false),
                Line::CrawlDelay(_) | Line::Other => {}
            }
        }
        !m.disallowed()
    }

    /// `Crawl-delay` of the group that applies to `agent`, if any.
    pub fn crawl_delay(&self, agent: &str) -> Option<Duration> {
        let mut specific = None;
        let mut global = None;
        let (mut in_specific, mut in_global, mut closed) = (false, false, false);
        for line in &self.lines {
            match line {
                Line::UserAgent(v) => {
                    if closed {
                        in_specific = false;
                        in_global = false;
                        closed = false;
                    }
                    if is_global(v) {
                        in_global = true;
                    } else if agent_token(v).eq_ignore_ascii_case(agent) {
                        in_specific = true;
                    }
                }
                Line::Allow(_) | Line::Disallow(_) => closed = true,
                Line::CrawlDelay(v) => {
                    closed = true;
                    let secs: Option<f64> = v
                        .trim()
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s >= 0.0);
                    if let Some(s) = secs {
                        if in_specific {
                            specific.get_or_insert(s);
                        } else if in_global {
                            global.get_or_insert(s);
                        }
                    }
                }
                Line::Other => {}
            }
        }
        specific.or(global).map(Duration::from_secs_f64)
    }
}

/// Skips a UTF-8 byte-order mark, or as much of one as the body starts with.
fn skip_bom(body: &[u8]) -> &[u8] {
    const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
    let n = body.iter().zip(BOM).take_while(|(a, b)| **a == *b).count();
    &body[n..]
}

fn split_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let mut next = end;
        if next < rest.len() {
            next += if rest[next] == b'\r' && rest.get(next + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
        }
        rest = &rest[next..];
        Some(line)
    })
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\x0b' | b'\x0c')
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| !is_space(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| !is_space(c))
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

fn starts_with_ignore_case(s: &[u8], prefix: &str) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn parse_line(raw: &[u8]) -> Option<Line> {
    let without_comment = match raw.iter().position(|&b| b == b'#') {
        Some(i) => &raw[..i],
        None => raw,
    };
    let line = trim(without_comment);
    if line.is_empty() {
        return None;
    }
    let (key, value) = match line.iter().position(|&b| b == b':') {
        Some(i) => (trim(&line[..i]), trim(&line[i + 1..])),
        None => {
            // "disallow /": whitespace instead of the colon, only with exactly two words.
            let i = line.iter().position(|&b| is_space(b))?;
            let value = trim(&line[i..]);
            if value.iter().any(|&b| is_space(b)) {
                return None;
            }
            (trim(&line[..i]), value)
        }
    };
    if key.is_empty() {
        return None;
    }
    let value_str = || String::from_utf8_lossy(value).into_owned();
    let l = if starts_with_ignore_case(key, "user-agent")
        || starts_with_ignore_case(key, "useragent")
        || starts_with_ignore_case(key, "user agent")
    {
        Line::UserAgent(value_str())
    } else if starts_with_ignore_case(key, "allow") {
        Line::Allow(escape_pattern(value))
    } else if [
        "disallow",
        "dissallow",
        "dissalow",
        "disalow",
        "diasllow",
        "disallaw",
    ]
    .iter()
    .any(|k| starts_with_ignore_case(key, k))
    {
        Line::Disallow(escape_pattern(value))
    } else if starts_with_ignore_case(key, "crawl-delay") {
        Line::CrawlDelay(value_str())
    } else {
        Line::Other
    };
    Some(l)
}

/// Percent-encodes bytes ≥ 0x80 and upper-cases existing escapes, so patterns compare with
/// URLs as they are sent.
fn escape_pattern(p: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        let b = p[i];
        if b == b'%'
            && p.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && p.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push('%');
            out.push(p[i + 1].to_ascii_uppercase() as char);
            out.push(p[i + 2].to_ascii_uppercase() as char);
            i += 3;
        } else if b >= 0x80 {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
            i += 1;
        } else {
            out.push(b as char);
            i += 1;
        }
    }
    out
}

/// The product token of a user-agent line's value: its leading letters, `-` and `_`.
fn agent_token(v: &str) -> &str {
    let end = v
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '-' || c == '_'))
        .unwrap_or(v.len());
    &v[..end]
}

fn is_global(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b[0] == b'*' && (b.len() == 1 || is_space(b[1]))
}

/// Replays a robots.txt's lines for one agent and path, keeping the best rule per group kind.
#[derive(Default)]
struct Matcher {
    seen_global: bool,
    seen_specific: bool,
    ever_seen_specific: bool,
    seen_rule: bool,
    allow_specific: i64,
    disallow_specific: i64,
    allow_global: i64,
    disallow_global: i64,
    initialised: bool,
}

impl Matcher {
    fn init(&mut self) {
        if !self.initialised {
            self.allow_specific = -1;
            self.disallow_specific = -1;
            self.allow_global = -1;
            self.disallow_global = -1;
            self.initialised = true;
        }
    }

    fn user_agent(&mut self, value: &str, agent: &str) {
        self.init();
        if self.seen_rule {
            self.seen_specific = false;
            self.seen_global = false;
            self.seen_rule = false;
        }
        if is_global(value) {
            self.seen_global = true;
        } else if agent_token(value).eq_ignore_ascii_case(agent) {
            self.seen_specific = true;
            self.ever_seen_specific = true;
        }
    }

    fn rule(&mut self, path: &str, pattern: &str, allow: bool) {
        self.init();
        if !(self.seen_global || self.seen_specific) {
            return;
        }
        self.seen_rule = true;
        let priority = if matches(path, pattern) {
            pattern.len() as i64
        } else {
            -1
        };
        if priority >= 0 {
            let slot = match (self.seen_specific, allow) {
                (true, true) => &mut self.allow_specific,
                (true, false) => &mut self.disallow_specific,
                (false, true) => &mut self.allow_global,
                (false, false) => &mut self.disallow_global,
            };
            if *slot < priority {
                *slot = priority;
            }
        } else if allow {
            // "allow: /dir/index.html" also allows "/dir/".
            if let Some(slash) = pattern.rfind('/')
                && pattern[slash..].starts_with("/index.htm")
            {
                let normalised = format!("{}$", &pattern[..=slash]);
                self.rule(path, &normalised, true);
            }
        }
    }

    fn disallowed(&self) -> bool {
        if !self.initialised {
            return false;
        }
        if self.allow_specific > 0 || self.disallow_specific > 0 {
            return self.disallow_specific > self.allow_specific;
        }
        if self.ever_seen_specific {
            return false;
        }
        if self.allow_global > 0 || self.disallow_global > 0 {
            return self.disallow_global > self.allow_global;
        }
        false
    }
}

/// Whether `path` matches `pattern` (`*` any run, final `$` end anchor, otherwise a prefix).
fn matches(path: &str, pattern: &str) -> bool {
    let path = path.as_bytes();
    let pat = pattern.as_bytes();
    // Positions in `path` reachable after consuming the pattern so far (sorted).
    let mut pos: Vec<usize> = vec![0];
    for (k, &c) in pat.iter().enumerate() {
        if c == b'$' && k + 1 == pat.len() {
            return pos.last() == Some(&path.len());
        }
        if c == b'*' {
            let first = pos[0];
            pos = (first..=path.len()).collect();
        } else {
            pos.retain_mut(|p| {
                if *p < path.len() && path[*p] == c {
                    *p += 1;
                    true
                } else {
                    false
                }
            });
            if pos.is_empty() {
                return false;
            }
        }
    }
    true
}

/// The path, parameters and query of a URL ("/" when none), without the fragment.
pub fn path_params_query(url: &str) -> String {
    let b = url.as_bytes();
    let search_start = if b.len() >= 2 && b[0] == b'/' && b[1] == b'/' {
        2
    } else {
        0
    };
    let find_any = |from: usize| url[from..].find(['/', '?', ';']).map(|i| i + from);
    let early_path = find_any(search_start);
    let mut protocol_end = url[search_start..].find("://").map(|i| i + search_start);
    if let (Some(e), Some(p)) = (early_path, protocol_end)
        && e < p
    {
        protocol_end = None;
    }
    let protocol_end = protocol_end.map_or(search_start, |p| p + 3);
    match find_any(protocol_end) {
        Some(path_start) => {
            let hash = url[search_start..].find('#').map(|i| i + search_start);
            if hash.is_some_and(|h| h < path_start) {
                return "/".into();
            }
            let path_end = hash.unwrap_or(url.len());
            let p = &url[path_start..path_end];
            if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            }
        }
        None => "/".into(),
    }
}

/// The product token of a User-Agent header value: `citewatch/0.1 (+url)` → `citewatch`.
pub fn product_token(user_agent: &str) -> &str {
    let t = user_agent.split(['/', ' ']).next().unwrap_or(user_agent);
    agent_token(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(robots: &str, agent: &str, url: &str) -> bool {
        Robots::parse(robots.as_bytes()).allowed(agent, url)
    }

    #[test]
    fn groups_and_precedence() {
        let r = "user-agent: citewatch\ndisallow: /private\nallow: /private/ok\n\nuser-agent: *\ndisallow: /\n";
        assert!(!ok(r, "citewatch", "https://x.example/private/x"));
        assert!(ok(r, "citewatch", "https://x.example/private/ok/page"));
        assert!(ok(r, "citewatch", "https://x.example/public"));
        assert!(!ok(r, "otherbot", "https://x.example/public"));
        assert!(ok("", "citewatch", "https://x.example/"));
    }

    #[test]
    fn wildcards_and_anchors() {
        assert!(matches("/a/b.pdf", "/*.pdf$"));
        assert!(!matches("/a/b.pdf?x=1", "/*.pdf$"));
        assert!(matches("/fish/salmon", "/fish*"));
        assert!(matches("/anything", ""));
        assert!(!matches("/a", "/a/b"));
    }

    #[test]
    fn sitemap_lines_do_not_close_a_group() {
        let r = "user-agent: a\nsitemap: https://x/s.xml\nuser-agent: b\ndisallow: /\n";
        assert!(!ok(r, "a", "https://x/y"));
        assert!(!ok(r, "b", "https://x/y"));
    }

    #[test]
    fn crawl_delay_of_the_applying_group() {
        let r = Robots::parse(b"user-agent: *\ncrawl-delay: 2\n\nuser-agent: citewatch\ncrawl-delay: 0.5\ndisallow: /x\n");
        assert_eq!(r.crawl_delay("citewatch"), Some(Duration::from_millis(500)));
        assert_eq!(r.crawl_delay("other"), Some(Duration::from_secs(2)));
    }

    #[test]
    fn tokens_and_paths() {
        assert_eq!(
            product_token("citewatch/0.1.0 (+https://example.org)"),
            "citewatch"
        );
        assert_eq!(path_params_query("https://x.example/a/b?c=d#e"), "/a/b?c=d");
        assert_eq!(path_params_query("https://x.example"), "/");
        assert_eq!(path_params_query("https://x.example?q"), "/?q");
    }
}
