//! Extraction: the bytes of a snapshot become the text a reader sees.
//!
//! Pure: works on bytes already fetched (so it can be re-run over stored snapshots without the
//! network), never touches the file system or the clock. It decides the character set (BOM,
//! Content-Type, `<meta>`, then a UTF-8/windows-1252 fallback), and for HTML walks the parsed
//! tree itself rather than using `ElementRef::text()`, which would include `<script>` and
//! `<style>` contents and run block elements together. Hidden content stays: a collapsed FAQ
//! answer is still the page's text; script, style, template and noscript contents are not.

use encoding_rs::Encoding;
use scraper::{Html, Node, Selector};

mod fast;

/// What kind of document a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// HTML or XHTML.
    Html,
    /// Plain text (also used for unknown text types).
    Text,
    /// PDF.
    Pdf,
    /// Anything else: images, archives, ...
    Binary,
}

/// Why a snapshot yields no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The media type has no text citewatch can read.
    #[error("cannot extract text from {0} content")]
    Unsupported(String),
    /// A PDF that the PDF reader rejected (or crashed on).
    #[error("unreadable PDF: {0}")]
    Pdf(String),
    /// HTML nested deeper than any real document (the HTML parser's cost grows with the square
    /// of the depth, so such a page could hold a run's CPU for hours).
    #[error("the page nests elements about {0} deep (more than {MAX_NESTING}); not parsed")]
    TooDeep(usize),
}

/// Deepest element nesting parsed. Chromium's own HTML parser stops nesting at 512; real
/// documents stay far below.
pub const MAX_NESTING: usize = 4096;

/// Estimates the element nesting depth of an HTML document in one pass over its bytes, without
/// parsing it: start tags minus end tags, leaving out void elements, self-closing tags,
/// elements whose end tag may be omitted, and the raw text of scripts and styles.
pub fn nesting_estimate(html: &str) -> usize {
    let b = html.as_bytes();
    let (mut i, mut depth, mut max) = (0usize, 0usize, 0usize);
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        i += off + 1;
        let closing = b.get(i) == Some(&b'/');
        let name_start = i + usize::from(closing);
        let name_len = b[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &b[name_start..name_start + name_len];
        let tag_end = memchr::memchr(b'>', &b[name_start..]).map_or(b.len(), |p| name_start + p);
        let self_closing = b.get(tag_end.wrapping_sub(1)) == Some(&b'/');
        i = tag_end.min(b.len());
        let kind = tag_kind(name);
        if kind == TagKind::Uncounted {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if self_closing {
            continue;
        }
        if kind == TagKind::RawText {
            // Skip to this element's end tag: its contents are text, not tags.
            let mut j = i;
            i = b.len();
            while let Some(p) = find_end_tag_open(&b[j..]) {
                let at = j + p + 2;
                if b.len() >= at + name_len && b[at..at + name_len].eq_ignore_ascii_case(name) {
                    i = j + p;
                    break;
                }
                j = at;
            }
            continue;
        }
        depth += 1;
        max = max.max(depth);
    }
    max
}

/// How [`nesting_estimate`] counts an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// Opens a level until its end tag.
    Counted,
    /// Void elements, and those whose end tag may be omitted.
    Uncounted,
    /// Elements whose contents are text, not tags (skipped to their end tag).
    RawText,
}

/// The [`TagKind`] of a tag name (ASCII letters and digits, any case): one lower-casing into a
/// small buffer and one `match`, not a comparison with every name of a list.
fn tag_kind(name: &[u8]) -> TagKind {
    let mut buf = [0u8; 8];
    let Some(lower) = buf.get_mut(..name.len()) else {
        // No name of either kind is longer than eight letters.
        return TagKind::Counted;
    };
    for (l, c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    match &*lower {
        b"area" | b"base" | b"br" | b"col" | b"embed" | b"hr" | b"img" | b"input" | b"link"
        | b"meta" | b"source" | b"track" | b"wbr" | b"param" | b"p" | b"li" | b"dt" | b"dd"
        | b"tr" | b"td" | b"th" | b"option" | b"optgroup" | b"rb" | b"rt" | b"rtc" | b"rp"
        | b"thead" | b"tbody" | b"tfoot" | b"colgroup" | b"caption" | b"html" | b"head"
        | b"body" => TagKind::Uncounted,
        b"script" | b"style" | b"textarea" | b"title" | b"xmp" => TagKind::RawText,
        _ => TagKind::Counted,
    }
}

#[cfg(test)]
fn nesting_estimate_reference(html: &str) -> usize {
    const UNCOUNTED: &[&[u8]] = &[
        b"area",
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"source",
        b"track",
        b"wbr",
        b"param",
        b"p",
        b"li",
        b"dt",
        b"dd",
        b"tr",
        b"td",
        b"th",
        b"option",
        b"optgroup",
        b"rb",
        b"rt",
        b"rtc",
        b"rp",
        b"thead",
        b"tbody",
        b"tfoot",
        b"colgroup",
        b"caption",
        b"html",
        b"head",
        b"body",
    ];
    const RAW_TEXT: &[&[u8]] = &[b"script", b"style", b"textarea", b"title", b"xmp"];
    let b = html.as_bytes();
    let (mut i, mut depth, mut max) = (0usize, 0usize, 0usize);
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        i += off + 1;
        let closing = b.get(i) == Some(&b'/');
        let name_start = i + usize::from(closing);
        let name_len = b[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &b[name_start..name_start + name_len];
        let is = |list: &[&[u8]]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
        let tag_end = b[name_start..]
            .iter()
            .position(|&c| c == b'>')
            .map_or(b.len(), |p| name_start + p);
        let self_closing = b.get(tag_end.wrapping_sub(1)) == Some(&b'/');
        i = tag_end.min(b.len());
        if is(UNCOUNTED) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if self_closing {
            continue;
        }
        if is(RAW_TEXT) {
            // Skip to this element's end tag: its contents are text, not tags.
            let mut j = i;
            i = b.len();
            while let Some(p) = find_end_tag_open(&b[j..]) {
                let at = j + p + 2;
                if b.len() >= at + name_len && b[at..at + name_len].eq_ignore_ascii_case(name) {
                    i = j + p;
                    break;
                }
                j = at;
            }
            continue;
        }
        depth += 1;
        max = max.max(depth);
    }
    max
}

/// Where `</` first occurs in `b`: the next `<` (a fast byte search), then a look at the byte
/// after it.
fn find_end_tag_open(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = b[from..].iter().position(|&c| c == b'<') {
        let at = from + p;
        if b.get(at + 1) == Some(&b'/') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Text of a PDF, page by page, with words hyphenated across line ends joined again
/// ("certifi-\ncation" → "certification"). pdf-extract panics on some malformed files by
/// design, so a panic is caught and reported as an unreadable PDF. (The pipeline also bounds
/// the time extraction may take.)
pub fn pdf_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let owned = bytes.to_vec();
    let pages =
        std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem_by_pages(&owned))
            .map_err(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned());
                ExtractError::Pdf(msg.unwrap_or_else(|| "the PDF reader crashed".into()))
            })?
            .map_err(|e| ExtractError::Pdf(e.to_string()))?;
    let mut out = String::new();
    for page in pages {
        let page = join_hyphenated(&page);
        for line in page.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    Ok(out)
}

/// Joins a word split by a hyphen at a line end when the next line goes on in lowercase.
fn join_hyphenated(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let mut line = lines[i].trim_end().to_string();
        while line.ends_with('-') && i + 1 < lines.len() {
            let before = line[..line.len() - 1].chars().last();
            let next = lines[i + 1].trim_start();
            let next_first = next.chars().next();
            if before.is_some_and(char::is_alphabetic) && next_first.is_some_and(char::is_lowercase)
            {
                line.pop();
                line.push_str(next);
                i += 1;
            } else {
                break;
            }
        }
        out.push_str(&line);
        out.push('\n');
        i += 1;
    }
    out
}

/// Decides the media kind from the Content-Type header, sniffing the bytes when it is absent or
/// generic.
pub fn media_kind(content_type: Option<&str>, bytes: &[u8]) -> MediaKind {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let head = &bytes[..bytes.len().min(1024)];
    let is_pdf = head.starts_with(b"%PDF-");
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    let looks_html =
        lower.contains("<html") || lower.contains("<!doctype html") || lower.contains("<body");
    // Binary bytes are binary whatever the label says: judging decoded junk as a page would
    // report a quote `missing` from something that is not the document.
    if !is_pdf && looks_binary(bytes) {
        return MediaKind::Binary;
    }
    match essence.as_str() {
        "text/html" | "application/xhtml+xml" => return MediaKind::Html,
        // A server that labels its HTML error page as PDF is common; trust the bytes.
        "application/pdf" if is_pdf || !looks_html => return MediaKind::Pdf,
        "text/plain" | "text/markdown" => return MediaKind::Text,
        _ => {}
    }
    if is_pdf {
        return MediaKind::Pdf;
    }
    if looks_html {
        return MediaKind::Html;
    }
    let texty =
        essence.starts_with("text/") || essence.is_empty() || essence == "application/octet-stream";
    if texty && (std::str::from_utf8(head).is_ok() || !head.contains(&0)) {
        return MediaKind::Text;
    }
    MediaKind::Binary
}

/// Whether bytes are binary data rather than text in any encoding: more than one in ten of the
/// first 4 KiB are control characters other than whitespace (text in UTF-16 has a BOM and is
/// decoded as text).
fn looks_binary(bytes: &[u8]) -> bool {
    if Encoding::for_bom(bytes).is_some() {
        return false;
    }
    let head = &bytes[..bytes.len().min(4096)];
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C))
        .count();
    !head.is_empty() && controls * 10 > head.len()
}

/// Decodes bytes to text: byte-order mark first, then the Content-Type charset, then an HTML
/// `<meta charset>` (for HTML), then detection (chardetng). A label that the bytes contradict
/// is not trusted: "UTF-8" bytes that are not UTF-8 are detected instead, and a single-byte
/// label on bytes that are valid multi-byte UTF-8 is read as UTF-8 (a common mislabelling).
pub fn decode(bytes: &[u8], content_type: Option<&str>, kind: MediaKind) -> String {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return enc
            .decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned();
    }
    let header = content_type
        .and_then(charset_param)
        .and_then(|l| Encoding::for_label(l.as_bytes()));
    let declared = header.or_else(|| {
        (kind == MediaKind::Html)
            .then(|| meta_charset(bytes))
            .flatten()
    });
    let valid_utf8 = std::str::from_utf8(bytes).is_ok();
    let enc = match declared {
        // A page labelled UTF-16 in <meta> cannot really be (it was read as ASCII to find the
        // label); browsers then treat it as UTF-8, and so do we.
        Some(e)
            if (e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE) && header.is_none() =>
        {
            encoding_rs::UTF_8
        }
        Some(e) if e == encoding_rs::UTF_8 && !valid_utf8 => detect(bytes),
        Some(e) if e.is_single_byte() && valid_utf8 && !bytes.is_ascii() => encoding_rs::UTF_8,
        Some(e) => e,
        None if valid_utf8 => encoding_rs::UTF_8,
        None => detect(bytes),
    };
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// Guesses the encoding of unlabeled or mislabeled bytes.
fn detect(bytes: &[u8]) -> &'static Encoding {
    let mut d = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    d.feed(bytes, true);
    d.guess(None, chardetng::Utf8Detection::Allow)
}

fn charset_param(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset"))
            .then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// Finds `<meta charset=...>` or `<meta http-equiv content="...charset=...">` in the first 4 KiB.
fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(i) = rest.find("<meta") {
        rest = &rest[i + 5..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        if let Some(j) = tag.find("charset") {
            let after = tag[j + 7..].trim_start();
            if let Some(after) = after.strip_prefix('=') {
                let label: String = after
                    .trim_start()
                    .trim_start_matches(['"', '\''])
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
                    .collect();
                if let Some(enc) = Encoding::for_label(label.as_bytes()) {
                    return Some(enc);
                }
            }
        }
    }
    None
}

/// The text of one snapshot, in the two forms the evidence stage needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extracted {
    /// Everything a reader could find on the page, hidden parts and `alt` text included;
    /// quotes and watched terms are looked up here. Blocks are separated by newlines.
    pub text: String,
    /// The document's own wording for change detection: the `<main>` content (or the body
    /// without header, footer and navigation), without menus, forms' controls, dialogs and
    /// cookie banners. Equal to `text` for non-HTML documents and when a selector is given.
    pub wording: String,
    /// One entry per line of `text`: its heading level and whether it is hidden on the page.
    /// Empty for non-HTML documents.
    pub lines: Vec<LineInfo>,
    /// `<script>` elements in the whole document (HTML only; 0 otherwise). With almost no
    /// text, a document of scripts is an application shell that needs a browser.
    pub scripts: usize,
    /// Whitespace-separated words of `text` ([`word_count`]), counted once as it is built.
    pub words: usize,
}

impl Extracted {
    /// A document that is all wording (plain text, PDF text): `text` and `wording` alike.
    pub fn plain(text: String) -> Self {
        Extracted {
            words: word_count(&text),
            wording: text.clone(),
            text,
            ..Extracted::default()
        }
    }
}

/// What the page's markup says about one line of [`Extracted::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineInfo {
    /// `Some(1..=6)` when the line is an `<h1>`..`<h6>` heading.
    pub heading: Option<u8>,
    /// True when the text is hidden until a reader acts (`hidden`, `aria-hidden`,
    /// `display:none`, a collapsed `<details>`, screen-reader-only classes). Hidden text still
    /// counts as the page's text; the report says where a quote was found.
    pub hidden: bool,
}

/// Extracts a snapshot's text. With a selector, only matching elements count (joined by
/// newlines; nested matches once); a selector that matches nothing yields empty text, which
/// the evidence stage reports.
pub fn extract(
    bytes: &[u8],
    content_type: Option<&str>,
    selector: Option<&str>,
) -> Result<Extracted, ExtractError> {
    let kind = media_kind(content_type, bytes);
    match kind {
        MediaKind::Html => {
            let html = decode(bytes, content_type, kind);
            let depth = nesting_estimate(&html);
            if depth > MAX_NESTING {
                return Err(ExtractError::TooDeep(depth));
            }
            Ok(html_extract(&html, selector))
        }
        MediaKind::Text => Ok(Extracted::plain(decode(bytes, content_type, kind))),
        MediaKind::Pdf => Ok(Extracted::plain(pdf_text(bytes)?)),
        MediaKind::Binary => Err(ExtractError::Unsupported(
            content_type.unwrap_or("binary").to_string(),
        )),
    }
}

/// Elements whose contents are never page text.
fn is_skipped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "template"
            | "noscript"
            | "head"
            | "iframe"
            | "object"
            | "svg"
            | "canvas"
    )
}

/// Elements that start a new line of text.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "caption"
            | "dd"
            | "details"
            | "dialog"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "td"
            | "tfoot"
            | "th"
            | "thead"
            | "tr"
            | "ul"
            | "option"
            | "legend"
            | "html"
            | "center"
            | "menu"
    )
}

/// Both texts of an HTML document (or of the parts matching `selector`).
///
/// A page in the well-formed subset the fast path reads ([`fast`]) is walked from its
/// events; any other page, and any selector, goes through html5ever's tree. Debug builds
/// (the tests) read every fast-path page through the tree as well and stop on a difference.
pub fn html_extract(html: &str, selector: Option<&str>) -> Extracted {
    if selector.is_none()
        && let Some(doc) = fast::parse(html)
    {
        let ex = extract_events(&doc);
        #[cfg(debug_assertions)]
        {
            let tree = html_extract_tree(html, None);
            assert!(
                ex == tree,
                "fast-path extraction differs from the tree's for a page starting {:?}",
                html.chars().take(200).collect::<String>()
            );
        }
        return ex;
    }
    html_extract_tree(html, selector)
}

/// Whether the fast path reads this page (for tests and benchmarks).
pub fn takes_fast_path(html: &str) -> bool {
    fast::parse(html).is_some()
}

/// Where in `src/extract/fast.rs` the fast path declines this page (`None`: it reads it).
pub fn fast_path_decline(html: &str) -> Option<u32> {
    fast::read(html).err().map(|d| d.0)
}

fn extract_events(doc: &fast::Document<'_>) -> Extracted {
    let mut sinks = Sinks {
        saw_main: doc.saw_main,
        ..Sinks::default()
    };
    walk_events(doc, &mut sinks);
    sinks.finish(doc.scripts)
}

/// [`html_extract`] through html5ever's tree, whatever the page.
pub fn html_extract_tree(html: &str, selector: Option<&str>) -> Extracted {
    let doc = Html::parse_document(html);
    let mut sinks = Sinks::default();
    // One linear pass over the node arena counts scripts and decides which wording sink is
    // needed, so the walk fills two sinks, not three.
    let mut scripts = 0;
    for n in doc.tree.nodes() {
        if let Some(e) = n.value().as_element() {
            match e.name() {
                "script" => scripts += 1,
                "main" => sinks.saw_main = true,
                _ if !sinks.saw_main => {
                    sinks.saw_main = e.attrs().any(|(k, v)| k == "role" && v.trim() == "main")
                }
                _ => {}
            }
        }
    }
    if let Some(sel) = selector.and_then(|s| Selector::parse(s).ok()) {
        for el in top_level(doc.select(&sel)) {
            walk(el, &mut sinks);
            sinks.all.boundary();
        }
        let (text, lines, words) = sinks.all.finish();
        return Extracted {
            wording: text.clone(),
            text,
            lines,
            scripts,
            words,
        };
    }
    walk(doc.tree.root(), &mut sinks);
    sinks.finish(scripts)
}

/// The text of an HTML document (or of the parts matching `selector`), as [`Extracted::text`].
pub fn html_text(html: &str, selector: Option<&str>) -> String {
    html_extract(html, selector).text
}

/// Selected elements without those nested in another selected element (so text is not
/// repeated when a selector such as `div` matches ancestors and descendants), and without
/// those inside elements whose contents are never page text.
fn top_level<'a>(selected: scraper::html::Select<'a, '_>) -> Vec<ego_tree::NodeRef<'a, Node>> {
    let nodes: Vec<ego_tree::NodeRef<'a, Node>> = selected.map(|e| *e).collect();
    let ids: std::collections::HashSet<ego_tree::NodeId> = nodes.iter().map(|n| n.id()).collect();
    // Matches inside script-like elements (a template's contents, say) are not page text.
    nodes
        .into_iter()
        .filter(|n| {
            !n.ancestors().any(|a| {
                ids.contains(&a.id())
                    || a.value().as_element().is_some_and(|e| is_skipped(e.name()))
            })
        })
        .collect()
}

/// The three texts one walk produces.
#[derive(Default)]
struct Sinks {
    /// Everything but script-like contents ([`Extracted::text`]).
    all: TextBuilder,
    /// Inside `<main>`, without navigation, controls, dialogs and banners.
    main: TextBuilder,
    /// The whole page without those and without the page header and footer (used when the
    /// page has no `<main>`).
    page: TextBuilder,
    /// Whether the page has a `<main>` (or `role=main`) element: then only `main` is filled,
    /// otherwise only `page`.
    saw_main: bool,
}

impl Sinks {
    /// What a walk of a whole page extracted: its text, and as its wording the `main` sink's
    /// when the page has a `<main>`, else the `page` sink's.
    fn finish(self, scripts: usize) -> Extracted {
        let (text, lines, words) = self.all.finish();
        let wording = if self.saw_main {
            self.main.finish().0
        } else {
            self.page.finish().0
        };
        Extracted {
            text,
            wording,
            lines,
            scripts,
            words,
        }
    }
}

static CONSENT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)cookie[-_]?(?:banner|bar|consent|confirm|popup|pop-up|modal|dialog|overlay|prompt|wall|layer|accept)|consent[-_]?(?:banner|bar|manager|popup|modal|dialog|overlay)|gdpr[-_]?(?:banner|popup|consent)|onetrust|cookiebot|didomi|truste|osano|qc-cmp|cc-window|cc-banner|usercentrics|cookielaw|cmp-container").expect("valid regex")
});

/// The attributes extraction looks at, gathered in one pass over an element's attributes
/// (scraper's `attr()` interns the name on every call, which dominates a walk).
#[derive(Default, Debug, PartialEq)]
struct Attrs<'a> {
    id: Option<&'a str>,
    class: Option<&'a str>,
    role: Option<&'a str>,
    style: Option<&'a str>,
    alt: Option<&'a str>,
    hidden: bool,
    aria_hidden: bool,
    aria_modal: bool,
    open: bool,
}

impl<'a> Attrs<'a> {
    fn of(e: &'a scraper::node::Element) -> Attrs<'a> {
        let mut a = Attrs::default();
        for (k, v) in e.attrs() {
            match k {
                "id" => a.id = Some(v),
                "class" => a.class = Some(v),
                "role" => a.role = Some(v.trim()),
                "style" => a.style = Some(v),
                "alt" => a.alt = Some(v),
                "hidden" => a.hidden = true,
                "aria-hidden" => a.aria_hidden = v.trim() == "true",
                "aria-modal" => a.aria_modal = v.trim() == "true",
                "open" => a.open = true,
                _ => {}
            }
        }
        a
    }

    /// The same from the fast path's attributes.
    fn of_fast(f: &'a fast::FastAttrs<'_>) -> Attrs<'a> {
        Attrs {
            id: f.id.as_deref(),
            class: f.class.as_deref(),
            role: f.role.as_deref().map(str::trim),
            style: f.style.as_deref(),
            alt: f.alt.as_deref(),
            hidden: f.hidden,
            aria_hidden: f.aria_hidden.as_deref().is_some_and(|v| v.trim() == "true"),
            aria_modal: f.aria_modal.as_deref().is_some_and(|v| v.trim() == "true"),
            open: f.open,
        }
    }
}

/// Page furniture that is not the document's wording: `(inside main, in a page without
/// main)`. Inside `<main>` a header or footer belongs to the document; around it, to the site.
fn chrome(name: &str, a: &Attrs<'_>) -> (bool, bool) {
    if matches!(
        name,
        "nav" | "aside" | "dialog" | "select" | "button" | "menu"
    ) {
        return (true, true);
    }
    let page_only = matches!(name, "header" | "footer");
    if let Some(role) = a.role {
        match role {
            "navigation" | "search" | "dialog" | "alertdialog" | "complementary" | "menu"
            | "menubar" => return (true, true),
            "banner" | "contentinfo" => return (false, true),
            _ => {}
        }
    }
    if a.aria_modal || a.id.is_some_and(consent_like) || a.class.is_some_and(consent_like) {
        return (true, true);
    }
    (false, page_only)
}

/// Whether an id or class names a cookie or consent banner. A cheap substring test guards the
/// regex, which runs on few elements.
fn consent_like(v: &str) -> bool {
    CONSENT_HINT.is_match(v) && CONSENT.is_match(v)
}

static CONSENT_HINT: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([
                "cookie",
                "consent",
                "gdpr",
                "onetrust",
                "didomi",
                "truste",
                "osano",
                "cmp",
                "cc-",
                "usercentrics",
            ])
            .expect("valid patterns")
    });

/// The index of the first non-whitespace character of `t` at or after `i` (a char boundary).
fn skip_whitespace(t: &str, i: usize) -> usize {
    skip_while(t, i, true)
}

/// The index of the first whitespace character of `t` at or after `i` (a char boundary).
fn skip_word(t: &str, i: usize) -> usize {
    skip_while(t, i, false)
}

/// The index of the first character of `t` at or after `i` whose being whitespace is not
/// `space` (a char boundary), found bytewise.
fn skip_while(t: &str, mut i: usize, space: bool) -> usize {
    let b = t.as_bytes();
    while i < b.len() {
        let c = b[i];
        let (is_space, len) = if c < 0x80 {
            (matches!(c, b'\t'..=b'\r' | b' '), 1)
        } else {
            // Unicode whitespace outside ASCII starts with one of these lead bytes (U+0085,
            // U+00A0, U+1680, U+2000..U+205F, U+3000); any other character is not a space.
            let len = match c {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let is_space = matches!(c, 0xC2 | 0xE1 | 0xE2 | 0xE3)
                && t[i..].chars().next().is_some_and(char::is_whitespace);
            (is_space, len)
        };
        if is_space != space {
            return i;
        }
        i += len;
    }
    i
}

/// Collects text into lines (one per block), with each line's [`LineInfo`].
#[derive(Default)]
struct TextBuilder {
    out: String,
    lines: Vec<LineInfo>,
    /// The markup facts of the current line: those of its first text with a word in it.
    cur_info: LineInfo,
    /// Whether the current line has a word yet (it is then in `out`, after a `\n`).
    line_started: bool,
    /// Whether the last character written ended inside a word: text that follows without
    /// whitespace continues that word (`<b>Type</b>II` is one word, as on the page).
    in_word: bool,
    /// Words written to `out` so far.
    words: usize,
}

impl TextBuilder {
    /// Writes a piece of a line: its words, whitespace runs collapsed to one space, in one
    /// pass (no per-line buffer split again at the boundary). Whitespace is Unicode's
    /// (`char::is_whitespace`), as `str::split_whitespace` splits. Text that is already in
    /// that form (words with single spaces between them, the usual case) is copied in one
    /// piece, not word by word.
    fn text(&mut self, t: &str, info: LineInfo) {
        let b = t.as_bytes();
        let n = b.len();
        let mut i = 0;
        loop {
            let ws = i;
            i = skip_whitespace(t, i);
            if i > ws {
                self.in_word = false;
            }
            if i == n {
                return;
            }
            // A span of words separated by single spaces, from a word's start.
            let span = i;
            let mut words = 1;
            loop {
                i = skip_word(t, i);
                if i + 1 < n && b[i] == b' ' && skip_whitespace(t, i + 1) == i + 1 {
                    i += 1;
                    words += 1;
                    continue;
                }
                break;
            }
            if self.in_word {
                // The span's first word continues the word before it.
                words -= 1;
            } else if self.line_started {
                self.out.push(' ');
            } else {
                if !self.out.is_empty() {
                    self.out.push('\n');
                }
                self.line_started = true;
                self.cur_info = info;
            }
            self.words += words;
            self.out.push_str(&t[span..i]);
            self.in_word = true;
        }
    }

    /// Ends the current line (a block boundary or `<br>`).
    fn boundary(&mut self) {
        if self.line_started {
            self.lines.push(self.cur_info);
        }
        self.line_started = false;
        self.in_word = false;
    }

    fn finish(mut self) -> (String, Vec<LineInfo>, usize) {
        self.boundary();
        (self.out, self.lines, self.words)
    }
}

/// The line builder as it was before it wrote words in one pass: a line's text gathered, then
/// split on whitespace at its boundary. Kept as the reference the one-pass builder is held to.
#[cfg(test)]
#[derive(Default)]
struct ReferenceTextBuilder {
    out: String,
    lines: Vec<LineInfo>,
    cur: String,
    cur_info: LineInfo,
    words: usize,
}

#[cfg(test)]
impl ReferenceTextBuilder {
    fn text(&mut self, t: &str, info: LineInfo) {
        if self.cur.trim().is_empty() && !t.trim().is_empty() {
            self.cur_info = info;
        }
        self.cur.push_str(t);
    }

    fn boundary(&mut self) {
        let cur = std::mem::take(&mut self.cur);
        let start = self.out.len();
        let mut first = true;
        for w in cur.split_whitespace() {
            if first {
                if start > 0 {
                    self.out.push('\n');
                }
                first = false;
            } else {
                self.out.push(' ');
            }
            self.out.push_str(w);
            self.words += 1;
        }
        if !first {
            self.lines.push(self.cur_info);
        }
    }

    fn finish(mut self) -> (String, Vec<LineInfo>, usize) {
        self.boundary();
        (self.out, self.lines, self.words)
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// Whether an element hides its content until a reader acts (a collapsed `<details>` is
/// handled by the walk, since its `<summary>` stays visible).
fn is_hidden(a: &Attrs<'_>) -> bool {
    if a.hidden || a.aria_hidden {
        return true;
    }
    if let Some(style) = a.style
        && (style.contains("none") || style.contains("hidden"))
    {
        let compact: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if compact.contains("display:none") || compact.contains("visibility:hidden") {
            return true;
        }
    }
    let Some(class) = a.class else { return false };
    if !(class.contains("hid")
        || class.contains("sr-only")
        || class.contains("d-none")
        || class.contains("hide"))
    {
        return false;
    }
    class.split_ascii_whitespace().any(|c| {
        matches!(
            c,
            "hidden"
                | "sr-only"
                | "visually-hidden"
                | "visuallyhidden"
                | "d-none"
                | "is-hidden"
                | "hide"
        )
    })
}

/// Per-element state while walking.
struct Frame {
    skipped: bool,
    block: bool,
    heading: bool,
    hides: bool,
    unhides: bool,
    main: bool,
    chrome_main: bool,
    chrome_page: bool,
    /// A `<details>` without `open`: its `<summary>` child is what a reader sees.
    collapsed_details: bool,
}

/// The walk over a document's elements and text in tree order, feeding the sinks. Driven
/// by a tree traversal ([`walk`]) or by the fast path's events ([`walk_events`]).
struct Walker<'s> {
    sinks: &'s mut Sinks,
    stack: Vec<Frame>,
    skipping: usize,
    hidden: usize,
    in_main: usize,
    chrome_main: usize,
    chrome_page: usize,
    headings: Vec<u8>,
}

impl<'s> Walker<'s> {
    fn new(sinks: &'s mut Sinks) -> Self {
        Walker {
            sinks,
            stack: Vec::new(),
            skipping: 0,
            hidden: 0,
            in_main: 0,
            chrome_main: 0,
            chrome_page: 0,
            headings: Vec::new(),
        }
    }

    fn boundary(&mut self) {
        self.sinks.all.boundary();
        self.sinks.main.boundary();
        self.sinks.page.boundary();
    }

    fn info(&self) -> LineInfo {
        LineInfo {
            heading: self.headings.last().copied(),
            hidden: self.hidden > 0,
        }
    }

    /// An element opens; `attrs` is read only when its contents can be text.
    fn open<'a>(&mut self, name: &str, attrs: impl FnOnce() -> Attrs<'a>) {
        if self.skipping > 0 || is_skipped(name) {
            self.skipping += 1;
            self.stack.push(Frame {
                skipped: true,
                block: false,
                heading: false,
                hides: false,
                unhides: false,
                main: false,
                chrome_main: false,
                chrome_page: false,
                collapsed_details: false,
            });
            return;
        }
        let block = is_block(name);
        if block {
            self.boundary();
        }
        let level = heading_level(name);
        if let Some(l) = level {
            self.headings.push(l);
        }
        let attrs = attrs();
        let collapsed_details = name == "details" && !attrs.open;
        let hides = collapsed_details || is_hidden(&attrs);
        if hides {
            self.hidden += 1;
        }
        // The summary of a collapsed <details> is what a reader sees.
        let unhides = name == "summary"
            && self.hidden > 0
            && self.stack.last().is_some_and(|p| p.collapsed_details);
        if unhides {
            self.hidden -= 1;
        }
        let main = name == "main" || attrs.role == Some("main");
        if main {
            self.in_main += 1;
        }
        let (cm, cp) = chrome(name, &attrs);
        self.chrome_main += usize::from(cm);
        self.chrome_page += usize::from(cp);
        self.stack.push(Frame {
            skipped: false,
            block,
            heading: level.is_some(),
            hides,
            unhides,
            main,
            chrome_main: cm,
            chrome_page: cp,
            collapsed_details,
        });
        let piece = match name {
            "br" => {
                self.boundary();
                None
            }
            "img" | "area" => attrs.alt.map(str::trim).filter(|a| !a.is_empty()),
            "td" | "th" => Some(""),
            _ => None,
        };
        if let Some(p) = piece {
            let padded = format!(" {p} ");
            self.text(&padded);
        }
    }

    fn text(&mut self, t: &str) {
        if self.skipping > 0 {
            return;
        }
        let info = self.info();
        push_text(
            self.sinks,
            t,
            info,
            self.in_main > 0 && self.chrome_main == 0,
            self.chrome_page == 0,
        );
    }

    /// The innermost open element closes.
    fn close(&mut self) {
        let Some(f) = self.stack.pop() else { return };
        if f.skipped {
            self.skipping -= 1;
            return;
        }
        if f.block {
            self.boundary();
        }
        if f.heading {
            self.headings.pop();
        }
        if f.hides {
            self.hidden -= 1;
        }
        if f.unhides {
            self.hidden += 1;
        }
        if f.main {
            self.in_main -= 1;
        }
        self.chrome_main -= usize::from(f.chrome_main);
        self.chrome_page -= usize::from(f.chrome_page);
    }
}

/// Walks the tree under `node` once, iteratively (deeply nested pages must not overflow the
/// stack), feeding all three sinks.
fn walk(node: ego_tree::NodeRef<'_, Node>, sinks: &mut Sinks) {
    use ego_tree::iter::Edge;
    let mut w = Walker::new(sinks);
    for edge in node.traverse() {
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Element(e) => w.open(e.name(), || Attrs::of(e)),
                Node::Text(t) => w.text(t),
                _ => {}
            },
            Edge::Close(n) => {
                if n.value().as_element().is_some() {
                    w.close();
                }
            }
        }
    }
}

/// The same walk over the fast path's events.
fn walk_events(doc: &fast::Document<'_>, sinks: &mut Sinks) {
    let mut w = Walker::new(sinks);
    for ev in &doc.events {
        match ev {
            fast::Event::Open { name, attrs } => w.open(name, || match *attrs {
                0 => Attrs::default(),
                i => Attrs::of_fast(&doc.attrs[i as usize - 1]),
            }),
            fast::Event::Text(t) => w.text(t),
            fast::Event::Char(c) => w.text(c.encode_utf8(&mut [0; 4])),
            fast::Event::Close => w.close(),
        }
    }
}

fn push_text(sinks: &mut Sinks, t: &str, info: LineInfo, to_main: bool, to_page: bool) {
    sinks.all.text(t, info);
    if sinks.saw_main {
        if to_main {
            sinks.main.text(t, info);
        }
    } else if to_page {
        sinks.page.text(t, info);
    }
}

#[cfg(test)]
mod builder_tests {
    use super::{LineInfo, ReferenceTextBuilder, TextBuilder};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Text(String, LineInfo),
        Boundary,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => ("[ab\\- \t\n\r\x0b\x0c\u{a0}\u{85}\u{1680}\u{2000}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}\u{200b}\u{1f600}é漢]{0,8}", 0u8..8, any::<bool>())
                .prop_map(|(t, h, hidden)| Op::Text(t, LineInfo { heading: (h < 7 && h > 0).then_some(h), hidden })),
            1 => Just(Op::Boundary),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The one-pass builder writes exactly the text, lines and word count the reference
        /// (gather a line, split it at its boundary) does, for any mix of whitespace kinds,
        /// words split across pieces, and empty or blank pieces and lines.
        #[test]
        fn the_one_pass_builder_writes_what_the_reference_writes(ops in prop::collection::vec(op(), 0..40)) {
            let mut fast = TextBuilder::default();
            let mut reference = ReferenceTextBuilder::default();
            for op in &ops {
                match op {
                    Op::Text(t, info) => {
                        fast.text(t, *info);
                        reference.text(t, *info);
                    }
                    Op::Boundary => {
                        fast.boundary();
                        reference.boundary();
                    }
                }
            }
            prop_assert_eq!(fast.finish(), reference.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    /// The premise of `TextBuilder::boundary`'s fast path: on ASCII text without a vertical
    /// tab, splitting on ASCII whitespace and on Unicode whitespace agree.
    #[test]
    fn ascii_lines_split_alike_without_a_vertical_tab() {
        for c in (0u8..0x80).filter(|&c| c != 0x0b).map(char::from) {
            let s = format!("a{c}b {c}{c}c{c}");
            let ascii: Vec<&str> = s.split_ascii_whitespace().collect();
            let unicode: Vec<&str> = s.split_whitespace().collect();
            assert_eq!(ascii, unicode, "{c:?}");
        }
        let vt = "a\x0bb";
        assert_ne!(
            vt.split_ascii_whitespace().count(),
            vt.split_whitespace().count()
        );
        let ex = html_extract("<p>one\x0btwo\t three\u{a0}four</p><p>five</p>", None);
        assert_eq!(ex.text, "one two three four\nfive");
        assert_eq!(ex.words, 5);
    }

    #[test]
    fn word_count_agrees_with_split_whitespace() {
        let mut samples: Vec<String> = vec![
            String::new(),
            " ".into(),
            "one".into(),
            "  two  words ".into(),
            "tab\tnew\nline\rcr\x0bvt\x0cff".into(),
            "\u{1c}\u{1d}\u{1e}\u{1f} not spaces".into(),
            "é à ü — “quoted” 日本語 text".into(),
        ];
        // Every character in U+0000..U+3100 between two words, alone and doubled.
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            samples.push(format!("a{c}b"));
            samples.push(format!("{c}{c}x{c}"));
        }
        for s in &samples {
            assert_eq!(super::word_count(s), s.split_whitespace().count(), "{s:?}");
        }
    }

    use super::*;

    fn text(bytes: &[u8], ct: Option<&str>, sel: Option<&str>) -> Result<String, ExtractError> {
        extract(bytes, ct, sel).map(|e| e.text)
    }

    #[test]
    fn lines_know_their_heading_and_visibility() {
        let e = html_extract(
            r#"<h1>Trust</h1><p>Intro</p><h2>Sub<b>processors</b></h2><div aria-hidden="true"><p>Azure</p></div>
               <details><summary>Q?</summary><p>Answer</p></details><p style="display: none">Ghost</p><span class="sr-only">Reader</span>"#,
            None,
        );
        let lines: Vec<(&str, Option<u8>, bool)> = e
            .text
            .lines()
            .zip(&e.lines)
            .map(|(t, i)| (t, i.heading, i.hidden))
            .collect();
        assert_eq!(
            lines,
            [
                ("Trust", Some(1), false),
                ("Intro", None, false),
                ("Subprocessors", Some(2), false),
                ("Azure", None, true),
                ("Q?", None, false),
                ("Answer", None, true),
                ("Ghost", None, true),
                ("Reader", None, true),
            ]
        );
    }

    #[test]
    fn hyphenated_line_ends_are_joined() {
        assert_eq!(
            join_hyphenated("SOC 2 certifi-\ncation is\nwell-\nKnown"),
            "SOC 2 certification is\nwell-\nKnown\n"
        );
    }

    #[test]
    fn a_broken_pdf_is_an_error_not_a_crash() {
        assert!(matches!(
            pdf_text(b"%PDF-1.7\n garbage"),
            Err(ExtractError::Pdf(_))
        ));
    }

    #[test]
    fn entities_breaks_and_invisible_characters_do_not_break_text() {
        let t = html_text(
            "<p>SOC&nbsp;2 <span>Type</span>&#160;II com&shy;plies<br>with ISO&#x200B; 27001 &amp; &ldquo;27701&rdquo;</p>",
            None,
        );
        let n = crate::evidence::normalise(&t);
        assert_eq!(n, "SOC 2 Type II complies with ISO 27001 & \"27701\"");
    }

    #[test]
    fn wording_leaves_out_page_furniture() {
        let page = r#"<html><body><header>Site menu</header><nav>Products Pricing</nav>
            <main><h1>Terms</h1><p>We keep data for 30 days.</p><select><option>English</option></select>
            <div class="cookieConfirm--x">Accept all cookies</div><div role="dialog">Sign up!</div>
            <button>Copy</button></main><footer>© 2026</footer></body></html>"#;
        let e = html_extract(page, None);
        assert_eq!(e.wording, "Terms\nWe keep data for 30 days.");
        for t in [
            "Site menu",
            "Products",
            "English",
            "Accept all cookies",
            "Sign up!",
            "© 2026",
            "We keep data",
        ] {
            assert!(e.text.contains(t), "full text keeps {t}");
        }
        let no_main =
            "<body><header>Menu</header><div><p>Body text.</p></div><footer>Foot</footer></body>";
        assert_eq!(html_extract(no_main, None).wording, "Body text.");
        // With a selector, both are the selected text, nested matches counted once.
        let e = html_extract(
            "<div><div><p>Inner</p></div><p>Outer</p></div>",
            Some("div"),
        );
        assert_eq!(e.text, "Inner\nOuter");
        assert_eq!(e.wording, e.text);
    }

    #[test]
    fn script_style_and_template_are_not_text() {
        let t = html_text(
            "<html><head><title>T</title><style>p{}</style></head><body><p>Hello</p><script>var x='secret';</script><template><p>tpl</p></template><noscript>enable js</noscript></body></html>",
            None,
        );
        assert_eq!(t, "Hello");
    }

    #[test]
    fn blocks_do_not_run_together() {
        let t = html_text(
            "<ul><li>frameworks.</li><li>HIPAA</li></ul><p>GDPR</p>",
            None,
        );
        assert_eq!(t, "frameworks.\nHIPAA\nGDPR");
    }

    #[test]
    fn inline_elements_and_br() {
        let t = html_text("<p>SOC <b>2</b> Type<br>II</p>", None);
        assert_eq!(t, "SOC 2 Type\nII");
    }

    #[test]
    fn hidden_content_and_alt_text_count() {
        let t = html_text(
            r#"<div hidden>Hidden answer</div><div aria-hidden="true">Azure</div><img alt="Google Cloud" src="x.png"><details><summary>Q</summary>A</details>"#,
            None,
        );
        assert!(t.contains("Hidden answer"));
        assert!(t.contains("Azure"));
        assert!(t.contains("Google Cloud"));
        assert!(t.contains('A'));
    }

    #[test]
    fn selector_limits_text() {
        let t = html_text("<nav>Menu</nav><main><p>Body text</p></main>", Some("main"));
        assert_eq!(t, "Body text");
        assert_eq!(html_text("<p>x</p>", Some("article")), "");
    }

    #[test]
    fn windows_1252_from_header_and_meta() {
        let bytes = b"<p>caf\xe9 \x93quoted\x94</p>";
        let t = text(bytes, Some("text/html; charset=windows-1252"), None).unwrap();
        assert_eq!(t, "caf\u{e9} \u{201c}quoted\u{201d}");
        let with_meta =
            b"<html><head><meta charset=\"windows-1252\"></head><body><p>caf\xe9</p></body></html>";
        assert_eq!(
            text(with_meta, Some("text/html"), None).unwrap(),
            "caf\u{e9}"
        );
        // Unlabeled and not UTF-8: windows-1252.
        assert_eq!(
            text(b"<p>caf\xe9</p>", Some("text/html"), None).unwrap(),
            "caf\u{e9}"
        );
    }

    #[test]
    fn mislabeled_pages_are_decoded_by_what_they_are() {
        // Labelled UTF-8, actually windows-1252.
        let t = text(
            b"<p>Donn\xe9es prot\xe9g\xe9es et chiffr\xe9es \x93toujours\x94</p>",
            Some("text/html; charset=utf-8"),
            None,
        )
        .unwrap();
        assert_eq!(
            t,
            "Donn\u{e9}es prot\u{e9}g\u{e9}es et chiffr\u{e9}es \u{201c}toujours\u{201d}"
        );
        // Labelled ISO-8859-1, actually UTF-8.
        let t = text(
            "<p>Données protégées</p>".as_bytes(),
            Some("text/html; charset=iso-8859-1"),
            None,
        )
        .unwrap();
        assert_eq!(t, "Données protégées");
    }

    #[test]
    fn utf16_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "<p>Hi \u{e9}</p>".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(text(&bytes, Some("text/html"), None).unwrap(), "Hi \u{e9}");
    }

    #[test]
    fn media_kinds() {
        assert_eq!(
            media_kind(Some("text/html; charset=utf-8"), b""),
            MediaKind::Html
        );
        assert_eq!(media_kind(None, b"%PDF-1.7"), MediaKind::Pdf);
        assert_eq!(media_kind(None, b"<!DOCTYPE html><html>"), MediaKind::Html);
        assert_eq!(media_kind(Some("text/plain"), b"hello"), MediaKind::Text);
        assert_eq!(
            media_kind(Some("image/png"), b"\x89PNG\0\0"),
            MediaKind::Binary
        );
        assert!(text(b"\x89PNG\0", Some("image/png"), None).is_err());
    }
}

/// A page served with a success status that is not the document: an error page, a bot wall,
/// a redirect stub, or a JavaScript shell with no text of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageProblem {
    /// How to treat it: bot walls are `Blocked`, error pages `Transient`, stubs `Dead`.
    pub class: crate::verdict::FailureClass,
    /// One line for people.
    pub detail: String,
}

/// Phrases of bot walls and access denials, checked on short pages only.
const WALL_PHRASES: &[&str] = &[
    "just a moment...",
    "checking your browser",
    "attention required",
    "verify you are human",
    "verifying you are human",
    "are you a robot",
    "enable javascript and cookies to continue",
    "please complete the security check",
    "access denied",
    "you don't have permission to access",
    "request blocked",
    "request unsuccessful. incapsula",
    "pardon our interruption",
];

/// Phrases of CDN and application error pages, checked on short pages only.
const ERROR_PHRASES: &[&str] = &[
    "an error occurred while processing your request",
    "this page isn't available",
    "an unexpected error has occurred",
    "try reloading the page",
    "service unavailable",
    "502 bad gateway",
    "504 gateway timeout",
    "internal server error",
    "temporarily unavailable",
    "something went wrong",
    "error 503",
    "error 502",
];

/// Phrases of pages that only forward the reader elsewhere ("Redirecting…"). Such a short page
/// is a stub whatever came before it.
const REDIRECTING_PHRASES: &[&str] = &[
    "redirecting to",
    "redirecting...",
    "redirecting\u{2026}",
    "you are being redirected",
    "click here if you are not redirected",
];

/// Phrases that say a document moved. A page that says so is a stub only when it has also lost
/// most of its wording: a page that keeps its text and says one section moved is still the
/// document (its quote is then simply `missing`).
const MOVED_PHRASES: &[&str] = &["this page has moved", "has moved to", "page has been moved"];

/// Words a page with no earlier snapshot may have and still be a stub that says it moved.
const STUB_MAX_WORDS_WITHOUT_HISTORY: usize = 40;

/// Recognises pages that are not the document, so they are never judged as evidence
/// (`missing` because a CDN hiccuped would be crying wolf). `ex` is this page's whole-page
/// extraction; `previous_words` the word count of the last good snapshot of the same source,
/// when there is one. Pure; tuned to stay silent on real documents, however short.
pub fn page_problem(
    bytes: &[u8],
    ex: &Extracted,
    previous_words: Option<usize>,
) -> Option<PageProblem> {
    use crate::verdict::FailureClass;
    let words = ex.words;
    if words >= 400 {
        return None;
    }
    let lower = crate::evidence::normalise(&ex.text).to_lowercase();
    let quoted = |p: &str| {
        let i = lower.find(p).unwrap_or(0);
        let snippet: String = text_snippet(&lower, i, 80);
        snippet
    };
    if words < 200 {
        if let Some(p) = REDIRECTING_PHRASES.iter().find(|p| lower.contains(**p)) {
            return Some(PageProblem {
                class: FailureClass::Dead,
                detail: format!(
                    "the page is a redirect stub (\"{}\"); the document has probably moved",
                    quoted(p)
                ),
            });
        }
        if let Some(target) = meta_refresh(bytes) {
            return Some(PageProblem {
                class: FailureClass::Dead,
                detail: format!(
                    "the page only redirects (meta refresh to {target}); the document has probably moved"
                ),
            });
        }
        let lost_most = match previous_words {
            Some(before) => words.saturating_mul(4) < before,
            None => words <= STUB_MAX_WORDS_WITHOUT_HISTORY,
        };
        if lost_most && let Some(p) = MOVED_PHRASES.iter().find(|p| lower.contains(**p)) {
            let lost = match previous_words {
                Some(before) => format!("; {words} words left of {before}"),
                None => String::new(),
            };
            return Some(PageProblem {
                class: FailureClass::Dead,
                detail: format!(
                    "the page is a redirect stub (\"{}\"{lost}); the document has probably moved",
                    quoted(p)
                ),
            });
        }
    }
    if words < 300
        && let Some(p) = WALL_PHRASES.iter().find(|p| lower.contains(**p))
    {
        return Some(PageProblem {
            class: FailureClass::Blocked,
            detail: format!(
                "a bot wall or access denial was served instead of the page (\"{}\")",
                quoted(p)
            ),
        });
    }
    if let Some(p) = ERROR_PHRASES.iter().find(|p| lower.contains(**p)) {
        return Some(PageProblem {
            class: FailureClass::Transient,
            detail: format!(
                "an error page was served with a success status (\"{}\")",
                quoted(p)
            ),
        });
    }
    None
}

/// Whitespace-separated words of a text: `text.split_whitespace().count()`, a byte at a time.
/// Only lead bytes 0xC2, 0xE1, 0xE2 and 0xE3 can begin a non-ASCII whitespace character
/// (U+0085, U+00A0, U+1680, U+2000..U+205F, U+3000), so only those are decoded; every other
/// byte is a word's or continues the character before it.
pub fn word_count(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut words = 0;
    let mut in_word = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (space, len) = match b {
            b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => (true, 1),
            0xC2 | 0xE1..=0xE3 => {
                // A lead byte: `i` is a character boundary of a valid `str`.
                let c = text[i..].chars().next().unwrap_or('x');
                (c.is_whitespace(), c.len_utf8())
            }
            _ => (false, 1),
        };
        if !space && !in_word {
            words += 1;
        }
        in_word = !space;
        i += len;
    }
    words
}

/// Words below which a page that runs scripts may be an application shell.
const SHELL_MAX_WORDS: usize = 30;

/// What the few words of an application shell say while its scripts have not run.
const SHELL_PHRASES: &[&str] = &[
    "loading",
    "please wait",
    "enable javascript",
    "javascript is required",
    "javascript is disabled",
    "requires javascript",
    "javascript to run this app",
    "turn on javascript",
];

/// A page served as an application shell: scripts in the parsed document and no visible text
/// of its own (none at all, or only "Loading…"/"enable JavaScript" words), whatever its mount
/// point is called or however its attributes are quoted. Read plainly, it says nothing about
/// the evidence, so it is `blocked` with a hint to render it in a browser. A short real page
/// that happens to run a script is still the document. (Not applied to pages a browser has
/// already rendered.)
pub fn needs_javascript(ex: &Extracted) -> Option<PageProblem> {
    if ex.scripts == 0 {
        return None;
    }
    let words = ex.words;
    let shell = words == 0
        || (words < SHELL_MAX_WORDS && {
            let lower = crate::evidence::normalise(&ex.text).to_lowercase();
            SHELL_PHRASES.iter().any(|p| lower.contains(p))
        });
    shell.then(|| PageProblem {
        class: crate::verdict::FailureClass::Blocked,
        detail: format!(
            "the page has no text of its own without JavaScript ({words} word{}, {} script{}); set render = \"browser\" on this source",
            if words == 1 { "" } else { "s" },
            ex.scripts,
            if ex.scripts == 1 { "" } else { "s" }
        ),
    })
}

fn text_snippet(s: &str, at: usize, max: usize) -> String {
    let start = s[..at].rfind(['.', '\n']).map_or(0, |i| i + 1);
    s[start..]
        .trim()
        .chars()
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The target of `<meta http-equiv="refresh" content="0; url=...">` (any attribute quoting),
/// if any.
fn meta_refresh(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(16 * 1024)]).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(i) = rest.find("<meta") {
        rest = &rest[i + 5..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        let Some(eq) = tag.find("http-equiv") else {
            continue;
        };
        let value = tag[eq + 10..]
            .trim_start()
            .trim_start_matches('=')
            .trim_start()
            .trim_start_matches(['"', '\'']);
        if !value.starts_with("refresh") {
            continue;
        }
        let Some(url_at) = tag.find("url=") else {
            continue;
        };
        let target: String = tag[url_at + 4..]
            .trim_start_matches(['\'', '"'])
            .chars()
            .take_while(|c| !matches!(c, '"' | '\'' | ' ' | '>'))
            .collect();
        if !target.is_empty() {
            return Some(target);
        }
    }
    None
}

/// Every HTML snapshot of the replay corpus (Open Terms Archive, ODC-BY), with its path,
/// as stored.
#[cfg(test)]
pub(crate) fn corpus_html_pages() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay-corpus");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    /// The estimate with one `match` per tag counts as the list-comparing reference does, on
    /// every HTML snapshot of the replay corpus (Open Terms Archive) and on tag soup.
    #[test]
    fn nesting_estimate_agrees_with_the_reference() {
        let pages = corpus_html_pages();
        for (p, bytes) in &pages {
            let html = String::from_utf8_lossy(bytes);
            assert_eq!(
                nesting_estimate(&html),
                nesting_estimate_reference(&html),
                "{}",
                p.display()
            );
        }
        assert!(pages.len() > 50, "{} pages", pages.len());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn nesting_estimate_agrees_on_tag_soup(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "<div>", "</div>", "<DIV>", "<p>", "</P>", "<br/>", "<span ", ">", "/>", "<",
                "</", "<script>", "</script>", "<SCRIPT type=x>", "</scrIPT >", "<textarea>",
                "</textarea>", "<xmp>", "<optgroup>", "<colgroup>", "<captionx>", "<abcdefghi>",
                "</abcdefghi>", "<h1>", "</h1>", "text", " ", "<!-- c -->", "<td>", "<tbody>",
            ]),
            0..60,
        )) {
            let html: String = parts.concat();
            proptest::prop_assert_eq!(nesting_estimate(&html), nesting_estimate_reference(&html));
        }
    }

    #[test]
    fn nesting_estimate_counts_real_depth_only() {
        assert_eq!(nesting_estimate("<div><div><span>x</span></div></div>"), 3);
        // Optional end tags, void and self-closing elements, and script text do not count.
        let flat = "<ul>".to_string()
            + &"<li>item<p>para<br><img src=x><svg/>".repeat(5000)
            + "</ul><script>var s = '<div><div><div>';</script>";
        assert_eq!(nesting_estimate(&flat), 1);
        let deep = "<div>".repeat(20_000) + "x" + &"</div>".repeat(20_000);
        assert_eq!(nesting_estimate(&deep), 20_000);
        assert!(matches!(
            extract(deep.as_bytes(), Some("text/html"), None),
            Err(ExtractError::TooDeep(20_000))
        ));
    }
}

#[cfg(test)]
mod selector_tests {
    #[test]
    fn a_selector_never_reaches_into_a_template_or_script() {
        let ex = super::html_extract(
            "<template><p>Not on the page</p></template><p>On the page</p>",
            Some("p"),
        );
        assert_eq!(ex.text, "On the page");
    }
}
