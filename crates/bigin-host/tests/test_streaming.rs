//! Files given by path, streamed from a preopened directory.

mod common;

use std::path::PathBuf;

use bigin_files::upload::MAX_FILE_BYTES;
use bigin_host::{File, Preopen, Source, UploadError};
use common::*;

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bigin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn by_path(name: &str, path: &str) -> File {
    File {
        name: name.to_owned(),
        content_type: None,
        source: Source::Path(path.to_owned()),
    }
}

#[test]
fn a_20_mib_file_streams_from_a_preopen_with_memory_to_spare() {
    let server = server();
    let dir = TempDir::new("stream");
    let data = pattern(MAX_FILE_BYTES as usize, 11);
    std::fs::write(dir.0.join("big.bin"), &data).unwrap();
    std::fs::write(dir.0.join("small.txt"), "small").unwrap();
    let dirs = [Preopen {
        host: dir.0.clone(),
        guest: "/in".into(),
    }];
    let files = [
        by_path("big.bin", "/in/big.bin"),
        by_path("small.txt", "/in/small.txt"),
        file("bytes.txt", "in memory"),
    ];
    let (outcome, usage) = runner()
        .upload_in(&settings(&server), &dirs, &files, None)
        .expect("the host runs the component");
    let refs = outcome.expect("the upload succeeds");
    assert_eq!(refs[0].size, MAX_FILE_BYTES);
    assert_eq!(refs[0].sha256, sha256_hex(&data), "hashed on the way");
    assert!(server.file(&refs[0].id).unwrap().bytes == data);
    assert_eq!(server.file(&refs[1].id).unwrap().bytes, b"small");
    assert_eq!(server.file(&refs[2].id).unwrap().bytes, b"in memory");
    // The guest never held the 20 MiB file: its memory stayed far below.
    assert!(
        usage.peak_memory_bytes < (MAX_FILE_BYTES / 2) as usize,
        "peak {} bytes",
        usage.peak_memory_bytes
    );
}

#[test]
fn paths_that_cannot_be_read_are_refused_before_anything_is_sent() {
    let server = server();
    let dir = TempDir::new("badpaths");
    std::fs::create_dir_all(dir.0.join("sub")).unwrap();
    std::fs::write(dir.0.join("ok.txt"), "ok").unwrap();
    let dirs = [Preopen {
        host: dir.0.clone(),
        guest: "/in".into(),
    }];
    for (path, expect) in [
        ("/in/missing.txt", "cannot open"),
        ("/in/sub", "not a regular file"),
        ("/in/../etc/passwd", ".."),
        ("/elsewhere/x", "no preopened directory"),
    ] {
        let files = [by_path("ok.txt", "/in/ok.txt"), by_path("bad", path)];
        let (outcome, _) = runner()
            .upload_in(&settings(&server), &dirs, &files, None)
            .unwrap();
        match outcome {
            Err(UploadError::InvalidFile(f)) => {
                assert_eq!(f.index, 1);
                assert!(f.reason.contains(expect), "{path}: {}", f.reason);
            }
            other => panic!("{path}: expected invalid-file, got {other:?}"),
        }
    }
    assert!(server.stats().uploads.is_empty());
}

#[test]
fn a_file_over_the_limit_by_path_is_too_large_from_its_size() {
    let server = server();
    let dir = TempDir::new("toolarge");
    let f = std::fs::File::create(dir.0.join("huge.bin")).unwrap();
    // Sparse: the size is what matters, and nothing is read.
    f.set_len(MAX_FILE_BYTES + 1).unwrap();
    let dirs = [Preopen {
        host: dir.0.clone(),
        guest: ".".into(),
    }];
    let (outcome, _) = runner()
        .upload_in(
            &settings(&server),
            &dirs,
            &[by_path("huge.bin", "huge.bin")],
            None,
        )
        .unwrap();
    match outcome {
        Err(UploadError::TooLarge(t)) => assert_eq!(t.size, MAX_FILE_BYTES + 1),
        other => panic!("expected too-large, got {other:?}"),
    }
    assert!(server.stats().uploads.is_empty());
}
