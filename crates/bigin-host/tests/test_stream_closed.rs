//! A body sent with an exact Content-Length must not fail after its last
//! byte. Once the host has every byte it may close the body stream, so a
//! flush after that sees `closed`; under load this happened often enough
//! to fail uploads that had landed. Here one core is kept busy while 50
//! uploads run in a row, and every one must land exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Spins one core until dropped, or until its own deadline passes.
struct BusyCore {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BusyCore {
    fn start(deadline: Duration) -> BusyCore {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + deadline;
            let mut x = 0u64;
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        BusyCore {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BusyCore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn fifty_uploads_under_load_each_land_once() {
    let server = server();
    let settings = settings(&server);
    let runner = runner();
    let _busy = BusyCore::start(Duration::from_secs(300));
    let mut ids = Vec::new();
    for i in 0..50u8 {
        // Mostly 1 MiB, every tenth at the 20 MiB limit.
        let len = if i % 10 == 0 { 20 << 20 } else { 1 << 20 };
        let data = pattern(len, i);
        let refs = runner
            .upload(
                &settings,
                &[file(&format!("load-{i:02}.bin"), data.clone())],
            )
            .expect("the host runs the component")
            .unwrap_or_else(|e| panic!("upload {i} failed: {e:?}"));
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].sha256, sha256_hex(&data));
        ids.push(refs[0].id.clone());
    }
    let stats = server.stats();
    assert_eq!(stats.uploads.len(), 50, "each upload was sent once");
    assert!(stats.uploads.iter().all(|u| u.status == Some(200)));
    assert_eq!(stats.stored_files, 50);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
}
