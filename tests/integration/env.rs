//! A throwaway citewatch workspace: registry files, database and snapshots in a temp dir,
//! with helpers to run the pipeline (clock controlled) or the real binary.

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use citewatch::fetch::FetchConfig;
use citewatch::pipeline::{self, RunOptions, RunSummary};
use citewatch::registry::{self, Registry};
use citewatch::snapshot::SnapshotStore;
use citewatch::store::Store;
use citewatch::verdict::ConfirmPolicy;

pub const VOCAB: &str = r#"name = "Test registry"

[[grades]]
id = "yes_public"
symbol = "●"
label = "Yes, public"

[[grades]]
id = "no_evidence"
symbol = "○"
label = "No public evidence"

[[dimensions]]
id = "soc2"
label = "SOC 2"
question = "SOC 2?"
max_age_days = 180

[[dimensions]]
id = "iso"
label = "ISO 27001"
question = "ISO?"

[[dimensions]]
id = "dpa"
label = "DPA"
question = "DPA?"

[[dimensions]]
id = "hipaa"
label = "HIPAA"
question = "HIPAA?"
"#;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub registry: PathBuf,
    pub db: PathBuf,
    pub snapshots: PathBuf,
}

/// One source entry, as TOML lines under `[[cells.<dim>.sources]]`.
pub fn source(url: &str, extra: &str) -> String {
    format!("url = \"{url}\"\n{extra}")
}

/// An offering file with cells `(dimension, grade, [sources])`.
pub fn offering(id: &str, cells: &[(&str, &str, Vec<String>)]) -> String {
    let mut s = format!(
        "id = \"{id}\"\nname = \"{id}\"\ndeveloper = \"D\"\nplatform = \"P\"\ncategory = \"test\"\n"
    );
    for (dim, grade, sources) in cells {
        s.push_str(&format!("\n[cells.{dim}]\ngrade = \"{grade}\"\nconfidence = \"high\"\nverified = 2026-07-05\nsummary = \"cell {dim}\"\n"));
        for src in sources {
            s.push_str(&format!("\n[[cells.{dim}.sources]]\n{src}\n"));
        }
    }
    s
}

pub fn at(ts: &str) -> DateTime<Utc> {
    ts.parse().expect("RFC 3339 time")
}

impl Env {
    pub fn new(offerings: &[(&str, String)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        std::fs::create_dir_all(registry.join("offerings")).unwrap();
        std::fs::write(registry.join("registry.toml"), VOCAB).unwrap();
        let env = Env {
            db: dir.path().join("citewatch.db"),
            snapshots: dir.path().join("snapshots"),
            registry,
            dir,
        };
        for (id, text) in offerings {
            env.write_offering(id, text);
        }
        env
    }

    /// A workspace holding a copy of the bundled registry with every cited URL moved onto
    /// `site` (host and path kept in the path), so it can be run offline.
    pub fn bundled(site: &crate::site::Site) -> Env {
        let bundled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("registry");
        let env = Env::new(&[]);
        std::fs::copy(
            bundled.join("registry.toml"),
            env.registry.join("registry.toml"),
        )
        .unwrap();
        let base = site.url("/");
        for entry in std::fs::read_dir(bundled.join("offerings")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("url = \"https://", &format!("url = \"{base}"));
            std::fs::write(
                env.registry
                    .join("offerings")
                    .join(path.file_name().unwrap()),
                text,
            )
            .unwrap();
        }
        env
    }

    pub fn write_offering(&self, id: &str, text: &str) {
        std::fs::write(
            self.registry.join("offerings").join(format!("{id}.toml")),
            text,
        )
        .unwrap();
    }

    pub fn registry(&self) -> Registry {
        let p = registry::load(&self.registry).unwrap();
        assert!(!p.has_errors(), "{:#?}", p.problems);
        p.registry.unwrap()
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.db).await.unwrap()
    }

    pub fn snapshot_store(&self) -> SnapshotStore {
        SnapshotStore::new(&self.snapshots)
    }

    /// Options for a fast, loopback-only run at a fixed time.
    pub fn options(&self, now: DateTime<Utc>) -> RunOptions {
        RunOptions {
            scope: Default::default(),
            fetch: test_fetch_config(),
            confirm: ConfirmPolicy::default(),
            clock: Arc::new(move || now),
            deadline: pipeline::DEFAULT_RUN_DEADLINE,
            resume: true,
            progress: None,
            archive: Default::default(),
        }
    }

    /// Runs the pipeline once at `now`.
    pub async fn run_at(&self, now: &str) -> RunSummary {
        let store = self.store().await;
        let s = pipeline::run(
            &self.registry(),
            &store,
            &self.snapshot_store(),
            &self.options(at(now)),
        )
        .await
        .unwrap();
        store.close().await;
        s
    }

    /// Runs the real binary with this workspace's paths.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// Runs the real binary with this workspace's paths and extra environment variables.
    pub fn cli_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.command(args, vars).output().unwrap()
    }

    /// The real binary with this workspace's paths, not started yet.
    pub fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"));
        // Loopback only, whatever the test or a default says.
        cmd.env("CITEWATCH_LOOPBACK_ONLY", "1");
        cmd.envs(vars.iter().copied());
        cmd.args(args)
            .arg("--registry")
            .arg(&self.registry)
            .arg("--db")
            .arg(&self.db)
            .arg("--snapshots")
            .arg(&self.snapshots)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn");
        cmd
    }
}

pub fn test_fetch_config() -> FetchConfig {
    FetchConfig {
        rate: 200.0,
        concurrency: 8,
        // Loopback only: even a wrong test cannot reach beyond this machine.
        addresses: citewatch::fetch::guard::AddressPolicy::LoopbackOnly,
        timeout: Duration::from_secs(5),
        retries: 1,
        backoff: Duration::from_millis(10),
        ..FetchConfig::default()
    }
}

/// The exit code of a process that exited (a signal, such as a panic's abort, fails the test).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
