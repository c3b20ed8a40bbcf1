//! Looking at pages as a reader would: a file opened in headless Chromium (Debian's package)
//! at a given width, scripts of the test evaluated through DevTools (the pages themselves run
//! none: their CSP forbids it), and a screenshot. Local files only; no network.

use std::path::Path;
use std::time::Duration;

/// Opens `page` at `width` px, evaluates each of `probes` (JavaScript expressions), saves a
/// screenshot of the first screen to `shot`, and returns the probes' values. None when Chromium
/// is not installed (then the caller skips, except under CI).
pub async fn look(
    page: &Path,
    width: u32,
    shot: &Path,
    probes: &[&str],
) -> Option<Vec<serde_json::Value>> {
    use chromiumoxide::handler::viewport::Viewport;
    use chromiumoxide::page::ScreenshotParams;
    use futures_util::StreamExt;
    let Some(exe) = citewatch::fetch::browser::chromium_path() else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium");
        eprintln!("chromium not installed: skipping the browser check");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let config = chromiumoxide::BrowserConfig::builder()
        .chrome_executable(exe)
        .no_sandbox()
        .user_data_dir(profile.path())
        .viewport(Viewport {
            width,
            height: 900,
            device_scale_factor: Some(1.0),
            emulating_mobile: width < 600,
            is_landscape: false,
            has_touch: width < 600,
        })
        .window_size(width, 900)
        .args([
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .build()
        .unwrap();
    let (mut browser, mut handler) = chromiumoxide::Browser::launch(config).await.unwrap();
    let h = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let tab = browser
        .new_page(format!("file://{}", page.display()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut values = Vec::new();
    for js in probes {
        let v = tab
            .evaluate(*js)
            .await
            .unwrap_or_else(|e| panic!("{js}: {e}"))
            .into_value::<serde_json::Value>()
            .unwrap_or(serde_json::Value::Null);
        values.push(v);
    }
    tab.save_screenshot(ScreenshotParams::builder().full_page(false).build(), shot)
        .await
        .unwrap();
    let _ = browser.close().await;
    let _ = browser.wait().await;
    h.abort();
    if let Ok(dir) = std::env::var("CITEWATCH_KEEP_SCREENSHOT") {
        std::fs::copy(shot, Path::new(&dir).join(shot.file_name().unwrap())).unwrap();
    }
    Some(values)
}

/// The page body is wider than the window (it scrolls sideways).
pub const OVERFLOWS: &str = "document.documentElement.scrollWidth > window.innerWidth + 1";

/// Hostile text in the page ran as code.
pub const PWNED: &str = "document.body.hasAttribute('data-pwned') || document.title === 'pwned'";
