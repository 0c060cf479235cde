//! The in-process backend's shared state. Each job keeps its own state behind its own lock
//! (defined in `<job>/memory.rs`), so one job's atomic step never waits on another's.

use std::sync::Mutex;

use tokio::sync::watch;

use crate::config::Settings;
use crate::connection::ConnState;
use crate::keys::KeySpace;

use super::Storage;

/// Storage in this process's memory.
pub struct MemoryStorage {
    pub(crate) keys: KeySpace,
    pub(crate) settings: Settings,
    pub(crate) tracker: Mutex<crate::tracker::memory::TrackerState>,
    pub(crate) metrics: Mutex<crate::metrics::memory::MetricsState>,
    pub(crate) cache: Mutex<crate::cache::memory::CacheState>,
    pub(crate) limiter: Mutex<crate::limiter::memory::LimiterState>,
    state: watch::Sender<ConnState>,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage").finish_non_exhaustive()
    }
}

impl MemoryStorage {
    pub fn new(settings: Settings) -> Self {
        Self {
            keys: KeySpace::new(settings.prefixes.clone()),
            tracker: Mutex::default(),
            metrics: Mutex::default(),
            cache: Mutex::default(),
            limiter: Mutex::default(),
            state: watch::channel(ConnState::InProcess).0,
            settings,
        }
    }
}

impl Storage for MemoryStorage {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn endpoint(&self) -> String {
        "in-process memory".into()
    }

    fn connection(&self) -> watch::Receiver<ConnState> {
        self.state.subscribe()
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }
}
