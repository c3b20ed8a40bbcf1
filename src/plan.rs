//! Planning: which URLs to fetch for which citations, grouped so each distinct URL is fetched
//! once per run and each host's requests form one queue.
//!
//! Pure: the registry in, a plan out.

use std::collections::HashMap;

use url::Url;

use crate::fetch::host_key;
use crate::registry::{Citation, CitationKey, Registry};

/// One URL to fetch (plainly or in a browser) and the citations judged on it.
#[derive(Debug, Clone)]
pub struct PlannedSource<'a> {
    /// The URL sent (fragment removed).
    pub url: Url,
    /// How it is read: the same URL cited both ways is fetched both ways.
    pub render: crate::registry::Render,
    /// Every citation of this URL.
    pub citations: Vec<&'a Citation>,
    /// Their identity keys, in the same order (computed once per run, not per use).
    pub keys: Vec<CitationKey>,
}

/// One host's sources, fetched one after another at the host's pace.
#[derive(Debug, Clone)]
pub struct HostQueue<'a> {
    /// `host:port`.
    pub host: String,
    /// Sources in registry order.
    pub sources: Vec<PlannedSource<'a>>,
}

/// What a run will do.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// Work grouped by host, hosts in order of first appearance.
    pub hosts: Vec<HostQueue<'a>>,
}

impl Plan<'_> {
    /// Distinct URLs planned.
    pub fn url_count(&self) -> usize {
        self.hosts.iter().map(|h| h.sources.len()).sum()
    }

    /// Citations planned.
    pub fn citation_count(&self) -> usize {
        self.hosts
            .iter()
            .flat_map(|h| &h.sources)
            .map(|s| s.citations.len())
            .sum()
    }
}

/// Which citations a run covers.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this offering's citations.
    pub only: Option<String>,
    /// Only citations with these identity keys (e.g. those a pull request added).
    pub keys: Option<std::collections::HashSet<String>>,
    /// URLs not to fetch: those already fetched by the interrupted run being resumed.
    pub skip_urls: std::collections::HashSet<String>,
}

impl Scope {
    /// Whether the scope is the whole registry.
    pub fn is_full(&self) -> bool {
        self.only.is_none() && self.keys.is_none()
    }

    /// Whether a citation is in scope.
    pub fn includes(&self, c: &Citation) -> bool {
        self.only.as_ref().is_none_or(|o| *o == c.offering)
            && self.keys.as_ref().is_none_or(|k| k.contains(&c.key()))
    }
}

/// Plans a run over the citations of the registry in `scope`.
pub fn plan<'a>(registry: &'a Registry, scope: &Scope) -> Plan<'a> {
    let mut hosts: Vec<HostQueue<'a>> = Vec::new();
    let mut host_index: HashMap<String, usize> = HashMap::new();
    let mut url_index: HashMap<(String, crate::registry::Render), (usize, usize)> = HashMap::new();
    for c in registry.citations() {
        if !scope.includes(c) {
            continue;
        }
        let url = c.fetch_url();
        if scope.skip_urls.contains(url.as_str()) {
            continue;
        }
        let key = (url.as_str().to_string(), c.render);
        if let Some(&(h, s)) = url_index.get(&key) {
            hosts[h].sources[s].citations.push(c);
            hosts[h].sources[s].keys.push(c.identity());
            continue;
        }
        let host = host_key(&url);
        let h = *host_index.entry(host.clone()).or_insert_with(|| {
            hosts.push(HostQueue {
                host,
                sources: Vec::new(),
            });
            hosts.len() - 1
        });
        hosts[h].sources.push(PlannedSource {
            url,
            render: c.render,
            citations: vec![c],
            keys: vec![c.identity()],
        });
        url_index.insert(key, (h, hosts[h].sources.len() - 1));
    }
    Plan { hosts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{SourceFile, parse};

    #[test]
    fn each_url_once_grouped_by_host() {
        let vocab = SourceFile {
            path: "registry.toml".into(),
            text: "name='x'\n[[grades]]\nid='yes'\nsymbol='●'\nlabel='Y'\n[[dimensions]]\nid='a'\nlabel='A'\nquestion='?'\n[[dimensions]]\nid='b'\nlabel='B'\nquestion='?'\n".into(),
        };
        let off = SourceFile {
            path: "offerings/o.toml".into(),
            text: "id='o'\nname='O'\ndeveloper='D'\nplatform='P'\ncategory='c'\n\
                   [cells.a]\ngrade='yes'\nverified=2026-01-01\n[[cells.a.sources]]\nurl='https://h.example/x#frag'\nquote='first quote here'\n\
                   [[cells.a.sources]]\nurl='https://other.example/'\n\
                   [cells.b]\ngrade='yes'\nverified=2026-01-01\n[[cells.b.sources]]\nurl='https://h.example/x'\nquote='second quote here'\n\
                   [[cells.b.sources]]\nurl='https://h.example/y'\n"
                .into(),
        };
        let parsed = parse(&vocab, &[off]);
        let reg = parsed.registry.expect("valid");
        let p = plan(&reg, &Scope::default());
        assert_eq!(p.url_count(), 3);
        assert_eq!(p.citation_count(), 4);
        assert_eq!(p.hosts.len(), 2);
        assert_eq!(p.hosts[0].host, "h.example:443");
        assert_eq!(p.hosts[0].sources[0].citations.len(), 2);
        assert_eq!(p.hosts[0].sources[1].url.as_str(), "https://h.example/y");
        assert_eq!(
            plan(
                &reg,
                &Scope {
                    only: Some("nope".into()),
                    ..Scope::default()
                }
            )
            .url_count(),
            0
        );
        let one: std::collections::HashSet<String> = [reg.citations().next().unwrap().key()].into();
        assert_eq!(
            plan(
                &reg,
                &Scope {
                    keys: Some(one),
                    ..Scope::default()
                }
            )
            .citation_count(),
            1
        );
    }
}
