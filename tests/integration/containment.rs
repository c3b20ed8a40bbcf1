//! Browser containment: everything Chromium sends goes through citewatch's egress proxy and
//! its polite, guarded decisions. Every server here is on 127.0.0.1; the "outside" origin is a
//! loopback port the test's egress policy does not admit, and counts every connection made to
//! it, whatever the protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use citewatch::fetch::browser::{LaunchOptions, PageBudget, RenderLimits, Renderer};
use citewatch::fetch::guard::AddressPolicy;
use citewatch::fetch::proxy::Egress;

use crate::site::{Page, Site};

use crate::browser::have_chromium;

/// A TCP listener that counts connections and answers nothing useful.
async fn outside() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nOUTSIDE-BYTES")
                    .await;
            });
        }
    });
    (addr, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reaches_an_origin_outside_the_policy() {
    if !have_chromium() {
        return;
    }
    let site = Site::start().await;
    let (out, connections) = outside().await;
    let page = format!(
        "<html><body><main><p id=\"t\">Inside text.</p>\
         <img src=\"http://{out}/pixel.png\">\
         <iframe src=\"http://{out}/frame\"></iframe></main>\
         <script>\
         try {{ new WebSocket('ws://{out}/socket'); }} catch (e) {{}}\
         fetch('http://{out}/data').then(r => r.text()).then(t => {{ document.getElementById('t').textContent += t; }}).catch(() => {{}});\
         fetch('/inside.txt').then(r => r.text()).then(t => {{ document.getElementById('t').textContent += ' ' + t; }});\
         </script></body></html>"
    );
    site.set("/page", Page::html(&page));
    site.set(
        "/inside.txt",
        Page::bytes("text/plain", b"Fetched inside.".to_vec()),
    );
    let r = Renderer::launch_with(LaunchOptions {
        egress: Egress {
            policy: AddressPolicy::LoopbackOnly,
            only: Some(vec![site.addr]),
        },
        user_agent: citewatch::fetch::default_user_agent(),
        budget: PageBudget::default(),
    })
    .await
    .unwrap();
    let rendered = r
        .render(&site.url("/page").parse().unwrap(), RenderLimits::default())
        .await
        .unwrap();
    // Give anything that slipped out time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.close().await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "no connection to the outside origin: {:#?}",
        rendered.refused
    );
    assert!(
        rendered.html.contains("Inside text. Fetched inside."),
        "{}",
        rendered.html
    );
    assert!(!rendered.html.contains("OUTSIDE-BYTES"));
    let refused = rendered.refused.join("\n");
    assert!(
        refused.contains(&format!("{out}/data")),
        "the fetch: {refused}"
    );
    assert!(
        refused.contains(&format!("{out}/frame")),
        "the iframe: {refused}"
    );
    // WebSocket handshakes are not paused by the Fetch domain: the proxy refuses them.
    assert!(
        refused.contains(&format!("proxy: 127.0.0.1:{}", out.port())),
        "the WebSocket, at the proxy: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subrequests_honour_robots_txt_the_rate_and_the_user_agent() {
    if !have_chromium() {
        return;
    }
    use crate::env::{Env, offering, source};
    let site = Site::start().await;
    site.set(
        "/robots.txt",
        Page::bytes(
            "text/plain",
            b"User-agent: *\nDisallow: /private/\n".to_vec(),
        ),
    );
    site.set(
        "/app",
        Page::html(
            "<html><body><main><p id=\"o\">Loading…</p></main><script>\
             const parts = ['/p/1.txt', '/p/2.txt', '/p/3.txt', '/private/secret.txt'];\
             Promise.all(parts.map(p => fetch(p).then(r => r.ok ? r.text() : '').catch(() => '')))\
               .then(ts => { document.getElementById('o').textContent = ts.join(' '); });\
             </script></body></html>",
        ),
    );
    for i in 1..=3 {
        site.set(
            &format!("/p/{i}.txt"),
            Page::bytes("text/plain", format!("part{i}").into_bytes()),
        );
    }
    site.set(
        "/private/secret.txt",
        Page::bytes("text/plain", b"SECRET".to_vec()),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(
                    &site.url("/app"),
                    "quote = \"part1 part2 part3\"\nrender = \"browser\"",
                )],
            )],
        ),
    )]);
    let store = env.store().await;
    let mut opts = env.options(crate::env::at("2026-08-01T00:00:00Z"));
    opts.fetch.rate = 4.0;
    let s = citewatch::pipeline::run(&env.registry(), &store, &env.snapshot_store(), &opts)
        .await
        .unwrap();
    store.close().await;
    assert_eq!(s.citations, 1);
    assert_eq!(
        site.hits("/private/secret.txt"),
        0,
        "disallowed by robots.txt: not sent"
    );
    // Every request to the origin, the page's own included, is paced at 4 per second.
    let mut times: Vec<Instant> = ["/app", "/p/1.txt", "/p/2.txt", "/p/3.txt"]
        .iter()
        .flat_map(|p| site.times(p))
        .collect();
    times.sort();
    assert_eq!(times.len(), 4, "each once");
    // (Arrival times: the pace is kept where requests leave; a hop through Chromium and the
    // proxy adds some jitter, never a burst.)
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(150),
            "requests {gap:?} apart at --rate 4"
        );
    }
    assert!(
        times[3] - times[0] >= Duration::from_millis(700),
        "{:?}",
        times[3] - times[0]
    );
    for p in ["/app", "/p/1.txt", "/p/2.txt", "/p/3.txt"] {
        assert_eq!(
            site.last_header(p, "user-agent").as_deref(),
            Some(citewatch::fetch::default_user_agent().as_str()),
            "{p}"
        );
    }
}

/// Processes whose command line names a browser profile of citewatch process `pid`.
fn browsers_of(pid: u32) -> Vec<String> {
    let needle = format!("citewatch-chromium-{pid}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_leaves_no_browser_behind() {
    if !have_chromium() {
        return;
    }
    use crate::env::{Env, code, offering, source, stderr};
    let site = Site::start().await;
    // A page that never settles: the run is inside the render for 20 s.
    site.set(
        "/busy",
        Page::html("<html><body><main><p>Busy.</p></main><script>setInterval(() => fetch('/tick?' + Date.now()), 100);</script></body></html>"),
    );
    site.set("/tick", Page::bytes("text/plain", b"tick".to_vec()));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(
                    &site.url("/busy"),
                    "quote = \"Busy\"\nrender = \"browser\"",
                )],
            )],
        ),
    )]);
    let mut child = env
        .command(&["run", "--allow-private", "--rate", "100"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    while site.hits("/tick") < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the render never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !browsers_of(pid).is_empty(),
        "the browser runs under its profile"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let left = browsers_of(pid);
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "Chromium outlived its citewatch: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its profile is left behind; the next run that starts a browser removes it.
    let stale = |pid: u32| {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("citewatch-chromium-{pid}-"))
            })
            .count()
    };
    assert_eq!(stale(pid), 1, "the killed run's profile");
    site.set("/busy", Page::html("<p>Busy no more.</p>"));
    let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stale(pid), 0, "cleaned up by the next run");
}
