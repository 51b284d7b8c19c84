//! One call's upload: check every file, send them in requests of at most
//! [`MAX_FILES_PER_REQUEST`], and return one ref per file in input order, or
//! the first failure with the refs already won.
//!
//! This module speaks to the network only through [`Transport`], so native
//! tests drive it with a scripted fake and the component plugs in WASI HTTP.

use crate::api::{self, ApiError, Entry};
use crate::client::{CallError, Client, Spec};
use crate::error::{Error, FileRef, TransportKind};
use crate::multipart::{self, Body, Data, Part, WriteError};
use crate::settings::{Origin, Timeouts};

/// Bigin's per-file limit: the docs say "20 Mb", read as 20 MiB.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// Files per upload request (Zoho's OpenAPI files: `maxItems: 10`).
pub const MAX_FILES_PER_REQUEST: usize = 10;

/// The Files API path on the API domain.
pub const FILES_PATH: &str = "/bigin/v2/files";

/// The largest upload answer read; a real one is well under 1 KiB a file.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// One file to upload, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct FileIn<'a> {
    pub name: &'a str,
    pub content_type: Option<&'a str>,
    pub data: Data<'a>,
}

/// An HTTP request for the transport. It has no `Debug`, because its
/// headers hold the token.
pub struct Request<'a> {
    pub method: Method,
    pub origin: &'a Origin,
    pub path_and_query: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Payload<'a>>,
    /// Answers longer than this are cut off with an error.
    pub max_answer_bytes: usize,
    pub timeouts: Timeouts,
}

/// A request body whose length is known before it is sent.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Multipart(&'a Body<'a>),
    Bytes(&'a [u8]),
}

impl<'a> Payload<'a> {
    pub fn content_length(&self) -> u64 {
        match self {
            Payload::Multipart(body) => body.content_length(),
            Payload::Bytes(bytes) => bytes.len() as u64,
        }
    }

    /// Hands the body to `sink` in order.
    pub fn write(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        match self {
            Payload::Multipart(body) => body.write(sink),
            Payload::Bytes(bytes) => sink(bytes),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// An HTTP answer, its body read whole.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case) that is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A fault below HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    /// Whether the whole body had been handed over when it happened.
    pub body_sent: bool,
    pub message: String,
}

/// What the upload needs from the outside world.
pub trait Transport {
    /// Sends one request and reads its whole answer.
    fn send(&mut self, request: Request<'_>) -> Result<Response, TransportError>;

    /// 128 random bits, for multipart boundaries and backoff jitter.
    fn random(&mut self) -> [u64; 2];

    /// A monotonic clock, in nanoseconds.
    fn now_ns(&mut self) -> u64;

    /// Blocks for `ns` nanoseconds.
    fn sleep_ns(&mut self, ns: u64);

    /// Wall-clock seconds since the Unix epoch, for `Retry-After` dates.
    fn unix_secs(&mut self) -> u64;
}

/// Checks every file, then uploads them in order.
pub fn upload(client: &mut Client<'_>, files: &[FileIn<'_>]) -> Result<Vec<FileRef>, Error> {
    let parts = check(files)?;
    let mut refs: Vec<FileRef> = Vec::with_capacity(files.len());
    for (batch_index, batch) in parts.chunks(MAX_FILES_PER_REQUEST).enumerate() {
        let first = batch_index * MAX_FILES_PER_REQUEST;
        let unsent = || files[first..].iter().map(|f| f.name.to_owned()).collect();
        let body = Body::new(
            multipart::boundary(client.random()),
            batch.iter().map(|c| c.part).collect(),
        );
        let spec = Spec::post_multipart(FILES_PATH, &body, MAX_ANSWER_BYTES);
        let response = match client.send(&spec) {
            Ok(response) => response,
            Err(CallError::Transport(fault)) if fault.body_sent => {
                // The whole body went out and no answer came back: the files
                // may have landed, so they are reported, not resent.
                return Err(Error::PossiblyUploaded {
                    kind: fault.kind,
                    message: fault.message,
                    sent: batch.iter().map(|c| c.name.to_owned()).collect(),
                    files: unsent(),
                    uploaded: refs,
                });
            }
            Err(CallError::Transport(fault)) => {
                return Err(Error::Transport {
                    kind: fault.kind,
                    body_sent: fault.body_sent,
                    message: fault.message,
                    files: unsent(),
                    uploaded: refs,
                });
            }
            Err(CallError::Token(error)) => {
                return Err(Error::Token {
                    error,
                    files: unsent(),
                    uploaded: refs,
                });
            }
        };
        if response.status != 200 {
            let retry_after = response
                .header("retry-after")
                .and_then(api::retry_after_seconds);
            let mut error = api::error_from(response.status, &response.body, retry_after);
            explain(&mut error, "ZohoBigin.Files.CREATE");
            return Err(Error::Api {
                error,
                files: unsent(),
                uploaded: refs,
            });
        }
        let entries = match api::upload_entries(&response.body, batch.len()) {
            Ok(entries) => entries,
            Err(message) => {
                // The files may have landed, but without ids they cannot be
                // used, so they are reported as not uploaded.
                return Err(Error::Api {
                    error: ApiError {
                        class: api::ErrorClass::Other,
                        http_status: 200,
                        code: None,
                        message,
                        retry_after: None,
                    },
                    files: unsent(),
                    uploaded: refs,
                });
            }
        };
        let mut refused: Option<ApiError> = None;
        let mut failed = Vec::new();
        for (i, (checked, entry)) in batch.iter().zip(entries).enumerate() {
            match entry {
                Entry::Accepted(accepted) => refs.push(FileRef {
                    name: accepted.name,
                    id: accepted.id,
                    size: checked.part.data.len(),
                    // Set by the write that carried the answered request.
                    sha256: body.digest(i).unwrap_or_default(),
                }),
                Entry::Refused(error) => {
                    failed.push(checked.name.to_owned());
                    refused.get_or_insert(error);
                }
            }
        }
        if let Some(error) = refused {
            let later = files[first + batch.len()..]
                .iter()
                .map(|f| f.name.to_owned());
            failed.extend(later);
            return Err(Error::Api {
                error,
                files: failed,
                uploaded: refs,
            });
        }
    }
    Ok(refs)
}

/// Adds what a user needs to know to the messages of codes that are
/// easily misread.
pub(crate) fn explain(error: &mut ApiError, scope: &str) {
    match error.code.as_deref() {
        Some("OAUTH_SCOPE_MISMATCH") => {
            error.message = format!(
                "the token lacks the {scope} scope; minting another from the same grant will \
                 not help ({})",
                error.message
            );
        }
        Some("INVALID_URL_PATTERN") => {
            error.message = format!(
                "{} (the account may live in another data centre)",
                error.message
            );
        }
        _ => {}
    }
}

/// A file that passed the checks.
struct Checked<'a> {
    name: &'a str,
    part: Part<'a>,
}

/// Checks names, types and sizes of every file before anything is sent, so
/// a bad file late in the list cannot leave earlier ones half uploaded.
fn check<'a>(files: &[FileIn<'a>]) -> Result<Vec<Checked<'a>>, Error> {
    let mut checked = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let invalid = |reason: String| Error::InvalidFile {
            index,
            name: file.name.escape_debug().to_string(),
            reason,
        };
        multipart::check_file_name(file.name).map_err(|e| invalid(e.to_string()))?;
        let content_type = multipart::content_type_for(file.content_type, file.name);
        multipart::check_content_type(content_type).map_err(|e| invalid(e.to_string()))?;
        let size = file.data.len();
        if size > MAX_FILE_BYTES {
            return Err(Error::TooLarge {
                index,
                name: file.name.to_owned(),
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        checked.push(Checked {
            name: file.name,
            part: Part::file(file.name, content_type, file.data),
        });
    }
    Ok(checked)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    multipart::hex(&Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorClass;
    use crate::client::TokenCache;
    use crate::settings::{RawSettings, Secret, Settings};

    fn run(
        settings: &Settings,
        files: &[FileIn<'_>],
        transport: &mut Scripted,
    ) -> Result<Vec<FileRef>, Error> {
        let mut cache = TokenCache::default();
        upload(&mut Client::new(settings, transport, &mut cache), files)
    }

    /// Answers each request from a script and records what was sent.
    struct Scripted {
        answers: Vec<Result<Response, TransportError>>,
        sent: Vec<Sent>,
    }

    struct Sent {
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        declared_length: u64,
    }

    impl Transport for Scripted {
        fn send(&mut self, request: Request<'_>) -> Result<Response, TransportError> {
            let body = request.body.expect("uploads carry a body");
            self.sent.push(Sent {
                headers: request.headers.clone(),
                body: {
                    let mut bytes = Vec::new();
                    body.write(&mut |c| {
                        bytes.extend_from_slice(c);
                        Ok(())
                    })
                    .unwrap();
                    bytes
                },
                declared_length: body.content_length(),
            });
            self.answers.remove(0)
        }

        fn random(&mut self) -> [u64; 2] {
            [1, 2]
        }

        fn now_ns(&mut self) -> u64 {
            0
        }

        fn sleep_ns(&mut self, _ns: u64) {}

        fn unix_secs(&mut self) -> u64 {
            0
        }
    }

    fn settings() -> Settings {
        RawSettings {
            access_token: Some(Secret::new("tok-123")),
            api_domain: Some("http://127.0.0.1:1".into()),
            // Retries are the client's business, tested there.
            max_retries: Some(0),
            ..RawSettings::default()
        }
        .check()
        .unwrap()
    }

    fn ok_answer(names: &[String]) -> Result<Response, TransportError> {
        let data: Vec<_> = names
            .iter()
            .map(|n| {
                serde_json::json!({"code": "SUCCESS", "status": "success",
                    "message": "uploaded", "details": {"name": n, "id": format!("id-{n}")}})
            })
            .collect();
        Ok(Response {
            status: 200,
            headers: vec![],
            body: serde_json::to_vec(&serde_json::json!({ "data": data })).unwrap(),
        })
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i:02}.txt")).collect()
    }

    fn inputs(names: &[String]) -> Vec<FileIn<'_>> {
        names
            .iter()
            .map(|n| FileIn {
                name: n,
                content_type: None,
                data: Data::Bytes(n.as_bytes()),
            })
            .collect()
    }

    #[test]
    fn eleven_files_go_as_ten_and_one_in_order() {
        let names = names(11);
        let mut t = Scripted {
            answers: vec![ok_answer(&names[..10]), ok_answer(&names[10..])],
            sent: vec![],
        };
        let refs = run(&settings(), &inputs(&names), &mut t).unwrap();
        assert_eq!(t.sent.len(), 2);
        let got: Vec<_> = refs.iter().map(|r| r.name.clone()).collect();
        assert_eq!(got, names);
        assert_eq!(refs[3].id, "id-f03.txt");
        assert_eq!(refs[3].size, 7);
        assert_eq!(refs[3].sha256, sha256_hex(b"f03.txt"));
        for sent in &t.sent {
            assert_eq!(sent.body.len() as u64, sent.declared_length);
            assert!(
                sent.headers
                    .contains(&("authorization", "Zoho-oauthtoken tok-123".into()))
            );
        }
        let second = String::from_utf8(t.sent[1].body.clone()).unwrap();
        assert_eq!(second.matches("filename=").count(), 1);
    }

    #[test]
    fn failure_in_second_request_keeps_first_refs() {
        let names = names(12);
        let mut t = Scripted {
            answers: vec![
                ok_answer(&names[..10]),
                Ok(Response {
                    status: 500,
                    headers: vec![],
                    body: br#"{"code":"INTERNAL_ERROR","message":"boom","status":"error"}"#
                        .to_vec(),
                }),
            ],
            sent: vec![],
        };
        match run(&settings(), &inputs(&names), &mut t) {
            Err(Error::Api {
                error,
                files,
                uploaded,
            }) => {
                assert_eq!(error.class, ErrorClass::Server);
                assert_eq!(error.code.as_deref(), Some("INTERNAL_ERROR"));
                assert_eq!(files, names[10..]);
                assert_eq!(uploaded.len(), 10);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refused_entry_fails_only_its_file_and_later_ones() {
        let names = names(2);
        let body = serde_json::json!({"data": [
            {"code": "SUCCESS", "status": "success", "details": {"name": "f00.txt", "id": "A"}},
            {"code": "VIRUS_DETECTED", "status": "error", "details": {}, "message": "virus"}
        ]});
        let mut t = Scripted {
            answers: vec![Ok(Response {
                status: 200,
                headers: vec![],
                body: serde_json::to_vec(&body).unwrap(),
            })],
            sent: vec![],
        };
        match run(&settings(), &inputs(&names), &mut t) {
            Err(Error::Api {
                error,
                files,
                uploaded,
            }) => {
                assert_eq!(error.code.as_deref(), Some("VIRUS_DETECTED"));
                assert_eq!(files, vec!["f01.txt".to_owned()]);
                assert_eq!(uploaded.len(), 1);
                assert_eq!(uploaded[0].id, "A");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_files_are_refused_before_anything_is_sent() {
        let big = vec![0u8; MAX_FILE_BYTES as usize + 1];
        let exact = vec![0u8; MAX_FILE_BYTES as usize];
        let mut t = Scripted {
            answers: vec![],
            sent: vec![],
        };
        let files = [
            FileIn {
                name: "ok.bin",
                content_type: None,
                data: Data::Bytes(&exact),
            },
            FileIn {
                name: "big.bin",
                content_type: None,
                data: Data::Bytes(&big),
            },
        ];
        match run(&settings(), &files, &mut t) {
            Err(Error::TooLarge {
                index, size, limit, ..
            }) => assert_eq!(
                (index, size, limit),
                (1, MAX_FILE_BYTES + 1, MAX_FILE_BYTES)
            ),
            other => panic!("unexpected {other:?}"),
        }
        let files = [FileIn {
            name: "evil\r\nX: y",
            content_type: None,
            data: Data::Bytes(b""),
        }];
        match run(&settings(), &files, &mut t) {
            Err(Error::InvalidFile {
                index,
                name,
                reason,
            }) => {
                assert_eq!(index, 0);
                assert_eq!(name, "evil\\r\\nX: y");
                assert!(reason.contains("line break"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(t.sent.is_empty());
    }

    #[test]
    fn transport_fault_names_every_unsent_file() {
        let names = names(3);
        let mut t = Scripted {
            answers: vec![Err(TransportError {
                kind: TransportKind::Connection,
                body_sent: false,
                message: "refused".into(),
            })],
            sent: vec![],
        };
        match run(&settings(), &inputs(&names), &mut t) {
            Err(Error::Transport {
                kind,
                files,
                uploaded,
                ..
            }) => {
                assert_eq!(kind, TransportKind::Connection);
                assert_eq!(files, names);
                assert!(uploaded.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn no_files_means_no_request() {
        let mut t = Scripted {
            answers: vec![],
            sent: vec![],
        };
        assert!(run(&settings(), &[], &mut t).unwrap().is_empty());
        assert!(t.sent.is_empty());
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
