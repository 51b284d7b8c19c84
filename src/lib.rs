//! A WebAssembly component that uploads files to Bigin's Files API.
//!
//! The logic lives in plain modules that never touch the bindings, so they
//! build and test natively: [`multipart`] encodes bodies, [`api`] reads
//! answers, [`settings`] resolves data centres and tokens, and [`upload`]
//! runs one call over a [`upload::Transport`]. On `wasm32` the component
//! layer below exports the WIT interface and [`transport`] speaks WASI HTTP.

pub mod api;
pub mod auth;
pub mod client;
pub mod download;
pub mod error;
pub mod multipart;
pub mod records;
pub mod settings;
pub mod upload;

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
mod fs;
#[cfg(target_arch = "wasm32")]
mod transport;
