//! An HTTP front for the Bigin upload component, run by `wasmtime serve`.
//!
//! This crate builds a `wasi:http/proxy` component that takes files over
//! HTTP and hands them to `bigin:files/uploader`. Composed with the upload
//! component by `wac plug`, it is one `.wasm` file that `wasmtime serve
//! -Scli` runs; the upload component reads its settings (`BIGIN_*`) from
//! the environment as usual.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /` | a page to pick files and upload them |
//! | `POST /upload` | `multipart/form-data` with any number of `file` parts |
//! | `PUT /upload/{name}` | the raw body is one file; `name` is percent-decoded |
//!
//! Both upload routes answer 200 with `{"files":[{"name","id","size",
//! "sha256"},...]}` in the order the files came, or an error as JSON
//! `{"error","message",...}` (see [`problem`]).
//!
//! # Design decisions
//!
//! - **Files go to the uploader as they arrive, a few at a time.** A file is
//!   read whole (a WIT `file` is bytes or a preopened path, not a stream)
//!   and held in a batch of at most [`batch::MAX_BATCH_FILES`] files and
//!   [`batch::MAX_BATCH_BYTES`] bytes; a batch is uploaded when the next
//!   file would not fit, and the last one when the body ends. The front
//!   therefore holds at most two files' worth of bytes (the batch and the
//!   file being read), and each call copies at most one batch into the
//!   upload component, however large the request. Small files still share
//!   Bigin requests, so eleven small files cost two API calls, not eleven.
//! - **A refused request uploads nothing more.** When a part is malformed or
//!   too large, the held batch is dropped and the answer lists the refs that
//!   earlier batches already won under `uploaded`, as Bigin errors do.
//! - **Pure logic never touches the bindings.** Routing, the multipart
//!   reader, batching and error mapping are plain Rust over `std::io::Read`
//!   and a small [`batch::Uploader`] trait, unit-tested natively; only
//!   `component.rs` speaks WASI and WIT.
//! - **No async runtime.** `multer` parses the form; it wants a `Stream`,
//!   which [`form`] drives with a ten-line executor over a blocking reader.
//! - **Limits are answered early.** At most [`MAX_FILE_BYTES`] a file and
//!   [`form::MAX_FILES`] files a form; a `Content-Length` over what the
//!   route could ever take is refused before the body is read.
//! - **The token stays in the server.** A browser upload from another
//!   origin is refused (403), and every message passed on to a client has
//!   the upload component's secrets, read from the same environment,
//!   replaced by `[redacted]`.

pub mod batch;
pub mod disposition;
pub mod form;
pub mod problem;
pub mod route;

#[cfg(target_arch = "wasm32")]
mod component;

/// The page `GET /` serves: self-contained, no external assets.
pub const PAGE: &str = include_str!("page.html");

/// Bigin's per-file limit, 20 MiB, as the WIT `file` record documents it.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
