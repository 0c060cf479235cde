//! Hands the heap's free memory back to the system after bulk reads (glibc only).
//!
//! A full read or an audit of 100,000 cards allocates ~300 MB of short-lived documents,
//! replies and maps beside the cards it keeps. glibc's `free` keeps that memory in its arenas
//! (it returns only the top of a heap, and the live cards are scattered through it), so the
//! dashboard's RSS stayed at the read's peak (~350 MiB) while ~180 MB was in use. A
//! background thread looks at glibc's count of free bytes every few seconds and, when a bulk
//! read has left more than [`SLACK`] free, calls `malloc_trim(0)`, which releases the free
//! pages inside the heaps too (measured in docs/BENCHMARKS.md, "RSS at 100,000 cards").
//!
//! Nothing else changes: allocation stays glibc's, and on other platforms this does nothing.

use std::time::Duration;

/// Free bytes in the arenas above which a trim is worth its cost (it walks the heaps).
const SLACK: usize = 32 << 20;

/// How often the free bytes are looked at: a check is one `mallinfo2` call.
const EVERY: Duration = Duration::from_secs(5);

/// Starts the trimming thread; it lives as long as the process.
pub(super) fn spawn() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let _ = std::thread::Builder::new()
            .name("heap-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(EVERY);
                    trim_if_slack(SLACK);
                }
            });
    }
}

/// Free bytes glibc holds in its arenas (neither in use nor returned).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_bytes() -> usize {
    // SAFETY: `mallinfo2` only reads the allocator's statistics under its own locks.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}

/// Trims when more than `slack` bytes are free; returns whether it did.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_if_slack(slack: usize) -> bool {
    if free_bytes() <= slack {
        return false;
    }
    // SAFETY: `malloc_trim` takes the allocator's locks itself and only releases free pages.
    unsafe { libc::malloc_trim(0) };
    true
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn trimming_returns_freed_pages_of_many_small_blocks() {
        // Many small blocks, every other one kept: the freed half cannot be returned by
        // shrinking the heap's top, only by a trim.
        let mut blocks: Vec<Box<[u8; 200]>> = (0..200_000).map(|_| Box::new([1u8; 200])).collect();
        let mut kept = Vec::with_capacity(blocks.len() / 2);
        for (i, b) in blocks.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(b);
            }
        }
        let before = free_bytes();
        assert!(before > 8 << 20, "the freed half is held as free: {before}");
        assert!(trim_if_slack(8 << 20));
        assert!(!trim_if_slack(usize::MAX));
        drop(kept);
    }
}
