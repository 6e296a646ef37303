//! One benchmark at a time per machine: two relay-bench runs side by side would each measure
//! the other. A lock directory (`$TMPDIR/relay-bench.lock`, holding the owner's pid) is taken
//! with `create_dir`, which is atomic; a lock whose owner is gone is taken over.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Held while it lives; removed when dropped.
#[derive(Debug)]
pub struct MachineLock {
    dir: PathBuf,
}

impl MachineLock {
    /// Waits (up to `patience`, saying so on stderr) until no other relay-bench runs here.
    pub fn acquire(patience: Duration) -> anyhow::Result<MachineLock> {
        let dir = std::env::temp_dir().join("relay-bench.lock");
        let pid_file = dir.join("pid");
        let started = Instant::now();
        let mut said = false;
        loop {
            if std::fs::create_dir(&dir).is_ok() {
                std::fs::write(&pid_file, std::process::id().to_string())?;
                return Ok(MachineLock { dir });
            }
            let owner = std::fs::read_to_string(&pid_file).unwrap_or_default();
            let alive = owner
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if !alive && started.elapsed() > Duration::from_secs(1) {
                // Its owner died without cleaning up (or never wrote its pid): take it over.
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            if !said {
                eprintln!(
                    "relay-bench: another relay-bench (pid {}) is running on this machine; waiting for it to finish",
                    owner.trim()
                );
                said = true;
            }
            if started.elapsed() > patience {
                anyhow::bail!(
                    "another relay-bench still runs after {patience:?} ({})",
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
