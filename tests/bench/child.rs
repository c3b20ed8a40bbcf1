//! What one child process cost, exact from `wait4`'s rusage (shared by the benchmarks).

use std::time::Instant;

/// One child's cost.
pub struct Cost {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Wall time, seconds.
    pub wall: f64,
    /// CPU time, user + system, seconds.
    pub cpu: f64,
    /// Peak RSS, MB.
    pub rss_mb: f64,
}

/// Runs `cmd` to completion (its stdio as the caller set it) and returns what it cost.
pub fn run(mut cmd: std::process::Command) -> Cost {
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let wall = started.elapsed().as_secs_f64();
    // Reaped by wait4 already: the handle must not wait again.
    std::mem::forget(child);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cost {
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        wall,
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
        rss_mb: usage.ru_maxrss as f64 / 1024.0,
    }
}
