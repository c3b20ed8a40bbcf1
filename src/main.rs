//! The `citewatch` binary: all behaviour lives in the library (see `citewatch::cli`).

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    citewatch::cli::main()
}

/// glibc gives each thread that allocates its own arena, up to eight per core, and each keeps
/// the memory freed into it. A run's threads (runtime workers, up to 32 blocking threads,
/// SQLite's) then hold tens of MB of fragments: at 100,000 citations, peak RSS 146.5 MB with
/// the default and 124.0 MB with two arenas, and less CPU (the `scale` benchmark). Set before
/// any thread starts; an explicit `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
