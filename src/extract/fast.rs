//! A fast path for the common, well-formed subset of HTML: one pass over the bytes that yields
//! the elements and text a tree walk would meet, in the same order, without building a tree.
//!
//! html5ever's tokenizer and tree builder are half of a first run's CPU, most of it spent
//! on tags and attributes one character at a time. Most real pages need none of the tree
//! builder's repairs: their tags nest, or close only in the ways the HTML standard implies
//! (an open `<p>` closed by the next block, an `<li>` by the next `<li>`). For those pages
//! this module produces the same stream of elements and text as the tree, several times
//! faster. Anything outside that subset — misnested formatting (the adoption agency),
//! text in a table (foster parenting), `<template>`, `<select>`, MathML, legacy entities
//! without a semicolon, a NUL byte, markup that breaks out of SVG, a tag or comment cut off
//! by the end of the file — makes it decline ([`parse`] returns `None`), and the page goes
//! through html5ever as before. Declining is always safe; a wrong stream is not, so the
//! rules here follow html5ever's tree builder (`tree_builder/rules.rs`) and every case
//! that is not modelled exactly declines. Debug builds extract every page both ways and
//! compare (see `html_extract`), and tests hold the two to each other on the replay corpus
//! and on generated tag soup.

use std::borrow::Cow;

/// One step of the walk: an element opens (with the attributes extraction reads), text,
/// or the innermost open element closes.
pub(super) enum Event<'a> {
    Open {
        name: Cow<'a, str>,
        attrs: u32,
    },
    Text(&'a str),
    /// A decoded character reference.
    Char(char),
    Close,
}

/// The attributes extraction reads, as written (the first of duplicates, as html5ever keeps).
#[derive(Default)]
pub(super) struct FastAttrs<'a> {
    pub id: Option<Cow<'a, str>>,
    pub class: Option<Cow<'a, str>>,
    pub role: Option<Cow<'a, str>>,
    pub style: Option<Cow<'a, str>>,
    pub alt: Option<Cow<'a, str>>,
    pub hidden: bool,
    pub aria_hidden: Option<Cow<'a, str>>,
    pub aria_modal: Option<Cow<'a, str>>,
    pub open: bool,
}

impl FastAttrs<'_> {
    fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.class.is_none()
            && self.role.is_none()
            && self.style.is_none()
            && self.alt.is_none()
            && !self.hidden
            && self.aria_hidden.is_none()
            && self.aria_modal.is_none()
            && !self.open
    }
}

/// A document read by the fast path.
pub(super) struct Document<'a> {
    pub events: Vec<Event<'a>>,
    /// Attributes of elements that have any extraction reads; `Event::Open::attrs` is an index
    /// into this plus one (0: none).
    pub attrs: Vec<FastAttrs<'a>>,
    /// `<script>` elements anywhere (as the tree's pre-pass counts them).
    pub scripts: usize,
    /// Whether any element is `<main>` or has `role="main"`.
    pub saw_main: bool,
}

/// Where the fast path declined: the line of this file (for tests and benchmarks that ask
/// why a page took the tree path).
pub(super) struct Decline(pub u32);

type Step<T = ()> = Result<T, Decline>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Initial,
    BeforeHtml,
    BeforeHead,
    InHead,
    AfterHead,
    InBody,
}

/// What the tokenizer reads after a start tag.
enum Content {
    Markup,
    /// RAWTEXT or script data: raw characters up to the matching end tag.
    Raw,
    /// RCDATA (`<title>`, `<textarea>`): characters with references decoded, up to the end tag.
    Rcdata,
}

struct Entry<'a> {
    name: Cow<'a, str>,
    /// In the SVG namespace.
    foreign: bool,
}

struct Tag<'a> {
    name: Cow<'a, str>,
    attrs: FastAttrs<'a>,
    self_closing: bool,
    /// A `color`, `face` or `size` attribute (breaks `<font>` out of SVG).
    font_breakout: bool,
    /// An `xlink:role` attribute, which on an SVG element the tree names `role`.
    xlink_role: bool,
}

/// Reads `html` through the fast path, or declines (`None`) when the page needs the tree
/// builder.
pub(super) fn parse(html: &str) -> Option<Document<'_>> {
    read(html).ok()
}

/// [`parse`], saying where it declined.
pub(super) fn read(html: &str) -> Result<Document<'_>, Decline> {
    let html = html.strip_prefix('\u{feff}').unwrap_or(html);
    if memchr::memchr(0, html.as_bytes()).is_some() {
        return Err(Decline(line!()));
    }
    let mut p = Parser {
        src: html,
        b: html.as_bytes(),
        pos: 0,
        mode: Mode::Initial,
        stack: Vec::with_capacity(64),
        form_open: false,
        ignore_lf: false,
        doc: Document {
            events: Vec::with_capacity(html.len() / 24),
            attrs: Vec::new(),
            scripts: 0,
            saw_main: false,
        },
    };
    p.run()?;
    Ok(p.doc)
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    mode: Mode,
    stack: Vec<Entry<'a>>,
    form_open: bool,
    /// Just after `<pre>` or `<listing>`: a newline that comes next is dropped.
    ignore_lf: bool,
    doc: Document<'a>,
}

fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn all_space(s: &str) -> bool {
    s.bytes().all(is_space)
}

/// html5ever's "special" elements (`tag_sets.rs`).
fn is_special(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "applet"
            | "area"
            | "article"
            | "aside"
            | "base"
            | "basefont"
            | "bgsound"
            | "blockquote"
            | "body"
            | "br"
            | "button"
            | "caption"
            | "center"
            | "col"
            | "colgroup"
            | "dd"
            | "details"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "embed"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "frame"
            | "frameset"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "iframe"
            | "img"
            | "input"
            | "isindex"
            | "li"
            | "link"
            | "listing"
            | "main"
            | "marquee"
            | "menu"
            | "meta"
            | "nav"
            | "noembed"
            | "noframes"
            | "noscript"
            | "object"
            | "ol"
            | "p"
            | "param"
            | "plaintext"
            | "pre"
            | "script"
            | "section"
            | "select"
            | "source"
            | "style"
            | "summary"
            | "table"
            | "tbody"
            | "td"
            | "template"
            | "textarea"
            | "tfoot"
            | "th"
            | "thead"
            | "title"
            | "tr"
            | "track"
            | "ul"
            | "wbr"
            | "xmp"
    )
}

/// Elements whose start tag closes an open `<p>` in button scope.
fn closes_p(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "menu"
            | "pre"
            | "listing"
    )
}

/// End tags handled by "generate implied end tags, then close" in html5ever's in-body rules.
fn closes_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "button"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "listing"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "pre"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "applet"
            | "marquee"
            | "object"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
    )
}

fn is_formatting(name: &str) -> bool {
    matches!(
        name,
        "a" | "b"
            | "big"
            | "code"
            | "em"
            | "font"
            | "i"
            | "nobr"
            | "s"
            | "small"
            | "strike"
            | "strong"
            | "tt"
            | "u"
    )
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "br"
            | "embed"
            | "img"
            | "keygen"
            | "wbr"
            | "input"
            | "param"
            | "source"
            | "track"
            | "base"
            | "basefont"
            | "bgsound"
            | "link"
            | "meta"
            | "hr"
    )
}

/// Start tags that leave SVG for HTML content (html5ever's foreign-content rules).
fn breaks_out_of_svg(name: &str) -> bool {
    matches!(
        name,
        "b" | "big"
            | "blockquote"
            | "body"
            | "br"
            | "center"
            | "code"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "em"
            | "embed"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "hr"
            | "i"
            | "img"
            | "li"
            | "listing"
            | "menu"
            | "meta"
            | "nobr"
            | "ol"
            | "p"
            | "pre"
            | "ruby"
            | "s"
            | "small"
            | "span"
            | "strong"
            | "strike"
            | "sub"
            | "sup"
            | "table"
            | "tt"
            | "u"
            | "ul"
            | "var"
    )
}

/// Scope boundaries of html5ever's default scope (the SVG integration points are never on
/// the stack below HTML content here: the fast path declines on markup inside them).
fn bounds_default_scope(name: &str) -> bool {
    matches!(
        name,
        "applet"
            | "caption"
            | "html"
            | "table"
            | "td"
            | "th"
            | "marquee"
            | "object"
            | "select"
            | "template"
    )
}

/// Elements "generate implied end tags" closes (those the fast path admits).
fn implied_end(name: &str) -> bool {
    matches!(name, "p" | "li" | "dd" | "dt" | "option" | "optgroup")
}

fn is_table_section(name: &str) -> bool {
    matches!(name, "tbody" | "thead" | "tfoot")
}

/// Elements whose current-node position means a table insertion mode (text other than
/// whitespace would be foster-parented).
fn is_table_context(name: &str) -> bool {
    matches!(name, "table" | "tbody" | "thead" | "tfoot" | "tr")
}

impl<'a> Parser<'a> {
    fn run(&mut self) -> Step {
        while self.pos < self.b.len() {
            let rest = &self.b[self.pos..];
            let Some(i) = memchr::memchr2(b'<', b'&', rest) else {
                let t = &self.src[self.pos..];
                self.pos = self.b.len();
                self.text(t)?;
                break;
            };
            if i > 0 {
                let t = &self.src[self.pos..self.pos + i];
                self.pos += i;
                self.text(t)?;
            }
            if self.b[self.pos] == b'&' {
                self.pos += 1;
                match self.char_ref()? {
                    Some((c1, c2)) => {
                        self.chars(c1, c2)?;
                    }
                    None => self.text("&")?,
                }
            } else {
                self.markup()?;
            }
        }
        // End of file: html5ever creates the implied elements a document without body
        // content lacks, and leaves the open ones open; the walk closes them.
        self.ensure_body()?;
        while !self.stack.is_empty() {
            self.pop();
        }
        Ok(())
    }

    // ---- tree side -------------------------------------------------------------------

    fn current(&self) -> Option<&Entry<'a>> {
        self.stack.last()
    }

    fn current_is(&self, name: &str) -> bool {
        self.current().is_some_and(|e| !e.foreign && e.name == name)
    }

    fn in_foreign(&self) -> bool {
        self.current().is_some_and(|e| e.foreign)
    }

    fn push(&mut self, name: Cow<'a, str>, attrs: FastAttrs<'a>, foreign: bool) {
        self.note(&name, &attrs);
        let attrs = if attrs.is_empty() {
            0
        } else {
            self.doc.attrs.push(attrs);
            self.doc.attrs.len() as u32
        };
        self.doc.events.push(Event::Open {
            name: name.clone(),
            attrs,
        });
        self.stack.push(Entry { name, foreign });
    }

    /// An element that is opened and closed at once (void elements, self-closing SVG).
    fn push_pop(&mut self, name: Cow<'a, str>, attrs: FastAttrs<'a>, foreign: bool) {
        self.push(name, attrs, foreign);
        self.pop();
    }

    fn pop(&mut self) {
        self.stack.pop();
        self.doc.events.push(Event::Close);
    }

    /// The tree's pre-pass facts: scripts and a `main` anywhere.
    fn note(&mut self, name: &str, attrs: &FastAttrs<'_>) {
        // As the tree's pre-pass reads them: a script's role is not looked at.
        match name {
            "script" => self.doc.scripts += 1,
            "main" => self.doc.saw_main = true,
            _ => {
                if attrs.role.as_deref().is_some_and(|r| r.trim() == "main") {
                    self.doc.saw_main = true;
                }
            }
        }
    }

    fn text(&mut self, t: &'a str) -> Step {
        let mut t = t;
        if std::mem::take(&mut self.ignore_lf) {
            t = t
                .strip_prefix("\r\n")
                .or_else(|| t.strip_prefix(['\n', '\r']))
                .unwrap_or(t);
        }
        if t.is_empty() {
            return Ok(());
        }
        if self.mode != Mode::InBody {
            // Leading whitespace stays where it is (dropped, or in the head or the root:
            // nothing a walk writes); the rest opens the body, as html5ever splits it.
            t = t.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
            if t.is_empty() {
                return Ok(());
            }
            self.ensure_body()?;
        }
        if let Some(cur) = self.current()
            && !cur.foreign
            && is_table_context(&cur.name)
            && !all_space(t)
        {
            return Err(Decline(line!())); // foster parenting
        }
        self.doc.events.push(Event::Text(t));
        Ok(())
    }

    fn chars(&mut self, c1: char, c2: Option<char>) -> Step {
        if std::mem::take(&mut self.ignore_lf) && c1 == '\n' {
            return Ok(()); // `&#10;` right after <pre> is dropped like a newline
        }
        if self.mode != Mode::InBody {
            self.ensure_body()?;
        }
        if self
            .current()
            .is_some_and(|e| !e.foreign && is_table_context(&e.name))
        {
            return Err(Decline(line!()));
        }
        self.doc.events.push(Event::Char(c1));
        if let Some(c2) = c2 {
            self.doc.events.push(Event::Char(c2));
        }
        Ok(())
    }

    /// The implied `<html>`, `<head>` and `<body>` before content that belongs in the body.
    fn ensure_body(&mut self) -> Step {
        loop {
            match self.mode {
                Mode::Initial => self.mode = Mode::BeforeHtml,
                Mode::BeforeHtml => {
                    self.push(Cow::Borrowed("html"), FastAttrs::default(), false);
                    self.mode = Mode::BeforeHead;
                }
                Mode::BeforeHead => {
                    self.push(Cow::Borrowed("head"), FastAttrs::default(), false);
                    self.mode = Mode::InHead;
                }
                Mode::InHead => {
                    if !self.current_is("head") {
                        return Err(Decline(line!()));
                    }
                    self.pop();
                    self.mode = Mode::AfterHead;
                }
                Mode::AfterHead => {
                    self.push(Cow::Borrowed("body"), FastAttrs::default(), false);
                    self.mode = Mode::InBody;
                }
                Mode::InBody => return Ok(()),
            }
        }
    }

    /// Pops the elements "generate implied end tags" would (those before `except`), then
    /// the current node if it is `name`; declines when it is not.
    fn close_with_implied(&mut self, name: &str) -> Step {
        let mut n = self.stack.len();
        while n > 0 {
            let e = &self.stack[n - 1];
            if e.foreign {
                return Err(Decline(line!()));
            }
            if e.name == name {
                break;
            }
            if !implied_end(&e.name) {
                return Err(Decline(line!()));
            }
            n -= 1;
        }
        if n == 0 {
            return Err(Decline(line!()));
        }
        while self.stack.len() >= n {
            self.pop();
        }
        Ok(())
    }

    /// "Close a p element" when one is in button scope; declines unless it is the current
    /// node (other elements would have to close implicitly).
    fn close_p_in_button_scope(&mut self) -> Step {
        for (i, e) in self.stack.iter().enumerate().rev() {
            if e.foreign {
                return Err(Decline(line!()));
            }
            if e.name == "p" {
                if i + 1 == self.stack.len() {
                    self.pop();
                    return Ok(());
                }
                return Err(Decline(line!()));
            }
            if bounds_default_scope(&e.name) || e.name == "button" {
                return Ok(());
            }
        }
        Ok(())
    }

    fn in_default_scope(&self, name: &str) -> bool {
        for e in self.stack.iter().rev() {
            if e.name == name {
                return true;
            }
            if bounds_default_scope(&e.name) {
                return false;
            }
        }
        false
    }

    /// Whether the nearest table part above the current node is a cell.
    fn in_cell(&self) -> bool {
        for e in self.stack.iter().rev() {
            match &*e.name {
                "td" | "th" => return true,
                "table" | "tbody" | "thead" | "tfoot" | "tr" => return false,
                _ => {}
            }
        }
        false
    }

    /// Closes the current cell ("close the cell"): implied end tags, then the `<td>`/`<th>`.
    fn close_cell(&mut self) -> Step {
        let mut n = self.stack.len();
        while n > 0 && implied_end(&self.stack[n - 1].name) && !self.stack[n - 1].foreign {
            n -= 1;
        }
        if n == 0 || !matches!(&*self.stack[n - 1].name, "td" | "th") {
            return Err(Decline(line!()));
        }
        while self.stack.len() >= n {
            self.pop();
        }
        Ok(())
    }

    fn start_tag(&mut self, tag: Tag<'a>) -> Step<Content> {
        if self.in_foreign() {
            return self.foreign_start_tag(tag);
        }
        loop {
            match self.mode {
                Mode::Initial => self.mode = Mode::BeforeHtml,
                Mode::BeforeHtml => {
                    if tag.name == "html" {
                        self.push(tag.name, tag.attrs, false);
                        self.mode = Mode::BeforeHead;
                        return Ok(Content::Markup);
                    }
                    self.push(Cow::Borrowed("html"), FastAttrs::default(), false);
                    self.mode = Mode::BeforeHead;
                }
                Mode::BeforeHead => match &*tag.name {
                    "html" => return Err(Decline(line!())),
                    "head" => {
                        self.push(tag.name, tag.attrs, false);
                        self.mode = Mode::InHead;
                        return Ok(Content::Markup);
                    }
                    _ => {
                        self.push(Cow::Borrowed("head"), FastAttrs::default(), false);
                        self.mode = Mode::InHead;
                    }
                },
                Mode::InHead => match &*tag.name {
                    "html" | "head" | "template" => return Err(Decline(line!())),
                    "base" | "basefont" | "bgsound" | "link" | "meta" => {
                        self.push_pop(tag.name, tag.attrs, false);
                        return Ok(Content::Markup);
                    }
                    "title" => {
                        self.push(tag.name, tag.attrs, false);
                        return Ok(Content::Rcdata);
                    }
                    "noframes" | "style" | "noscript" | "script" => {
                        self.push(tag.name, tag.attrs, false);
                        return Ok(Content::Raw);
                    }
                    _ => {
                        if !self.current_is("head") {
                            return Err(Decline(line!()));
                        }
                        self.pop();
                        self.mode = Mode::AfterHead;
                    }
                },
                Mode::AfterHead => match &*tag.name {
                    "body" => {
                        self.push(tag.name, tag.attrs, false);
                        self.mode = Mode::InBody;
                        return Ok(Content::Markup);
                    }
                    "html" | "frameset" | "head" | "base" | "basefont" | "bgsound" | "link"
                    | "meta" | "noframes" | "script" | "style" | "template" | "title" => {
                        return Err(Decline(line!()));
                    }
                    _ => {
                        self.push(Cow::Borrowed("body"), FastAttrs::default(), false);
                        self.mode = Mode::InBody;
                    }
                },
                Mode::InBody => return self.body_start_tag(tag),
            }
        }
    }

    fn foreign_start_tag(&mut self, tag: Tag<'a>) -> Step<Content> {
        let cur = self.current().map(|e| e.name.as_ref()).unwrap_or("");
        // An HTML integration point takes HTML start tags; not modelled.
        if matches!(cur, "foreignobject" | "desc" | "title") {
            return Err(Decline(line!()));
        }
        if breaks_out_of_svg(&tag.name)
            || (tag.name == "font" && tag.font_breakout)
            || tag.xlink_role
        {
            return Err(Decline(line!()));
        }
        if tag.self_closing {
            self.push_pop(tag.name, tag.attrs, true);
        } else {
            self.push(tag.name, tag.attrs, true);
        }
        Ok(Content::Markup)
    }

    fn body_start_tag(&mut self, tag: Tag<'a>) -> Step<Content> {
        let name: &str = &tag.name;
        // Table insertion modes: the current node is a table part.
        if let Some(cur) = self.current()
            && is_table_context(&cur.name)
        {
            let cur: &str = &cur.name;
            match (cur, name) {
                ("table", "tbody" | "thead" | "tfoot") | ("tbody" | "thead" | "tfoot", "tr") => {
                    self.push(tag.name, tag.attrs, false);
                }
                ("table", "tr") => {
                    self.push(Cow::Borrowed("tbody"), FastAttrs::default(), false);
                    self.push(tag.name, tag.attrs, false);
                }
                ("tr", "td" | "th") => self.push(tag.name, tag.attrs, false),
                ("tr", "tr") => {
                    self.pop();
                    self.push(tag.name, tag.attrs, false);
                }
                (_, "script" | "style") => {
                    self.push(tag.name, tag.attrs, false);
                    return Ok(Content::Raw);
                }
                _ => return Err(Decline(line!())),
            }
            return Ok(Content::Markup);
        }
        match name {
            "td" | "th" | "tr" => {
                if !self.in_cell() {
                    return Err(Decline(line!()));
                }
                self.close_cell()?;
                return self.body_start_tag(tag);
            }
            "tbody" | "thead" | "tfoot" | "caption" | "col" | "colgroup" | "frame" | "head"
            | "html" | "body" | "frameset" | "template" | "plaintext" | "nobr" | "image" | "rb"
            | "rtc" | "rp" | "rt" | "math" => {
                return Err(Decline(line!()));
            }
            _ => {}
        }
        if closes_p(name) {
            self.close_p_in_button_scope()?;
            let pre = matches!(name, "pre" | "listing");
            self.push(tag.name, tag.attrs, false);
            self.ignore_lf = pre;
            return Ok(Content::Markup);
        }
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.close_p_in_button_scope()?;
                if self
                    .current()
                    .is_some_and(|e| matches!(&*e.name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6"))
                {
                    return Err(Decline(line!()));
                }
                self.push(tag.name, tag.attrs, false);
            }
            "form" => {
                if self.form_open {
                    return Err(Decline(line!()));
                }
                self.close_p_in_button_scope()?;
                self.push(tag.name, tag.attrs, false);
                self.form_open = true;
            }
            "li" | "dd" | "dt" => {
                self.close_list_item(name == "li")?;
                self.close_p_in_button_scope()?;
                self.push(tag.name, tag.attrs, false);
            }
            // html5ever reads <select> content as body content (the customizable-select
            // rules): options close each other, a nested <select> closes the outer one.
            "select" => {
                if self.in_default_scope("select") {
                    return Err(Decline(line!()));
                }
                self.push(tag.name, tag.attrs, false);
            }
            "option" | "optgroup" => {
                if self.in_default_scope("select") {
                    let group = name == "optgroup";
                    while let Some(e) = self.current() {
                        let n: &str = &e.name;
                        if e.foreign
                            || !(matches!(n, "option" | "p" | "li" | "dd" | "dt")
                                || (group && n == "optgroup"))
                        {
                            break;
                        }
                        self.pop();
                    }
                } else if self.current_is("option") {
                    self.pop();
                }
                self.push(tag.name, tag.attrs, false);
            }
            "button" => {
                if self.in_default_scope("button") {
                    return Err(Decline(line!()));
                }
                self.push(tag.name, tag.attrs, false);
            }
            "a" => {
                if self.stack.iter().any(|e| e.name == "a") {
                    return Err(Decline(line!())); // misnested <a>: the adoption agency
                }
                self.push(tag.name, tag.attrs, false);
            }
            _ if is_formatting(name) => {
                // Three of a kind: the list of active formatting elements forgets the first.
                if self.stack.iter().filter(|e| e.name == name).count() >= 2 {
                    return Err(Decline(line!()));
                }
                self.push(tag.name, tag.attrs, false);
            }
            "table" => {
                // In quirks mode a <table> does not close an open <p>; either way, decline.
                if self.p_in_button_scope() {
                    return Err(Decline(line!()));
                }
                self.push(tag.name, tag.attrs, false);
            }
            "hr" | "input" if self.in_default_scope("select") => return Err(Decline(line!())),
            "hr" => {
                self.close_p_in_button_scope()?;
                self.push_pop(tag.name, tag.attrs, false);
            }
            _ if is_void(name) => self.push_pop(tag.name, tag.attrs, false),
            "textarea" | "title" => {
                self.push(tag.name, tag.attrs, false);
                return Ok(Content::Rcdata);
            }
            "xmp" => {
                self.close_p_in_button_scope()?;
                self.push(tag.name, tag.attrs, false);
                return Ok(Content::Raw);
            }
            "iframe" | "noembed" | "noscript" | "noframes" | "style" | "script" => {
                self.push(tag.name, tag.attrs, false);
                return Ok(Content::Raw);
            }
            "svg" => {
                if tag.xlink_role {
                    return Err(Decline(line!()));
                }
                if tag.self_closing {
                    self.push_pop(tag.name, tag.attrs, true);
                } else {
                    self.push(tag.name, tag.attrs, true);
                }
            }
            _ => self.push(tag.name, tag.attrs, false),
        }
        Ok(Content::Markup)
    }

    fn p_in_button_scope(&self) -> bool {
        for e in self.stack.iter().rev() {
            if e.name == "p" {
                return true;
            }
            if bounds_default_scope(&e.name) || e.name == "button" {
                return false;
            }
        }
        false
    }

    /// The `<li>` (or `<dd>`/`<dt>`) start tag's search for an open item to close.
    fn close_list_item(&mut self, list: bool) -> Step {
        let mut to_close = None;
        for e in self.stack.iter().rev() {
            let n: &str = &e.name;
            let hit = if list {
                n == "li"
            } else {
                n == "dd" || n == "dt"
            };
            if hit {
                to_close = Some(if list {
                    "li"
                } else if n == "dd" {
                    "dd"
                } else {
                    "dt"
                });
                break;
            }
            if is_special(n) && !matches!(n, "address" | "div" | "p") {
                break;
            }
        }
        match to_close {
            Some(name) => self.close_with_implied(name),
            None => Ok(()),
        }
    }

    fn end_tag(&mut self, name: &str) -> Step {
        if self.in_foreign() {
            // html5ever closes up to an element of that name; the current one is modelled.
            if name == "br" || name == "p" {
                return Err(Decline(line!()));
            }
            let cur = &self.stack[self.stack.len() - 1];
            if cur.name.eq_ignore_ascii_case(name) {
                self.pop();
                return Ok(());
            }
            return Err(Decline(line!()));
        }
        match self.mode {
            Mode::InHead if name == "head" => {
                if !self.current_is("head") {
                    return Err(Decline(line!()));
                }
                self.pop();
                self.mode = Mode::AfterHead;
                return Ok(());
            }
            Mode::InBody => {}
            _ => return Err(Decline(line!())),
        }
        if let Some(cur) = self.current()
            && is_table_context(&cur.name)
        {
            let cur: &str = &cur.name;
            match (cur, name) {
                ("tr", "tr") | ("tbody" | "thead" | "tfoot", _) if cur == name => self.pop(),
                ("table", "table") => self.pop(),
                ("tbody" | "thead" | "tfoot", "table") => {
                    self.pop();
                    if !self.current_is("table") {
                        return Err(Decline(line!()));
                    }
                    self.pop();
                }
                ("tr", "table") => {
                    self.pop();
                    if !self.current().is_some_and(|e| is_table_section(&e.name)) {
                        return Err(Decline(line!()));
                    }
                    self.pop();
                    if !self.current_is("table") {
                        return Err(Decline(line!()));
                    }
                    self.pop();
                }
                (_, "body" | "html") => {}
                _ => return Err(Decline(line!())),
            }
            return Ok(());
        }
        match name {
            // The stack stays as it is; what follows is still read as body content.
            "body" | "html" => Ok(()),
            "table" if self.in_cell() => {
                // "Close the cell", then the row, section and table as in the row.
                self.close_cell()?;
                self.end_tag(name)
            }
            "br" | "template" | "caption" | "col" | "colgroup" | "table" | "tbody" | "thead"
            | "tfoot" => Err(Decline(line!())),
            "p" | "li" | "dd" | "dt" | "select" => self.close_with_implied(name),
            "form" => {
                if !self.form_open {
                    return Err(Decline(line!()));
                }
                self.close_with_implied("form")?;
                self.form_open = false;
                Ok(())
            }
            "td" | "th" => {
                self.close_with_implied(name)?;
                if !self.current_is("tr") {
                    return Err(Decline(line!()));
                }
                Ok(())
            }
            "tr" => {
                if self.in_cell() {
                    self.close_cell()?;
                }
                if !self.current_is("tr") {
                    return Err(Decline(line!()));
                }
                self.pop();
                Ok(())
            }
            _ if closes_block(name) => self.close_with_implied(name),
            _ => {
                // Formatting elements (the adoption agency) and any other element: only the
                // current node is modelled.
                if self.current_is(name) {
                    self.pop();
                    Ok(())
                } else {
                    Err(Decline(line!()))
                }
            }
        }
    }

    // ---- token side ------------------------------------------------------------------

    fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    /// At `<`.
    fn markup(&mut self) -> Step {
        self.ignore_lf = false;
        let rest = self.rest();
        let next = rest.get(1).copied().ok_or(Decline(line!()))?;
        if next.is_ascii_alphabetic() {
            self.pos += 1;
            let tag = self.tag()?;
            let name = tag.name.clone();
            match self.start_tag(tag)? {
                Content::Markup => {}
                Content::Raw => self.raw_text(&name, false)?,
                Content::Rcdata => self.raw_text(&name, true)?,
            }
            Ok(())
        } else if next == b'/' {
            match rest.get(2) {
                Some(c) if c.is_ascii_alphabetic() => {
                    self.pos += 2;
                    let tag = self.tag()?;
                    self.end_tag(&tag.name)
                }
                _ => Err(Decline(line!())),
            }
        } else if next == b'!' {
            if rest.starts_with(b"<!--") {
                self.comment()
            } else if rest.len() >= 9 && rest[2..9].eq_ignore_ascii_case(b"doctype") {
                // A doctype anywhere but at the start is ignored; at the start it only sets
                // quirks mode, which matters for a <table> in an open <p> (declined).
                let end = memchr::memchr(b'>', rest).ok_or(Decline(line!()))?;
                self.pos += end + 1;
                if self.mode == Mode::Initial {
                    self.mode = Mode::BeforeHtml;
                }
                Ok(())
            } else if rest.starts_with(b"<![CDATA[") && self.in_foreign() {
                let end = memchr::memmem::find(rest, b"]]>").ok_or(Decline(line!()))?;
                // Text inside SVG (never page text; kept so the steps match the tree's).
                let t = &self.src[self.pos + 9..self.pos + end];
                self.pos += end + 3;
                if !t.is_empty() {
                    self.doc.events.push(Event::Text(t));
                }
                Ok(())
            } else {
                Err(Decline(line!()))
            }
        } else if next == b'?' {
            Err(Decline(line!()))
        } else {
            // A `<` that starts no tag is text.
            self.pos += 1;
            self.text("<")
        }
    }

    fn comment(&mut self) -> Step {
        let body = &self.rest()[4..];
        if body.starts_with(b">") || body.starts_with(b"->") {
            return Err(Decline(line!())); // abrupt closing
        }
        let end = memchr::memmem::find(body, b"-->");
        let bang = memchr::memmem::find(body, b"--!>");
        let close = match (end, bang) {
            (Some(e), Some(b)) if b < e => b + 4,
            (Some(e), _) => e + 3,
            (None, Some(b)) => b + 4,
            (None, None) => return Err(Decline(line!())),
        };
        self.pos += 4 + close;
        Ok(())
    }

    /// Characters up to the element's end tag (`</name` then whitespace, `/` or `>`, in any
    /// case), then that end tag.
    fn raw_text(&mut self, name: &str, rcdata: bool) -> Step {
        let start = self.pos;
        let mut from = start;
        let end = loop {
            let i = memchr::memmem::find(&self.b[from..], b"</").ok_or(Decline(line!()))? + from;
            let after = &self.b[i + 2..];
            if after.len() > name.len()
                && after[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && matches!(
                    after[name.len()],
                    b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>'
                )
            {
                break i;
            }
            from = i + 2;
        };
        let mut start = start;
        if name == "textarea" {
            // html5ever drops a newline right after <textarea>.
            if self.b[start..end].starts_with(b"\r\n") {
                start += 2;
            } else if matches!(self.b.get(start), Some(b'\n' | b'\r')) && start < end {
                start += 1;
            } else if self.b[start..end].starts_with(b"&#") {
                return Err(Decline(line!())); // `&#10;` would be dropped too
            }
        }
        let content = &self.src[start..end];
        if name == "script" && content.contains("<!--") {
            return Err(Decline(line!())); // script data escape states
        }
        if rcdata {
            self.pos = start;
            while self.pos < end {
                let rest = &self.b[self.pos..end];
                match memchr::memchr(b'&', rest) {
                    None => {
                        let t = &self.src[self.pos..end];
                        self.pos = end;
                        self.doc.events.push(Event::Text(t));
                    }
                    Some(i) => {
                        if i > 0 {
                            self.doc
                                .events
                                .push(Event::Text(&self.src[self.pos..self.pos + i]));
                        }
                        self.pos += i + 1;
                        match self.char_ref()? {
                            Some((c1, c2)) => {
                                self.doc.events.push(Event::Char(c1));
                                if let Some(c2) = c2 {
                                    self.doc.events.push(Event::Char(c2));
                                }
                            }
                            None => self.doc.events.push(Event::Text("&")),
                        }
                        if self.pos > end {
                            return Err(Decline(line!()));
                        }
                    }
                }
            }
        } else if !content.is_empty() {
            self.doc.events.push(Event::Text(content));
        }
        // The end tag itself.
        self.pos = end + 2;
        let tag = self.tag()?;
        if tag.name != name || !self.current_is(name) {
            return Err(Decline(line!()));
        }
        self.pop();
        Ok(())
    }

    /// A tag from its name (just after `<` or `</`) to its `>`.
    fn tag(&mut self) -> Step<Tag<'a>> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        while i < b.len() && !matches!(b[i], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>') {
            i += 1;
        }
        if i >= b.len() {
            return Err(Decline(line!()));
        }
        let raw = &self.src[start..i];
        let name = if raw.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(raw.to_ascii_lowercase())
        } else {
            Cow::Borrowed(raw)
        };
        let mut tag = Tag {
            name,
            attrs: FastAttrs::default(),
            self_closing: false,
            font_breakout: false,
            xlink_role: false,
        };
        loop {
            // Before an attribute name.
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            let c = *b.get(i).ok_or(Decline(line!()))?;
            match c {
                b'>' => {
                    self.pos = i + 1;
                    return Ok(tag);
                }
                b'/' => {
                    if b.get(i + 1) == Some(&b'>') {
                        tag.self_closing = true;
                        self.pos = i + 2;
                        return Ok(tag);
                    }
                    i += 1;
                    continue;
                }
                b'=' => return Err(Decline(line!())),
                _ => {}
            }
            // Attribute name.
            let n0 = i;
            i += 1;
            while i < b.len()
                && !matches!(
                    b[i],
                    b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>' | b'='
                )
            {
                i += 1;
            }
            if i >= b.len() {
                return Err(Decline(line!()));
            }
            let attr_name = &self.src[n0..i];
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            let mut value: Option<(usize, usize)> = None;
            if b.get(i) == Some(&b'=') {
                i += 1;
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                let c = *b.get(i).ok_or(Decline(line!()))?;
                match c {
                    b'"' | b'\'' => {
                        let close = memchr::memchr(c, &b[i + 1..]).ok_or(Decline(line!()))?;
                        value = Some((i + 1, i + 1 + close));
                        i = i + 1 + close + 1;
                        // After a quoted value anything may follow (a missing space is
                        // only a parse error).
                    }
                    b'>' => {
                        value = Some((i, i));
                    }
                    _ => {
                        let v0 = i;
                        while i < b.len()
                            && !matches!(b[i], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'>')
                        {
                            i += 1;
                        }
                        if i >= b.len() {
                            return Err(Decline(line!()));
                        }
                        value = Some((v0, i));
                    }
                }
            }
            // Of duplicate attributes the first counts: a slot already filled stays.
            let key = attr_name;
            let lower = |s: &str, want: &str| s.eq_ignore_ascii_case(want);
            let slot: Option<&mut Option<Cow<'a, str>>> = if lower(key, "id") {
                Some(&mut tag.attrs.id)
            } else if lower(key, "class") {
                Some(&mut tag.attrs.class)
            } else if lower(key, "role") {
                Some(&mut tag.attrs.role)
            } else if lower(key, "style") {
                Some(&mut tag.attrs.style)
            } else if lower(key, "alt") {
                Some(&mut tag.attrs.alt)
            } else if lower(key, "aria-hidden") {
                Some(&mut tag.attrs.aria_hidden)
            } else if lower(key, "aria-modal") {
                Some(&mut tag.attrs.aria_modal)
            } else {
                if lower(key, "hidden") {
                    tag.attrs.hidden = true;
                } else if lower(key, "open") {
                    tag.attrs.open = true;
                } else if lower(key, "color") || lower(key, "face") || lower(key, "size") {
                    tag.font_breakout = true;
                } else if lower(key, "xlink:role") {
                    tag.xlink_role = true;
                }
                None
            };
            if let Some(slot) = slot
                && slot.is_none()
            {
                let v = match value {
                    None => Cow::Borrowed(""),
                    Some((v0, v1)) => self.attr_value(v0, v1)?,
                };
                *slot = Some(v);
            }
        }
    }

    /// An attribute value with its character references decoded.
    fn attr_value(&self, v0: usize, v1: usize) -> Step<Cow<'a, str>> {
        let raw = &self.src[v0..v1];
        if memchr::memchr(b'&', raw.as_bytes()).is_none() {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut sub = Parser {
            src: &self.src[..v1],
            b: &self.b[..v1],
            pos: v0,
            mode: Mode::InBody,
            stack: Vec::new(),
            form_open: false,
            ignore_lf: false,
            doc: Document {
                events: Vec::new(),
                attrs: Vec::new(),
                scripts: 0,
                saw_main: false,
            },
        };
        while sub.pos < v1 {
            let rest = &sub.b[sub.pos..v1];
            match memchr::memchr(b'&', rest) {
                None => {
                    out.push_str(&sub.src[sub.pos..v1]);
                    sub.pos = v1;
                }
                Some(i) => {
                    out.push_str(&sub.src[sub.pos..sub.pos + i]);
                    sub.pos += i + 1;
                    match sub.char_ref()? {
                        Some((c1, c2)) => {
                            out.push(c1);
                            if let Some(c2) = c2 {
                                out.push(c2);
                            }
                        }
                        None => out.push('&'),
                    }
                }
            }
        }
        Ok(Cow::Owned(out))
    }

    /// Just after `&`: the character(s) a reference stands for, `None` when the `&` is
    /// literal text, or a decline for the cases html5ever treats in ways not modelled here
    /// (legacy names without `;`, invalid numbers). The same in text and in attribute
    /// values: in both, `&` before anything but a letter, digit or `#` (a closing quote
    /// included) is literal.
    fn char_ref(&mut self) -> Step<Option<(char, Option<char>)>> {
        let b = self.b;
        let Some(&c) = b.get(self.pos) else {
            return Ok(None); // `&` at the end of the file is text
        };
        if c == b'#' {
            let mut i = self.pos + 1;
            let hex = matches!(b.get(i), Some(b'x' | b'X'));
            if hex {
                i += 1;
            }
            let d0 = i;
            let mut n: u32 = 0;
            while i < b.len() && i - d0 < 8 {
                let d = match (b[i] as char).to_digit(if hex { 16 } else { 10 }) {
                    Some(d) => d,
                    None => break,
                };
                n = n * if hex { 16 } else { 10 } + d;
                i += 1;
            }
            if i == d0 || b.get(i) != Some(&b';') {
                return Err(Decline(line!()));
            }
            let ok = matches!(n, 0x09 | 0x0A | 0x0C | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFDCF | 0xFDF0..=0x10FFFF)
                && (n & 0xFFFE) != 0xFFFE;
            let ch = char::from_u32(n).filter(|_| ok).ok_or(Decline(line!()))?;
            self.pos = i + 1;
            return Ok(Some((ch, None)));
        }
        if !c.is_ascii_alphanumeric() {
            return Ok(None);
        }
        let mut i = self.pos;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if b.get(i) != Some(&b';') {
            return Err(Decline(line!()));
        }
        let key = &self.src[self.pos..=i];
        match html5ever::data::NAMED_ENTITIES.get(key) {
            Some(&(c1, c2)) if c1 != 0 => {
                let c1 = char::from_u32(c1).ok_or(Decline(line!()))?;
                let c2 = if c2 == 0 {
                    None
                } else {
                    Some(char::from_u32(c2).ok_or(Decline(line!()))?)
                };
                self.pos = i + 1;
                Ok(Some((c1, c2)))
            }
            _ => Err(Decline(line!())),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The fast path is held to html5ever's tree: on every page of the replay corpus (Open
    //! Terms Archive snapshots, ODC-BY 1.0), on hand-written cases at the edges of the subset
    //! it reads, and on generated tag soup. A page may be declined; a page read must give
    //! exactly the tree's text, wording, lines, script count and word count.

    use super::super::{html_extract_tree, takes_fast_path};
    use super::*;

    fn fast(html: &str) -> Option<crate::extract::Extracted> {
        parse(html).map(|d| super::super::extract_events(&d))
    }

    /// A walk step in comparable form: element (name and the attributes extraction reads),
    /// close, or a run of text.
    #[derive(Debug, PartialEq)]
    enum Step {
        Open(String, String),
        Close,
        Text(String),
    }

    fn push_text(out: &mut Vec<Step>, t: &str) {
        if let Some(Step::Text(prev)) = out.last_mut() {
            prev.push_str(t);
        } else {
            out.push(Step::Text(t.to_string()));
        }
    }

    /// The tree html5ever builds, as walk steps. Whitespace-only text directly in `<html>`
    /// or `<head>` is left out (the fast path drops it; nothing writes it).
    fn tree_steps(html: &str) -> Vec<Step> {
        use ego_tree::iter::Edge;
        let doc = scraper::Html::parse_document(html);
        let mut out = Vec::new();
        for edge in doc.tree.root().traverse() {
            match edge {
                Edge::Open(n) => match n.value() {
                    // SVG names are case-adjusted by the tree (`clipPath`); the walk reads
                    // none of them.
                    scraper::Node::Element(e) => out.push(Step::Open(
                        e.name().to_ascii_lowercase(),
                        format!("{:?}", super::super::Attrs::of(e)),
                    )),
                    scraper::Node::Text(t) => {
                        let parent = n
                            .parent()
                            .and_then(|p| p.value().as_element().map(|e| e.name()));
                        if matches!(parent, Some("html" | "head")) && super::all_space(t) {
                            continue;
                        }
                        push_text(&mut out, t)
                    }
                    _ => {}
                },
                Edge::Close(n) => {
                    if n.value().as_element().is_some() {
                        out.push(Step::Close);
                    }
                }
            }
        }
        out
    }

    fn fast_steps(doc: &Document<'_>) -> Vec<Step> {
        let mut out = Vec::new();
        for ev in &doc.events {
            match ev {
                Event::Open { name, attrs } => {
                    let a = match *attrs {
                        0 => super::super::Attrs::default(),
                        i => super::super::Attrs::of_fast(&doc.attrs[i as usize - 1]),
                    };
                    out.push(Step::Open(name.to_string(), format!("{a:?}")));
                }
                Event::Text(t) => push_text(&mut out, t),
                Event::Char(c) => push_text(&mut out, c.encode_utf8(&mut [0; 4])),
                Event::Close => out.push(Step::Close),
            }
        }
        out
    }

    /// Declined, or the tree's walk steps and result exactly (CR LF and CR read as LF, as
    /// html5ever's input stream reads them).
    fn agrees(html: &str) -> bool {
        let normal = html.replace("\r\n", "\n").replace('\r', "\n");
        let Some(doc) = parse(&normal) else {
            return parse(html).is_none() || fast(html) == Some(html_extract_tree(html, None));
        };
        let same_steps = fast_steps(&doc) == tree_steps(&normal);
        if !same_steps {
            eprintln!(
                "fast: {:?}\ntree: {:?}",
                fast_steps(&doc),
                tree_steps(&normal)
            );
        }
        same_steps && fast(html) == Some(html_extract_tree(html, None))
    }

    fn corpus() -> Vec<(std::path::PathBuf, String)> {
        crate::extract::corpus_html_pages()
            .into_iter()
            .map(|(p, bytes)| {
                let html = crate::extract::decode(
                    &bytes,
                    Some("text/html"),
                    crate::extract::MediaKind::Html,
                );
                (p, html)
            })
            .collect()
    }

    #[test]
    fn every_corpus_page_read_fast_reads_as_the_tree_reads_it() {
        let pages = corpus();
        let mut read = 0;
        for (path, html) in &pages {
            if let Some(ex) = fast(html) {
                read += 1;
                let normal = html.replace("\r\n", "\n").replace('\r', "\n");
                let doc = parse(&normal).expect("read with CR LF as LF too");
                let (f, t) = (fast_steps(&doc), tree_steps(&normal));
                if f != t {
                    let i = f
                        .iter()
                        .zip(&t)
                        .position(|(a, b)| a != b)
                        .unwrap_or(f.len().min(t.len()));
                    panic!(
                        "walk steps differ at {i}: {}\nfast: {:?}\ntree: {:?}",
                        path.display(),
                        &f[i.saturating_sub(3)..(i + 3).min(f.len())],
                        &t[i.saturating_sub(3)..(i + 3).min(t.len())]
                    );
                }
                let tree = html_extract_tree(html, None);
                assert!(ex.text == tree.text, "text differs: {}", path.display());
                assert!(ex.wording == tree.wording, "wording: {}", path.display());
                assert_eq!(ex.lines, tree.lines, "{}", path.display());
                assert_eq!(ex.scripts, tree.scripts, "{}", path.display());
                assert_eq!(ex.words, tree.words, "{}", path.display());
            }
        }
        assert!(pages.len() > 50, "{} pages", pages.len());
        // The fast path must carry most real pages, or it is dead code with a cost.
        assert!(
            read * 3 >= pages.len() * 2,
            "only {read} of {} corpus pages take the fast path",
            pages.len()
        );
    }

    #[test]
    fn common_shapes_are_read_and_agree() {
        let cases = [
            "<!DOCTYPE html><html><head><title>T &amp; C</title></head><body><p>One</p></body></html>",
            "<p>first<p>second<div>third</div>",
            "<ul><li>a<li>b<li><p>c</ul><dl><dt>x<dd>y<dt>z</dl>",
            "<table><tr><td>a<td>b</tr><tr><th>c</table>after",
            "<table>\n<tbody>\n<tr><td><p>cell</td></tr>\n</tbody></table>",
            "<p>Icon <svg viewBox='0 0 1 1'><title>arrow</title><path d='M0'/><style>.a{}</style></svg> text</p>",
            "<svg><![CDATA[ x < y ]]><g><circle r=1 /></g></svg>tail",
            "<select><option>One<option selected>Two<optgroup label=g><option>Three</select> next",
            "<textarea>\nline one\nline two</textarea>and<textarea>\r\nx</textarea>",
            "<b>Type</b>II and <i>in</i><em>word</em> &nbsp;&#65;&#x42;&copy; &ne; AT &amp; T &",
            "<details><summary>More</summary><p>hidden until opened</p></details>",
            "<main><nav>menu</nav><h1>Title</h1><p>body</p><footer>foot</footer></main>",
            "<div hidden>h</div><div class='sr-only'>s</div><div style='display: none'>n</div>",
            "<div aria-hidden=true>a</div><div role=dialog aria-modal=true>d</div>",
            "<div id=cookie-banner>c</div><p class=\"x&amp;y hidden\">p</p>",
            "<img alt='  picture  '><area alt=map><br>line<br/>next",
            "<script>if (a < b) { x = '</scr' + 'ipt>'; }</script>text<style>p{}</style>",
            "<noscript><p>enable js</p></noscript><iframe src=x><p>no</p></iframe><xmp><b></xmp>",
            "<body><p>x</p></body></html>\n<script>late()</script>",
            "<P CLASS=Hidden>upper</P><DIV ID=a ID=b>dup</DIV>",
            "text before any tag<p>and after",
            "<form><input type=hidden><button>Go</button></form>",
            "<a href='?a=1&b=2'>link</a> <a href=/x>two</a>",
            "<h2>Section<small>s</small></h2><pre>\n  code  </pre>",
            "<div>a<!-- c --->b<!-- d --!>c</div>",
            "<p>x < y and 3<4</p>",
            "<span role=main>m</span><script role=main></script>",
        ];
        for html in cases {
            assert!(
                takes_fast_path(html),
                "declined at line {:?}: {html}",
                read(html).err().map(|d| d.0)
            );
            assert!(agrees(html), "differs from the tree: {html}");
        }
    }

    #[test]
    fn what_needs_the_tree_builder_is_declined_or_agrees() {
        let cases = [
            // The adoption agency, foster parenting, reconstruction.
            "<b><p>x</b>y</p>",
            "<p><b>x</p>y",
            "<a>1<a>2</a>",
            "<table>stray<tr><td>a</table>",
            "<table><div>x</div></table>",
            "<table><td>a</table>",
            "<p><table><tr><td>x</table>",
            "<b><b><b><b>deep</b></b></b></b>x",
            // Implicit closes the fast path does not model.
            "<li><span>a<li>b",
            "<h1>a<h2>b</h2>",
            "<p><span>x</div>",
            "<div><span>x</div>y",
            "</p>x",
            "</br>x",
            "<span>x</div>",
            // Modes and elements outside the subset.
            "<template><p>t</p></template>x",
            "<head><template></template></head>x",
            "<body><body class=hidden>x",
            "<html><html class=x>",
            "<math><mi>x</mi></math>y",
            "<svg><p>breakout</p></svg>",
            "<svg><foreignObject><div>x</div></foreignObject></svg>",
            "<svg><font color=red>x</font></svg>",
            "<svg xlink:role=main></svg>",
            "<select><select>x</select>",
            "<select><input></select>",
            "<plaintext><p>x",
            "<frameset></frameset>",
            "<nobr>a<nobr>b",
            "<ruby>a<rt>b</ruby>",
            "<image alt=x>",
            // Tokenizer corners.
            "<p>a\0b</p>",
            "a &notit; b",
            "a &amp b",
            "a &#0; &#x80; &#xD800; &#x110000; &#12",
            "<!-->x",
            "<!--->x",
            "<!-- open",
            "<?xml?>x",
            "</>x",
            "</ x>y",
            "<div class=\"unterminated>x",
            "<script><!--<script></script>x</script>y",
            "<title>never closed",
            "x<",
            "&",
            "<div =x>y</div>",
            "<![CDATA[x]]>y",
        ];
        for html in cases {
            assert!(agrees(html), "differs from the tree: {html}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn generated_tag_soup_is_declined_or_read_as_the_tree_reads_it(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "<p>", "</p>", "<div>", "</div>", "<span>", "</span>", "<b>", "</b>", "<i>",
                "</i>", "<a href=x>", "</a>", "<ul>", "</ul>", "<li>", "</li>", "<dl>", "<dt>",
                "<dd>", "</dl>", "<h1>", "</h1>", "<h2>", "</h2>", "<table>", "</table>",
                "<tbody>", "</tbody>", "<tr>", "</tr>", "<td>", "</td>", "<th>", "</th>",
                "<svg>", "</svg>", "<path d=x/>", "<title>", "</title>", "<g>", "</g>",
                "<select>", "</select>", "<option>", "</option>", "<optgroup>",
                "<script>x<y</script>", "<style>a{}</style>", "<textarea>\nt</textarea>",
                "<br>", "<img alt=pic>", "<hr>", "<input>", "<details>", "</details>",
                "<summary>", "</summary>", "<details open>", "<main>", "</main>", "<nav>",
                "</nav>", "<header>", "</header>", "<footer>", "</footer>", "<form>",
                "</form>", "<button>", "</button>", "<pre>", "</pre>", "<noscript>x</noscript>",
                "<template>", "</template>", "<head>", "</head>", "<body>", "</body>",
                "<html>", "</html>", "<!DOCTYPE html>", "<!-- c -->", "<!-->", "<![CDATA[c]]>",
                "<div hidden>", "<div class=hidden>", "<div role=main>", "<div aria-hidden=true>",
                "<div style='display:none'>", "<div id=cookie-banner>", "<section>",
                "</section>", "<em>", "</em>", "<strong>", "</strong>", "<code>", "</code>",
                "word", " ", "\n", "\r\n", "Type", "II", "&amp;", "&nbsp;", "&#65;", "&bogus;",
                "& ", "<", ">", "x&y", "\u{a0}", "é",
            ]), 0..40)
        ) {
            let html: String = parts.concat();
            proptest::prop_assert!(agrees(&html), "differs from the tree: {:?}", html);
        }
    }
}
