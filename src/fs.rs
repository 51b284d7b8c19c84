//! Files in directories the host preopened, read as they are sent.

use wasi::filesystem::preopens;
use wasi::filesystem::types::{Descriptor, DescriptorFlags, DescriptorType, OpenFlags, PathFlags};
use wasi::io::streams::StreamError;

use crate::multipart::{Source, SourceError, WriteError};

/// How much of a file is read at a time: small enough to keep the guest's
/// memory flat, large enough that the per-call cost does not show.
const READ_CHUNK: u64 = 64 * 1024;

/// An open regular file and the size it had when opened.
pub struct PreopenFile {
    descriptor: Descriptor,
    size: u64,
    path: String,
}

/// Opens `path` read-only inside a preopened directory.
///
/// A path that starts with a preopen's name (`/data/a.bin` under `/data`)
/// is taken inside that preopen, the longest name winning; any other path
/// is relative to the preopen named `.`, else to the first one. `..` is
/// refused outright, though the host would refuse an escape anyway.
pub fn open(path: &str) -> Result<PreopenFile, String> {
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Err(format!("`{path}` climbs out with `..`"));
    }
    let dirs = preopens::get_directories();
    if dirs.is_empty() {
        return Err("the host preopened no directory, so no path can be read".into());
    }
    let (dir, relative) =
        locate(&dirs, path).ok_or_else(|| format!("`{path}` is in no preopened directory"))?;
    let descriptor = dir
        .open_at(
            PathFlags::SYMLINK_FOLLOW,
            relative,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .map_err(|e| format!("cannot open `{path}`: {e:?}"))?;
    let stat = descriptor
        .stat()
        .map_err(|e| format!("cannot read the size of `{path}`: {e:?}"))?;
    if stat.type_ != DescriptorType::RegularFile {
        return Err(format!("`{path}` is not a regular file"));
    }
    Ok(PreopenFile {
        descriptor,
        size: stat.size,
        path: path.to_owned(),
    })
}

fn locate<'a>(
    dirs: &'a [(Descriptor, String)],
    path: &'a str,
) -> Option<(&'a Descriptor, &'a str)> {
    let inside = |name: &str| -> Option<&'a str> {
        let name = name.trim_end_matches('/');
        let rest = path.strip_prefix(name)?;
        if name.is_empty() {
            return None;
        }
        rest.strip_prefix('/').filter(|r| !r.is_empty())
    };
    let by_prefix = dirs
        .iter()
        .filter_map(|(dir, name)| inside(name).map(|rest| (dir, rest, name.len())))
        .max_by_key(|(_, _, len)| *len)
        .map(|(dir, rest, _)| (dir, rest));
    by_prefix.or_else(|| {
        let relative = path.trim_start_matches("./");
        if relative.starts_with('/') {
            return None;
        }
        dirs.iter()
            .find(|(_, name)| name == ".")
            .or_else(|| dirs.first())
            .map(|(dir, _)| (dir, relative))
    })
}

impl Source for PreopenFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn stream(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let failed = |why: String| WriteError::Source(SourceError(why));
        let input = self
            .descriptor
            .read_via_stream(0)
            .map_err(|e| failed(format!("cannot read `{}`: {e:?}", self.path)))?;
        let mut read = 0u64;
        loop {
            match input.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    read += chunk.len() as u64;
                    // More than announced cannot be sent under the
                    // `Content-Length` already given; stop before sending it.
                    if read > self.size {
                        return Err(failed(format!("`{}` grew while being sent", self.path)));
                    }
                    sink(&chunk)?;
                }
                Err(StreamError::Closed) => return Ok(()),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(failed(format!(
                        "reading `{}` failed: {}",
                        self.path,
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
}
