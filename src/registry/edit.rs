//! Edits of an offering file that settle a queue item (`citewatch queue accept`).
//!
//! Pure: text in, text out. Edits go through `toml_edit`, so the file keeps its formatting,
//! comments and order; only the values that must change are replaced (keeping the comments
//! around them). A citation is found by its identity (dimension, url, quote); when it is not
//! there as expected — the file changed, or uses a layout this does not edit — nothing is
//! changed and the reason is returned.

use chrono::NaiveDate;
use toml_edit::{DocumentMut, Item, Table, Value};

/// The obvious fix for a queue item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// The quote becomes the variant now on the page.
    Quote(String),
    /// The source's URL becomes the permanent redirect's target.
    Url(String),
    /// Only the cell's `verified` date moves (the evidence was re-checked as it stands).
    Reverified,
}

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file is not valid TOML.
    #[error("not valid TOML: {0}")]
    Toml(String),
    /// The cell or the citation is not where the queue item says.
    #[error("{0}")]
    NotFound(String),
}

/// Applies `fix` to the citation (`dimension`, `url`, `quote`) of an offering file and sets its
/// cell's `verified` to `today`. Returns the new text.
pub fn apply(
    text: &str,
    dimension: &str,
    url: &str,
    quote: Option<&str>,
    fix: &Fix,
    today: NaiveDate,
) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Toml(e.message().to_string()))?;
    let cell = doc
        .get_mut("cells")
        .and_then(Item::as_table_like_mut)
        .and_then(|cells| cells.get_mut(dimension))
        .and_then(Item::as_table_mut)
        .ok_or_else(|| EditError::NotFound(format!("no table [cells.{dimension}]")))?;
    if !matches!(fix, Fix::Reverified) {
        let sources = cell
            .get_mut("sources")
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| {
                EditError::NotFound(format!("no [[cells.{dimension}.sources]] entries"))
            })?;
        let source: &mut Table = sources
            .iter_mut()
            .find(|t| {
                t.get("url").and_then(Item::as_str) == Some(url)
                    && t.get("quote").and_then(Item::as_str) == quote
            })
            .ok_or_else(|| {
                EditError::NotFound(format!(
                    "`cells.{dimension}` no longer cites {url} with that quote (the file changed?)"
                ))
            })?;
        match fix {
            Fix::Quote(q) => replace(source, "quote", Value::from(q.as_str()))?,
            Fix::Url(u) => replace(source, "url", Value::from(u.as_str()))?,
            Fix::Reverified => {}
        }
    }
    let date: toml_edit::Datetime = today
        .to_string()
        .parse()
        .map_err(|_| EditError::Toml("bad date".into()))?;
    match cell.get_mut("verified") {
        Some(item) => set_keeping_decor(item, Value::from(date)),
        None => {
            cell.insert("verified", toml_edit::value(date));
        }
    }
    Ok(doc.to_string())
}

fn replace(table: &mut Table, key: &str, value: Value) -> Result<(), EditError> {
    let item = table
        .get_mut(key)
        .ok_or_else(|| EditError::NotFound(format!("no `{key}` to replace")))?;
    set_keeping_decor(item, value);
    Ok(())
}

/// Replaces a value, keeping the whitespace and comment around it.
fn set_keeping_decor(item: &mut Item, mut value: Value) {
    if let Some(old) = item.as_value() {
        *value.decor_mut() = old.decor().clone();
    }
    *item = Item::Value(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# Acme, as served by Acme
id = "acme"   # the file stem
name = "Acme"

[cells.soc2]
grade = "yes_public"
verified = 2026-07-05  # last human check
summary = "x"

# The help-center article.
[[cells.soc2.sources]]
url = "https://a.example/old"
quote = "complies with SOC 2 Type II"  # verbatim

[[cells.soc2.sources]]
url = "https://b.example/"
"#;

    fn day() -> NaiveDate {
        "2026-11-26".parse().unwrap()
    }

    #[test]
    fn a_quote_fix_touches_only_its_lines() {
        let out = apply(
            FILE,
            "soc2",
            "https://a.example/old",
            Some("complies with SOC 2 Type II"),
            &Fix::Quote("complies with SOC 2 Type 2".into()),
            day(),
        )
        .unwrap();
        let expected = FILE
            .replace(
                "verified = 2026-07-05  # last human check",
                "verified = 2026-11-26  # last human check",
            )
            .replace(
                "quote = \"complies with SOC 2 Type II\"  # verbatim",
                "quote = \"complies with SOC 2 Type 2\"  # verbatim",
            );
        assert_eq!(out, expected);
    }

    #[test]
    fn a_url_fix_and_a_missing_citation() {
        let out = apply(
            FILE,
            "soc2",
            "https://b.example/",
            None,
            &Fix::Url("https://b.example/new".into()),
            day(),
        )
        .unwrap();
        assert!(out.contains("url = \"https://b.example/new\"\n"), "{out}");
        assert_eq!(
            apply(
                FILE,
                "soc2",
                "https://c.example/",
                None,
                &Fix::Reverified,
                day()
            ),
            Ok(FILE.replace("2026-07-05", "2026-11-26"))
        );
        assert!(matches!(
            apply(
                FILE,
                "soc2",
                "https://c.example/",
                None,
                &Fix::Url("x".into()),
                day()
            ),
            Err(EditError::NotFound(_))
        ));
        assert!(matches!(
            apply(
                FILE,
                "iso",
                "https://a.example/old",
                None,
                &Fix::Reverified,
                day()
            ),
            Err(EditError::NotFound(_))
        ));
    }
}
