//! Integration tests: real HTTP servers on 127.0.0.1 (port 0), the real pipeline and binary.
//! Nothing here sends a packet beyond loopback.

mod archive;
mod browser;
mod check;
mod chrome;
mod containment;
mod env;
mod fetch;
mod gate;
mod hostile;
mod invariant;
mod notify;
mod ops;
mod properties;
mod publish;
mod regressions;
mod replay;
mod review;
mod robots_conformance;
mod run;
mod site;
mod warc;
