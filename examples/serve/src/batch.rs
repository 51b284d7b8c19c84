//! Files go to the uploader a few at a time, in the order they arrive, so
//! memory stays bounded however many a request carries.

use std::mem;

use serde::Serialize;

/// At most this many files go to one `upload` call: Bigin's per-request
/// limit, so a full batch is one Bigin request.
pub const MAX_BATCH_FILES: usize = 10;

/// A batch is uploaded before it would grow past this many bytes. One file
/// may reach it alone, so the upload component never copies in more than
/// one file's worth at a time.
pub const MAX_BATCH_BYTES: u64 = crate::MAX_FILE_BYTES;

/// A file read from a request, ready for the upload component.
pub struct NewFile {
    /// The name Bigin will store.
    pub name: String,
    /// The MIME type the client gave, if any.
    pub content_type: Option<String>,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// What Bigin answered for one uploaded file (the WIT `file-ref`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uploaded {
    /// The name Bigin stored the file under.
    pub name: String,
    /// The encrypted id to attach to a record.
    pub id: String,
    /// How many bytes were sent.
    pub size: u64,
    /// SHA-256 of the bytes sent, lower-case hex.
    pub sha256: String,
}

/// Why the upload component refused or failed a batch (the WIT
/// `upload-error`, flattened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFailure {
    /// Which case of `upload-error` it was.
    pub case: FailureCase,
    /// Bigin's message, or a description of the fault.
    pub message: String,
    /// Bigin's error `code`, when its answer had one.
    pub code: Option<String>,
    /// Bigin's HTTP status, when an answer came.
    pub http_status: Option<u16>,
    /// Seconds to wait, when a rate-limited answer said.
    pub retry_after: Option<u64>,
    /// The files of the failed Bigin request and those of the batch never
    /// sent, by name (for `possibly-uploaded`: the ones that may have
    /// landed).
    pub files: Vec<String>,
    /// Refs of every file of the request already uploaded, in order.
    pub uploaded: Vec<Uploaded>,
}

/// The cases of the WIT `upload-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCase {
    /// No usable token or API domain in the server's environment.
    InvalidSettings,
    /// A file's name or content type cannot be sent.
    InvalidFile,
    /// A file over the per-file limit.
    TooLarge,
    /// Bigin answered 401.
    Unauthorized,
    /// Bigin answered 403 (or 400 `AUTHORIZATION_FAILED`).
    Forbidden,
    /// Bigin answered 429.
    RateLimited,
    /// Bigin answered 404.
    NotFound,
    /// Bigin answered 5xx.
    ServerError,
    /// The request was lost before its body was sent whole.
    Transport(TransportKind),
    /// The body was sent whole but no answer came: the files may have
    /// landed.
    PossiblyUploaded(TransportKind),
    /// No access token could be minted from the refresh token.
    Token,
    /// Any other answer.
    Api,
}

/// The WIT `transport-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No answer in time.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// The host name did not resolve.
    Dns,
    /// The answer could not be understood.
    Protocol,
}

/// Uploads one batch of files; the WASI build calls the upload component,
/// tests use a fake.
pub trait Uploader {
    /// Uploads `files` and returns one ref per file, in order.
    fn upload(&mut self, files: Vec<NewFile>) -> Result<Vec<Uploaded>, UploadFailure>;
}

/// Holds files until a batch is full, then uploads it.
///
/// Limitation: a file is held whole, because a WIT `file`'s `source` is
/// either its bytes (one `list<u8>`) or a path in a preopened directory,
/// and a part arriving over HTTP is neither a stream the upload component
/// takes nor a file on disk. Memory is therefore bounded by the per-file
/// limit (two files' worth here, one batch in the upload component), not by
/// a read chunk. A `source` carrying a `wasi:io` input stream would let each
/// part go straight through.
pub struct Batcher<U> {
    uploader: U,
    held: Vec<NewFile>,
    held_bytes: u64,
    uploaded: Vec<Uploaded>,
}

impl<U: Uploader> Batcher<U> {
    /// A batcher with nothing held.
    pub fn new(uploader: U) -> Self {
        Self {
            uploader,
            held: Vec::new(),
            held_bytes: 0,
            uploaded: Vec::new(),
        }
    }

    /// Takes the next file, first uploading what is held if the file would
    /// not fit beside it. On failure the returned error carries every ref
    /// won so far, and the batcher must not be used again.
    pub fn push(&mut self, file: NewFile) -> Result<(), UploadFailure> {
        let size = file.data.len() as u64;
        let full = self.held.len() >= MAX_BATCH_FILES
            || self.held_bytes.saturating_add(size) > MAX_BATCH_BYTES;
        if !self.held.is_empty() && full {
            self.flush()?;
        }
        self.held_bytes += size;
        self.held.push(file);
        Ok(())
    }

    /// Uploads what is held and returns every ref, in the order the files
    /// were pushed.
    pub fn finish(mut self) -> Result<Vec<Uploaded>, UploadFailure> {
        self.flush()?;
        Ok(self.uploaded)
    }

    /// The refs won so far: what a refusal of the rest of the request
    /// reports as already uploaded.
    pub fn uploaded(&self) -> &[Uploaded] {
        &self.uploaded
    }

    /// How many files were pushed and not yet uploaded.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn flush(&mut self) -> Result<(), UploadFailure> {
        if self.held.is_empty() {
            return Ok(());
        }
        let batch = mem::take(&mut self.held);
        self.held_bytes = 0;
        match self.uploader.upload(batch) {
            Ok(refs) => {
                self.uploaded.extend(refs);
                Ok(())
            }
            Err(mut failure) => {
                let mut all = mem::take(&mut self.uploaded);
                all.append(&mut failure.uploaded);
                failure.uploaded = all;
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each batch's file sizes; fails the call numbered `fail_at`.
    #[derive(Default)]
    struct Fake {
        calls: Vec<Vec<usize>>,
        fail_at: Option<usize>,
    }

    impl Uploader for &mut Fake {
        fn upload(&mut self, files: Vec<NewFile>) -> Result<Vec<Uploaded>, UploadFailure> {
            self.calls
                .push(files.iter().map(|f| f.data.len()).collect());
            let refs: Vec<Uploaded> = files
                .into_iter()
                .map(|f| Uploaded {
                    id: format!("id-{}", f.name),
                    size: f.data.len() as u64,
                    name: f.name,
                    sha256: String::new(),
                })
                .collect();
            if self.fail_at == Some(self.calls.len()) {
                return Err(UploadFailure {
                    case: FailureCase::ServerError,
                    message: "boom".into(),
                    code: Some("INTERNAL_ERROR".into()),
                    http_status: Some(500),
                    retry_after: None,
                    files: Vec::new(),
                    // As if the call's first request had gone through.
                    uploaded: refs.into_iter().take(1).collect(),
                });
            }
            Ok(refs)
        }
    }

    fn file(name: &str, size: usize) -> NewFile {
        NewFile {
            name: name.into(),
            content_type: None,
            data: vec![0; size],
        }
    }

    #[test]
    fn small_files_share_calls_of_at_most_ten() {
        let mut fake = Fake::default();
        let mut batcher = Batcher::new(&mut fake);
        for i in 0..11 {
            batcher.push(file(&i.to_string(), 3)).unwrap();
        }
        let refs = batcher.finish().unwrap();
        assert_eq!(refs.len(), 11);
        assert_eq!(refs[10].id, "id-10");
        assert_eq!(fake.calls, vec![vec![3; 10], vec![3]]);
    }

    #[test]
    fn a_batch_never_grows_past_the_byte_budget() {
        let mb = 1024 * 1024;
        let mut fake = Fake::default();
        let mut batcher = Batcher::new(&mut fake);
        for size in [12 * mb, 8 * mb, 1, 20 * mb, 0] {
            batcher.push(file("f", size)).unwrap();
        }
        batcher.finish().unwrap();
        assert_eq!(
            fake.calls,
            vec![vec![12 * mb, 8 * mb], vec![1], vec![20 * mb, 0]]
        );
    }

    #[test]
    fn nothing_is_uploaded_for_an_empty_request() {
        let mut fake = Fake::default();
        assert!(Batcher::new(&mut fake).finish().unwrap().is_empty());
        assert!(fake.calls.is_empty());
    }

    #[test]
    fn a_failure_carries_the_refs_of_earlier_batches_then_its_own() {
        let mut fake = Fake {
            fail_at: Some(2),
            ..Fake::default()
        };
        let mut batcher = Batcher::new(&mut fake);
        for i in 0..10 {
            batcher.push(file(&format!("a{i}"), 1)).unwrap();
        }
        batcher.push(file("b0", 1)).unwrap();
        batcher.push(file("b1", 1)).unwrap();
        let failure = batcher.finish().unwrap_err();
        let ids: Vec<&str> = failure.uploaded.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 11);
        assert_eq!(ids[9], "id-a9");
        assert_eq!(ids[10], "id-b0");
    }
}
