//! The server's shared, mutable state: tokens, files, records and their
//! attachments, queued faults and statistics.
//!
//! One `std::sync::Mutex` guards it all. Every critical section is a few
//! map operations and none spans an `.await`, so an async mutex would buy
//! nothing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::header::{self, HeaderMap};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::file_field;
use crate::model::{AttachmentRecord, Fault, Stats, StoredFile, UploadRecord};
use crate::records::{RecordUpdate, UpdateError};
use crate::timestamp;

/// Most refresh-token mints allowed per [`MINT_WINDOW`], as at Zoho.
pub(crate) const MINTS_PER_WINDOW: usize = 5;
/// The sliding window [`MINTS_PER_WINDOW`] counts over.
pub(crate) const MINT_WINDOW: Duration = Duration::from_secs(60);

/// The id of the first record or attachment; later ones count up from it,
/// one sequence for both, so that no two share an id. Zoho's ids are
/// 19-digit numbers sent as strings.
const FIRST_ID: u64 = 4_876_876_000_000_000_001;

/// State shared by every connection of one server.
pub(crate) struct Shared {
    /// The configuration the server started with. `expire_after_uploads`
    /// here is only the initial value; the live one is in [`Inner`].
    pub(crate) config: Config,
    /// `http://ADDR:PORT`, answered as `api_domain` by the token endpoint.
    pub(crate) base_url: String,
    inner: Mutex<Inner>,
}

struct Inner {
    tokens: Vec<AccessToken>,
    files: HashMap<String, StoredEntry>,
    faults: VecDeque<Fault>,
    requests: BTreeMap<String, u64>,
    uploads: Vec<UploadRecord>,
    recent_mints: VecDeque<Instant>,
    token_mints: u64,
    expire_after_uploads: Option<u32>,
    uploads_since_expiry: u32,
    /// Keyed by record id; ids are unique across modules.
    records: HashMap<String, RecordEntry>,
    attachments: Vec<AttachmentRecord>,
    next_id: u64,
    record_updates: u64,
}

impl Inner {
    fn take_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        id.to_string()
    }
}

/// A valid access token. Deliberately not `Debug`.
struct AccessToken {
    value: String,
    /// `None` for the configured static tokens.
    expires_at: Option<Instant>,
}

struct StoredEntry {
    name: String,
    content_type: Option<String>,
    bytes: Bytes,
    used: bool,
}

struct RecordEntry {
    module: String,
    /// Every field but `id`.
    fields: Map<String, Value>,
}

/// A file or link the attachments handler has read and wants stored.
pub(crate) struct NewAttachment {
    pub(crate) file_name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) link_url: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

/// A file the upload handler has read completely and wants stored.
pub(crate) struct NewFile {
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Bytes,
}

/// What a download found.
pub(crate) struct FoundFile {
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Bytes,
}

/// The token endpoint's decision on a well-formed, authenticated request.
pub(crate) enum Mint {
    Minted,
    TooManyRequests,
}

impl Shared {
    pub(crate) fn new(config: Config, base_url: String) -> Self {
        let inner = Inner {
            tokens: config
                .access_tokens
                .iter()
                .map(|value| AccessToken {
                    value: value.clone(),
                    expires_at: None,
                })
                .collect(),
            files: HashMap::new(),
            faults: VecDeque::new(),
            requests: BTreeMap::new(),
            uploads: Vec::new(),
            recent_mints: VecDeque::new(),
            token_mints: 0,
            expire_after_uploads: config.expire_after_uploads,
            uploads_since_expiry: 0,
            records: HashMap::new(),
            attachments: Vec::new(),
            next_id: FIRST_ID,
            record_updates: 0,
        };
        Self {
            config,
            base_url,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half
        // updated in a way that matters to a test server; keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count_request(&self, route: &str) {
        *self.lock().requests.entry(route.to_owned()).or_default() += 1;
    }

    pub(crate) fn record_upload(&self, record: UploadRecord) {
        self.lock().uploads.push(record);
    }

    pub(crate) fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) -> usize {
        let mut inner = self.lock();
        inner.faults.extend(faults);
        inner.faults.len()
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub(crate) fn pop_fault(&self) -> Option<Fault> {
        self.lock().faults.pop_front()
    }

    /// Sets the revoke-after-N-uploads trigger and restarts its count.
    pub(crate) fn set_expire_after_uploads(&self, n: Option<u32>) {
        let mut inner = self.lock();
        inner.expire_after_uploads = n;
        inner.uploads_since_expiry = 0;
    }

    pub(crate) fn expire_after_uploads(&self) -> Option<u32> {
        self.lock().expire_after_uploads
    }

    /// Whether the request carries `Authorization: Zoho-oauthtoken T` with
    /// a currently valid access token `T`.
    pub(crate) fn is_authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Zoho-oauthtoken "))
            .is_some_and(|token| self.is_valid_token(token))
    }

    fn is_valid_token(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .tokens
            .retain(|t| t.expires_at.is_none_or(|expiry| now < expiry));
        inner.tokens.iter().any(|t| t.value == token)
    }

    /// Stores a successful upload's files and returns their ids in order.
    /// Counts the upload towards `expire_after_uploads`.
    pub(crate) fn store_upload(&self, files: Vec<NewFile>) -> anyhow::Result<Vec<String>> {
        // Ids come first so that a failing random source stores nothing.
        let ids = files
            .iter()
            .map(|_| random_hex(32))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut inner = self.lock();
        for (file, id) in files.into_iter().zip(&ids) {
            let entry = StoredEntry {
                name: file.name,
                content_type: file.content_type,
                bytes: file.bytes,
                used: false,
            };
            inner.files.insert(id.clone(), entry);
        }
        inner.uploads_since_expiry = inner.uploads_since_expiry.saturating_add(1);
        if let Some(limit) = inner.expire_after_uploads
            && inner.uploads_since_expiry >= limit
        {
            inner.tokens.clear();
            inner.uploads_since_expiry = 0;
        }
        Ok(ids)
    }

    pub(crate) fn find_file(&self, id: &str) -> Option<FoundFile> {
        self.lock().files.get(id).map(|entry| FoundFile {
            name: entry.name.clone(),
            content_type: entry.content_type.clone(),
            bytes: entry.bytes.clone(),
        })
    }

    pub(crate) fn stored_file(&self, id: &str) -> Option<StoredFile> {
        self.lock().files.get(id).map(|entry| StoredFile {
            id: id.to_owned(),
            name: entry.name.clone(),
            content_type: entry.content_type.clone(),
            bytes: entry.bytes.to_vec(),
            used: entry.used,
        })
    }

    /// Mints a new access token unless the client is over its rate limit.
    /// Returns the decision and, when minted, the token.
    pub(crate) fn mint_token(&self) -> anyhow::Result<(Mint, Option<String>)> {
        let value = format!("1000.{}", random_hex(32)?);
        let now = Instant::now();
        let mut inner = self.lock();
        while inner
            .recent_mints
            .front()
            .is_some_and(|at| now.duration_since(*at) >= MINT_WINDOW)
        {
            inner.recent_mints.pop_front();
        }
        if inner.recent_mints.len() >= MINTS_PER_WINDOW {
            return Ok((Mint::TooManyRequests, None));
        }
        inner.recent_mints.push_back(now);
        inner.token_mints += 1;
        inner.tokens.push(AccessToken {
            value: value.clone(),
            // An absurd lifetime that overflows `Instant` never expires.
            expires_at: now.checked_add(self.config.token_lifetime),
        });
        Ok((Mint::Minted, Some(value)))
    }

    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            requests: inner.requests.clone(),
            uploads: inner.uploads.clone(),
            stored_files: inner.files.len(),
            token_mints: inner.token_mints,
            records: inner.records.len(),
            record_updates: inner.record_updates,
            attachments: inner.attachments.len(),
        }
    }

    /// Stores a record whose module and fields the caller has checked, and
    /// returns its new id.
    pub(crate) fn create_record(&self, module: &str, fields: Map<String, Value>) -> String {
        let mut inner = self.lock();
        let id = inner.take_id();
        let entry = RecordEntry {
            module: module.to_owned(),
            fields,
        };
        inner.records.insert(id.clone(), entry);
        id
    }

    /// A record as the API shows it: its fields with `id` added.
    pub(crate) fn record(&self, module: &str, id: &str) -> Option<Value> {
        let inner = self.lock();
        let entry = inner.records.get(id).filter(|e| e.module == module)?;
        let mut object = entry.fields.clone();
        object.insert("id".to_owned(), Value::String(id.to_owned()));
        Some(Value::Object(object))
    }

    pub(crate) fn has_record(&self, module: &str, id: &str) -> bool {
        self.lock()
            .records
            .get(id)
            .is_some_and(|e| e.module == module)
    }

    /// Attaches uploaded files to one record's file-upload fields, all or
    /// nothing: every file id is checked before any is consumed. An id
    /// named twice in one update counts as used the second time.
    pub(crate) fn update_record(
        &self,
        module: &str,
        update: &RecordUpdate,
    ) -> Result<(), UpdateError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let entry = inner
            .records
            .get_mut(&update.id)
            .filter(|e| e.module == module)
            .ok_or(UpdateError::UnknownRecord)?;

        let mut claimed = HashSet::new();
        for (field, ids) in &update.fields {
            for (index, id) in ids.iter().enumerate() {
                let file = inner
                    .files
                    .get(id)
                    .ok_or_else(|| UpdateError::UnknownFile {
                        field: field.clone(),
                        index,
                    })?;
                if file.used || !claimed.insert(id.as_str()) {
                    return Err(UpdateError::UsedFile {
                        field: field.clone(),
                        index,
                    });
                }
            }
        }

        for (field, ids) in &update.fields {
            let attached = ids
                .iter()
                .filter_map(|id| {
                    // Present: checked above under the same lock.
                    let file = inner.files.get_mut(id)?;
                    file.used = true;
                    Some(file_field::attached(
                        id,
                        &file.name,
                        file.bytes.len() as u64,
                    ))
                })
                .collect();
            file_field::append(&mut entry.fields, field, attached);
        }
        inner.record_updates += 1;
        Ok(())
    }

    /// Stores an attachment on a record and returns its id and creation
    /// time; `None` if there is no such record.
    pub(crate) fn add_attachment(
        &self,
        module: &str,
        record_id: &str,
        new: NewAttachment,
    ) -> Option<(String, String)> {
        let mut inner = self.lock();
        inner
            .records
            .get(record_id)
            .filter(|e| e.module == module)?;
        let attachment = AttachmentRecord {
            id: inner.take_id(),
            module: module.to_owned(),
            record_id: record_id.to_owned(),
            file_name: new.file_name,
            size: new.bytes.len() as u64,
            content_type: new.content_type,
            link_url: new.link_url,
            bytes: new.bytes,
            created_time: timestamp::now(),
        };
        let answer = (attachment.id.clone(), attachment.created_time.clone());
        inner.attachments.push(attachment);
        Some(answer)
    }

    /// A record's attachments, oldest first; `None` if there is no such
    /// record.
    pub(crate) fn attachments(
        &self,
        module: &str,
        record_id: &str,
    ) -> Option<Vec<AttachmentRecord>> {
        let inner = self.lock();
        inner
            .records
            .get(record_id)
            .filter(|e| e.module == module)?;
        Some(
            inner
                .attachments
                .iter()
                .filter(|a| a.module == module && a.record_id == record_id)
                .cloned()
                .collect(),
        )
    }
}

/// `len` random bytes from the operating system, as lowercase hex.
pub(crate) fn random_hex(len: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).context("reading the system random source")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
