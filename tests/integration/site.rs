//! A fixture website on 127.0.0.1 (port 0) whose pages tests change between runs.
//!
//! Every request is counted per path, so tests can assert what was (not) fetched. Pages with an
//! ETag answer a matching `If-None-Match` with 304, like a real server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};

/// One page the site serves.
#[derive(Clone, Debug)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body one byte at a time with this pause between bytes (a slow-drip server).
    pub drip: Option<std::time::Duration>,
}

impl Page {
    /// A 200 HTML page.
    pub fn html(body: &str) -> Page {
        Page {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
            drip: None,
        }
    }

    /// An empty response with this status.
    pub fn status(status: u16) -> Page {
        Page {
            status,
            headers: vec![],
            body: vec![],
            drip: None,
        }
    }

    /// A page with these raw bytes and Content-Type.
    pub fn bytes(content_type: &str, body: Vec<u8>) -> Page {
        Page {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body,
            drip: None,
        }
    }

    /// A redirect.
    pub fn redirect(status: u16, location: &str) -> Page {
        Page {
            status,
            headers: vec![("location".into(), location.into())],
            body: vec![],
            drip: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Page {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Default)]
struct State {
    pages: HashMap<String, Page>,
    /// Responses served in order before falling back to `pages`.
    queued: HashMap<String, std::collections::VecDeque<Page>>,
    /// When each request arrived, per path.
    times: HashMap<String, Vec<std::time::Instant>>,
    hits: HashMap<String, usize>,
    /// Request headers of the latest request per path.
    last_headers: HashMap<String, HeaderMap>,
}

/// A running fixture site.
pub struct Site {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Site {
    /// Starts the site on 127.0.0.1 with an OS-chosen port.
    pub async fn start() -> Site {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let st = st.clone();
            async move { serve(&st, req) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Site { addr, state }
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Serves `page` at `path` from now on.
    pub fn set(&self, path: &str, page: Page) {
        self.state.lock().unwrap().pages.insert(path.into(), page);
    }

    /// Serves these responses, in order, before the page set with [`Site::set`].
    pub fn queue(&self, path: &str, pages: Vec<Page>) {
        self.state
            .lock()
            .unwrap()
            .queued
            .insert(path.into(), pages.into());
    }

    /// Arrival times of the requests for `path`.
    pub fn times(&self, path: &str) -> Vec<std::time::Instant> {
        self.state
            .lock()
            .unwrap()
            .times
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_hits(&self) -> usize {
        self.state.lock().unwrap().hits.values().sum()
    }

    /// A header of the latest request for `path`.
    pub fn last_header(&self, path: &str, name: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.last_headers
            .get(path)?
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

fn serve(state: &Mutex<State>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let mut s = state.lock().unwrap();
    *s.hits.entry(path.clone()).or_default() += 1;
    s.times
        .entry(path.clone())
        .or_default()
        .push(std::time::Instant::now());
    s.last_headers.insert(path.clone(), req.headers().clone());
    let queued = s.queued.get_mut(&path).and_then(|q| q.pop_front());
    let Some(page) = queued.or_else(|| s.pages.get(&path).cloned()) else {
        return Response::builder()
            .status(404)
            .body(Body::from("not found"))
            .unwrap();
    };
    let etag = page
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.clone());
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    if let Some(etag) = etag.filter(|e| inm == Some(e.as_str())) {
        return Response::builder()
            .status(304)
            .header("etag", etag)
            .body(Body::empty())
            .unwrap();
    }
    let mut resp = Response::builder().status(StatusCode::from_u16(page.status).unwrap());
    for (k, v) in &page.headers {
        resp = resp.header(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match page.drip {
        None => resp.body(Body::from(page.body)).unwrap(),
        Some(pause) => {
            let bytes = page.body;
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let bytes = bytes.clone();
                async move {
                    if i >= bytes.len() {
                        return None;
                    }
                    tokio::time::sleep(pause).await;
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(
                            &bytes[i..i + 1],
                        )),
                        i + 1,
                    ))
                }
            });
            resp.body(Body::from_stream(stream)).unwrap()
        }
    }
}
