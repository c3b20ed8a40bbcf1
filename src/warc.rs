//! WARC 1.1 export of the recorded fetches (`citewatch export warc`).
//!
//! Per fetch: a `request` and a `response` record (status line and headers as received; the
//! body as stored, which is after content decoding — see [`fix_head`]), sharing
//! `WARC-Concurrent-To`; each redirect hop is its own request/response pair; a 304 is a
//! `revisit` (profile server-not-modified) referring to the capture that brought the body; a
//! browser render is the server's document as the `response` and the rendered DOM as a
//! `conversion` record referring to it. A `warcinfo` record names citewatch and its version.
//! Every record is its own gzip member, with `WARC-Block-Digest` and (for payloads)
//! `WARC-Payload-Digest` as `sha256:` + hex. Record ids are UUIDs derived from the database's
//! identity and the fetch, so exporting twice gives the same ids.
//!
//! [`RecordWriter`] and the helpers are pure (bytes in, bytes out); [`export`] streams the
//! database into a file one fetch at a time, so memory does not grow with the archive.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::fetch::Exchange;

/// `sha256:` + hex of `bytes`.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A record id (`<urn:uuid:…>`) derived from `seed`: the same seed, the same id.
pub fn record_id(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    // RFC 9562 version 8 (custom), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "<urn:uuid:{}-{}-{}-{}-{}>",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The response head as it goes into the record: the body kept is the decoded one, so
/// `Transfer-Encoding` goes (the body is not chunked) and `Content-Length` is the kept body's.
/// `Content-Encoding`, when still present, was not decoded and stays true. Other headers are
/// as received.
pub fn fix_head(head: &str, body_len: usize) -> String {
    let mut lines = head.split("\r\n");
    let mut out = String::with_capacity(head.len() + 32);
    if let Some(status) = lines.next() {
        out.push_str(status);
        out.push_str("\r\n");
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
    out
}

/// One WARC record's named fields, beyond those every record has.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(&'static str, String)>);

impl Fields {
    /// Adds a field.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, value.into()));
        self
    }
}

/// Writes WARC records, each as its own gzip member.
pub struct RecordWriter<W: Write> {
    out: W,
    /// Records written.
    pub records: usize,
}

impl<W: Write> RecordWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        RecordWriter { out, records: 0 }
    }

    /// Writes one record: `WARC/1.1`, its fields (type, id, date, length, block digest and the
    /// given ones), the block, and the two CRLFs that end it.
    pub fn record(
        &mut self,
        kind: &str,
        id: &str,
        date: &str,
        content_type: &str,
        fields: &Fields,
        block: &[&[u8]],
    ) -> std::io::Result<()> {
        let len: usize = block.iter().map(|b| b.len()).sum();
        let mut head = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: {id}\r\nWARC-Date: {date}\r\n"
        );
        for (name, value) in &fields.0 {
            // A field value never carries a line break.
            let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "WARC-Block-Digest: {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n",
            digest(block)
        ));
        let mut gz = flate2::write::GzEncoder::new(&mut self.out, flate2::Compression::default());
        gz.write_all(head.as_bytes())?;
        for b in block {
            gz.write_all(b)?;
        }
        gz.write_all(b"\r\n\r\n")?;
        gz.finish()?;
        self.records += 1;
        Ok(())
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// The `warcinfo` record.
    pub fn warcinfo(
        &mut self,
        id: &str,
        date: &str,
        filename: &str,
        registry: &str,
    ) -> std::io::Result<()> {
        let body = format!(
            "software: citewatch/{}\r\nformat: WARC File Format 1.1\r\nconformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\nisPartOf: {}\r\ndescription: fetches of the sources cited by the registry, as recorded by citewatch; bodies after content decoding\r\nrobots: obey\r\n",
            env!("CARGO_PKG_VERSION"),
            registry.replace(['\r', '\n'], " ")
        );
        self.record(
            "warcinfo",
            id,
            date,
            "application/warc-fields",
            &Fields::default().with("WARC-Filename", filename),
            &[body.as_bytes()],
        )
    }

    /// A request/response pair for one exchange; returns the response record's id.
    #[allow(clippy::too_many_arguments)]
    pub fn exchange(
        &mut self,
        seed: &str,
        date: &str,
        warcinfo: &str,
        x: &Exchange,
        body: &[u8],
    ) -> std::io::Result<String> {
        let response_id = record_id(&format!("{seed}/response"));
        let request_id = record_id(&format!("{seed}/request"));
        let head = fix_head(&x.response, body.len());
        let mut fields = Fields::default()
            .with("WARC-Target-URI", x.url.clone())
            .with("WARC-Warcinfo-ID", warcinfo)
            .with("WARC-Payload-Digest", digest(&[body]))
            .with("WARC-Concurrent-To", request_id.clone());
        if x.reconstructed {
            fields = fields.with(
                "WARC-Citewatch-Note",
                "status line and headers reconstructed from what citewatch recorded, not as received",
            );
        }
        self.record(
            "response",
            &response_id,
            date,
            "application/http; msgtype=response",
            &fields,
            &[head.as_bytes(), body],
        )?;
        self.record(
            "request",
            &request_id,
            date,
            "application/http; msgtype=request",
            &Fields::default()
                .with("WARC-Target-URI", x.url.clone())
                .with("WARC-Warcinfo-ID", warcinfo)
                .with("WARC-Concurrent-To", response_id.clone()),
            &[x.request.as_bytes()],
        )?;
        Ok(response_id)
    }
}

/// WARC-Date form of an RFC 3339 time: seconds precision, `Z`.
pub fn warc_date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Fetches at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only these URLs (as recorded in `fetches.url`); None: all.
    pub urls: Option<std::collections::HashSet<String>>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    /// Fetches written.
    pub fetches: usize,
    /// Records written (warcinfo included).
    pub records: usize,
    /// Fetches left out because their body file is gone.
    pub missing_bodies: usize,
}

/// Streams the recorded fetches into `out` as WARC 1.1, one fetch in memory at a time.
pub async fn export<W: Write>(
    store: &crate::store::Store,
    snapshots: &crate::snapshot::SnapshotStore,
    filter: &Filter,
    registry_name: &str,
    filename: &str,
    now: chrono::DateTime<chrono::Utc>,
    out: W,
) -> Result<Exported, ExportError> {
    let instance = store.instance_id().await?;
    let mut w = RecordWriter::new(out);
    let warcinfo = record_id(&format!("{instance}/warcinfo/{}", now.timestamp_millis()));
    w.warcinfo(
        &warcinfo,
        &now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        filename,
        registry_name,
    )?;
    let mut done = Exported::default();
    let mut after = 0;
    loop {
        let page = store
            .fetches_for_export(after, filter.since.as_deref(), 200)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for f in page {
            if let Some(urls) = &filter.urls
                && !urls.contains(&f.url)
            {
                continue;
            }
            match write_fetch(&mut w, store, snapshots, &instance, &warcinfo, &f).await? {
                true => done.fetches += 1,
                false => done.missing_bodies += 1,
            }
        }
    }
    done.records = w.records;
    w.flush()?;
    Ok(done)
}

/// A failed export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing the file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Writes one fetch's records; false when its body is gone from the snapshot store.
async fn write_fetch<W: Write>(
    w: &mut RecordWriter<W>,
    store: &crate::store::Store,
    snapshots: &crate::snapshot::SnapshotStore,
    instance: &str,
    warcinfo: &str,
    f: &crate::store::ExportedFetch,
) -> Result<bool, ExportError> {
    let date = warc_date(&f.fetched_at);
    let browser = f.url.starts_with("browser:");
    let url = f.url.trim_start_matches("browser:").to_string();
    let seed = format!("{instance}/fetch/{}", f.id);
    let mut exchanges: Vec<Exchange> = f
        .exchanges
        .as_deref()
        .and_then(|x| serde_json::from_str(x).ok())
        .unwrap_or_default();
    if exchanges.is_empty() {
        // Recorded before exchanges were kept: the head is rebuilt from what was recorded.
        let status = u16::try_from(f.status.unwrap_or(200)).unwrap_or(200);
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut response = format!("HTTP/1.1 {status} {reason}\r\n");
        if let Some(ct) = &f.content_type {
            response.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        response.push_str("\r\n");
        let target = url::Url::parse(f.final_url.as_deref().unwrap_or(&url)).ok();
        exchanges.push(Exchange {
            url: f.final_url.clone().unwrap_or_else(|| url.clone()),
            request: target
                .map(|t| {
                    format!(
                        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
                        &t[url::Position::BeforePath..],
                        &t[url::Position::BeforeHost..url::Position::AfterPort]
                    )
                })
                .unwrap_or_default(),
            response,
            status,
            reconstructed: true,
        });
    }
    let Some((last, hops)) = exchanges.split_last() else {
        return Ok(false);
    };
    // The body: a browser render's server document (its DOM is the conversion), else the
    // stored body.
    let body_hash = if browser {
        f.raw_snapshot_hash
            .clone()
            .or_else(|| f.snapshot_hash.clone())
    } else {
        f.snapshot_hash.clone()
    };
    let Some(body_hash) = body_hash else {
        return Ok(false);
    };
    let Ok(body) = snapshots.get(&body_hash) else {
        tracing::warn!(fetch = f.id, snapshot = %body_hash, "WARC export: snapshot file missing; fetch left out");
        return Ok(false);
    };
    for (i, hop) in hops.iter().enumerate() {
        w.exchange(&format!("{seed}/hop/{i}"), &date, warcinfo, hop, b"")?;
    }
    if f.outcome == "not_modified" {
        let first = store.first_capture(&body_hash).await?;
        let response_id = record_id(&format!("{seed}/revisit"));
        let request_id = record_id(&format!("{seed}/request"));
        let head = last.response.clone();
        let mut fields = Fields::default()
            .with("WARC-Target-URI", last.url.clone())
            .with("WARC-Warcinfo-ID", warcinfo)
            .with(
                "WARC-Profile",
                "http://netpreserve.org/warc/1.1/revisit/server-not-modified",
            )
            .with("WARC-Payload-Digest", digest(&[&body]))
            .with("WARC-Concurrent-To", request_id.clone());
        if let Some((first_url, first_at)) = first {
            fields = fields
                .with("WARC-Refers-To-Target-URI", first_url)
                .with("WARC-Refers-To-Date", warc_date(&first_at));
        }
        w.record(
            "revisit",
            &response_id,
            &date,
            "application/http; msgtype=response",
            &fields,
            &[head.as_bytes()],
        )?;
        w.record(
            "request",
            &request_id,
            &date,
            "application/http; msgtype=request",
            &Fields::default()
                .with("WARC-Target-URI", last.url.clone())
                .with("WARC-Warcinfo-ID", warcinfo)
                .with("WARC-Concurrent-To", response_id),
            &[last.request.as_bytes()],
        )?;
        return Ok(true);
    }
    let response_id = w.exchange(&seed, &date, warcinfo, last, &body)?;
    if browser
        && let Some(dom_hash) = &f.snapshot_hash
        && f.raw_snapshot_hash.is_some()
        && let Ok(dom) = snapshots.get(dom_hash)
    {
        w.record(
            "conversion",
            &record_id(&format!("{seed}/rendered")),
            &date,
            "text/html; charset=utf-8",
            &Fields::default()
                .with("WARC-Target-URI", last.url.clone())
                .with("WARC-Warcinfo-ID", warcinfo)
                .with("WARC-Refers-To", response_id)
                .with("WARC-Payload-Digest", digest(&[&dom]))
                .with(
                    "WARC-Citewatch-Note",
                    "the DOM as rendered by headless Chromium, the text citewatch judged",
                ),
            &[&dom],
        )?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_the_kept_body_length_and_no_transfer_encoding() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\nx-a: b\r\n\r\n";
        assert_eq!(
            fix_head(head, 12),
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nx-a: b\r\nContent-Length: 12\r\n\r\n"
        );
    }

    #[test]
    fn record_ids_are_stable_uuids() {
        let a = record_id("x/fetch/1/response");
        assert_eq!(a, record_id("x/fetch/1/response"));
        assert_ne!(a, record_id("x/fetch/1/request"));
        assert_eq!(a.len(), "<urn:uuid:>".len() + 36);
        assert_eq!(&a[24..25], "8", "version 8: {a}");
    }

    #[test]
    fn each_record_is_one_gzip_member_with_its_digest() {
        let mut out = Vec::new();
        let mut w = RecordWriter::new(&mut out);
        w.record(
            "resource",
            &record_id("a"),
            "2026-11-26T00:00:00Z",
            "text/plain",
            &Fields::default().with("WARC-Target-URI", "https://a.example/"),
            &[b"hello"],
        )
        .unwrap();
        w.record(
            "resource",
            &record_id("b"),
            "2026-11-26T00:00:00Z",
            "text/plain",
            &Fields::default(),
            &[b"he", b"llo"],
        )
        .unwrap();
        // Two members; each decompresses to one record.
        let mut d = flate2::read::MultiGzDecoder::new(&out[..]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut d, &mut text).unwrap();
        assert_eq!(text.matches("WARC/1.1\r\n").count(), 2);
        let sha = format!("sha256:{}", hex::encode(Sha256::digest(b"hello")));
        assert_eq!(
            text.matches(&format!("WARC-Block-Digest: {sha}")).count(),
            2
        );
        assert!(text.contains("Content-Length: 5\r\n\r\nhello\r\n\r\n"));
        let first = flate2::read::GzDecoder::new(&out[..]);
        let mut one = String::new();
        std::io::Read::read_to_string(&mut { first }, &mut one).unwrap();
        assert_eq!(one.matches("WARC/1.1").count(), 1);
    }
}
