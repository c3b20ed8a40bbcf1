//! The scheduled worker: runs a job on a cron schedule until told to stop.
//!
//! The loop owns only timing and shutdown; the job (a pipeline run) is passed in. Time comes
//! from the injected clock and waits are tokio sleeps, so tests drive whole days of schedule
//! under paused time. On shutdown the loop stops waiting at once; a run in progress is
//! dropped, which abandons fetches in flight while everything already committed stays.

use std::future::Future;

use chrono::{DateTime, Local, Utc};

use crate::pipeline::Clock;

/// Which clock a schedule's fields are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Coordinated Universal Time (the default: a schedule means the same on every machine).
    Utc,
    /// The machine's local time zone.
    Local,
}

/// A parsed cron schedule (5 fields, or 6 with seconds first).
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    zone: Zone,
    text: String,
}

impl Schedule {
    /// Parses a cron expression such as `0 3 * * *`.
    pub fn parse(expr: &str, zone: Zone) -> Result<Schedule, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| format!("invalid cron expression `{expr}`: {e}"))?;
        Ok(Schedule {
            cron,
            zone,
            text: expr.to_string(),
        })
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Utc => self.cron.find_next_occurrence(&t, false).ok(),
            Zone::Local => self
                .cron
                .find_next_occurrence(&t.with_timezone(&Local), false)
                .ok()
                .map(|l| l.with_timezone(&Utc)),
        }
    }

    /// The expression and its zone, for logs.
    pub fn describe(&self) -> String {
        format!(
            "`{}` ({})",
            self.text,
            if self.zone == Zone::Utc {
                "UTC"
            } else {
                "local time"
            }
        )
    }
}

/// Runs `job` at every scheduled time until `shutdown` completes. Returns how many runs
/// finished. `announce` is told each next run time (the daemon logs it).
pub async fn run_on_schedule<J, F, S>(
    schedule: &Schedule,
    clock: &Clock,
    shutdown: S,
    mut announce: impl FnMut(DateTime<Utc>),
    mut job: J,
) -> usize
where
    J: FnMut(DateTime<Utc>) -> F,
    F: Future<Output = ()>,
    S: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut runs = 0;
    loop {
        let now = clock();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(schedule = %schedule.describe(), "the schedule has no further run time");
            return runs;
        };
        announce(next);
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => return runs,
        }
        tokio::select! {
            _ = job(next) => runs += 1,
            _ = &mut shutdown => {
                tracing::warn!("shutdown during a run: fetches in flight abandoned, finished work kept");
                return runs;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn schedules_parse_and_advance() {
        let s = Schedule::parse("0 3 * * *", Zone::Utc).unwrap();
        let t: DateTime<Utc> = "2026-11-25T19:00:00Z".parse().unwrap();
        assert_eq!(
            s.next_after(t).unwrap().to_rfc3339(),
            "2026-11-26T03:00:00+00:00"
        );
        assert_eq!(
            s.next_after("2026-11-26T03:00:00Z".parse().unwrap())
                .unwrap()
                .to_rfc3339(),
            "2026-11-27T03:00:00+00:00"
        );
        assert!(Schedule::parse("61 * * * *", Zone::Utc).is_err());
        assert!(Schedule::parse("every night", Zone::Utc).is_err());
        assert!(
            Schedule::parse("*/10 * * * * *", Zone::Utc).is_ok(),
            "seconds field allowed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fires_on_schedule_in_paused_time_and_stops_on_signal() {
        let start: DateTime<Utc> = "2026-11-25T02:58:00Z".parse().unwrap();
        let t0 = tokio::time::Instant::now();
        let clock: Clock =
            Arc::new(move || start + chrono::Duration::from_std(t0.elapsed()).unwrap());
        let schedule = Schedule::parse("0 3 * * *", Zone::Utc).unwrap();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let announced = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let f = fired.clone();
        let a = announced.clone();
        let runs = run_on_schedule(
            &schedule,
            &clock,
            async move {
                let _ = rx.await;
            },
            move |next| a.lock().unwrap().push(next.to_rfc3339()),
            |at| {
                let f = f.clone();
                let tx = tx.clone();
                let clock = clock.clone();
                async move {
                    let mut f = f.lock().unwrap();
                    f.push((at.to_rfc3339(), clock().to_rfc3339()));
                    if f.len() == 3 {
                        // The "signal": asked to stop after the third run.
                        if let Some(tx) = tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                }
            },
        )
        .await;
        assert_eq!(runs, 3);
        let fired = fired.lock().unwrap().clone();
        assert_eq!(
            fired,
            [
                (
                    "2026-11-25T03:00:00+00:00".to_string(),
                    "2026-11-25T03:00:00+00:00".to_string()
                ),
                (
                    "2026-11-26T03:00:00+00:00".to_string(),
                    "2026-11-26T03:00:00+00:00".to_string()
                ),
                (
                    "2026-11-27T03:00:00+00:00".to_string(),
                    "2026-11-27T03:00:00+00:00".to_string()
                ),
            ]
        );
        assert_eq!(announced.lock().unwrap()[0], "2026-11-25T03:00:00+00:00");
        // Two days and a bit passed on the paused clock.
        assert!(t0.elapsed() >= std::time::Duration::from_secs(2 * 86400));
    }
}
