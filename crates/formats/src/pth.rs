//! PyTorch `.pth` files: the zip container (PyTorch >= 1.6) and the legacy
//! stream of pickles (PyTorch < 1.6).
//!
//! Both run the state-dict pickle through the safe VM in [`crate::pickle`],
//! which yields tensors as references into storages; this module finds each
//! storage's bytes (zip entry `<archive>/data/<key>`, or the legacy data
//! section after the pickles) and materialises contiguous tensors in the
//! state dict's own order. The format is chosen by content, not file name.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use zip::ZipArchive;

use crate::convert::materialize;
use crate::error::{FormatError, Result};
use crate::pickle::unpickle;
use crate::pickle::value::{StorageKind, TensorRef, Value};
use crate::{NamedTensor, StateDict};

/// The legacy format's first pickle: `torch.serialization.MAGIC_NUMBER`.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The legacy format's second pickle.
const LEGACY_PROTOCOL: i128 = 1001;
/// Keys under which training checkpoints commonly nest the state dict.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model", "net"];

/// Loads a `.pth` held in memory; `path` is used in errors only.
pub(crate) fn load_pth_at(bytes: &[u8], path: &Path) -> Result<StateDict> {
    match bytes.first() {
        None => Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: "file signature (the file is empty)".into(),
            offset: 0,
        }),
        Some(_) if crate::looks_like_safetensors(bytes) => Err(FormatError::BadMagic {
            path: path.to_path_buf(),
            detail: "this is a safetensors file, not a .pth (use load_state_dict)".into(),
        }),
        Some(b'P') if bytes.starts_with(b"PK") => load_zip(bytes, path),
        Some(0x80) => load_legacy(bytes, path),
        Some(_) => Err(FormatError::BadMagic {
            path: path.to_path_buf(),
            detail: "neither a zip archive nor a legacy torch.save pickle stream".into(),
        }),
    }
}

/// A tensor's name and its storage reference, in state-dict order.
type TensorRefs = Vec<(String, Rc<TensorRef>)>;

/// Extracts `name -> tensor` from the unpickled top-level object.
fn collect_tensors(top: &Value, path: &Path) -> Result<TensorRefs> {
    let not_sd = |reason: String| FormatError::NotAStateDict {
        path: path.to_path_buf(),
        reason,
    };
    let Value::Dict(dict) = top else {
        return Err(not_sd(format!(
            "the top-level object is a {}, not a dict",
            top.type_name()
        )));
    };
    let wrapped = WRAPPER_KEYS.iter().find_map(|w| {
        dict.items.iter().find_map(|(k, v)| match v {
            Value::Dict(inner) if k.as_str() == Some(w) => Some(inner),
            _ => None,
        })
    });
    let (items, lenient) = match wrapped {
        Some(inner) => (&inner.items, true),
        None => (&dict.items, false),
    };
    let mut out: TensorRefs = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (k, v) in items {
        let (Some(name), Value::Tensor(t)) = (k.as_str(), v) else {
            if lenient {
                continue;
            }
            let key = k
                .as_str()
                .map_or_else(|| format!("a {} key", k.type_name()), |s| format!("`{s}`"));
            return Err(not_sd(format!(
                "entry {key} holds a {}, not a tensor",
                v.type_name()
            )));
        };
        match seen.get(name) {
            Some(&i) => out[i].1 = Rc::clone(t), // Python dict semantics: last write wins
            None => {
                seen.insert(name.to_string(), out.len());
                out.push((name.to_string(), Rc::clone(t)));
            }
        }
    }
    Ok(out)
}

fn zip_err(path: &Path) -> impl Fn(zip::result::ZipError) -> FormatError + '_ {
    move |source| FormatError::Zip {
        path: path.to_path_buf(),
        source,
    }
}

/// Bytes a zip `.pth` may decompress to, in total: `ZIP_EXPANSION` times the file plus
/// `ZIP_SLACK`. `torch.save` stores its entries uncompressed (about 1x); weights recompressed
/// with deflate shrink by up to ~13x when they are few-valued (the pytorch-ssd zoo goldens'
/// ternary weights: 12.6x) or mostly zero, so anything far above 32x is a decompression bomb
/// (a deflated run of zeros expands ~1000x).
const ZIP_EXPANSION: u64 = 32;
const ZIP_SLACK: u64 = 16 << 20;

/// What is left of a zip file's decompression budget.
struct ZipBudget(u64);

impl ZipBudget {
    fn for_file(len: usize) -> ZipBudget {
        ZipBudget(
            (len as u64)
                .saturating_mul(ZIP_EXPANSION)
                .saturating_add(ZIP_SLACK),
        )
    }
}

/// Reads a whole zip entry; the read is capped by the entry's declared size, and the
/// declared sizes of all entries read must fit the file's [`ZipBudget`].
fn read_entry(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    path: &Path,
    budget: &mut ZipBudget,
) -> Result<Vec<u8>> {
    let entry = zip.by_name(name).map_err(zip_err(path))?;
    let declared = entry.size();
    if declared > budget.0 {
        return Err(FormatError::Limit {
            path: path.to_path_buf(),
            reason: format!(
                "zip entry `{name}` claims {declared} bytes uncompressed, more than the \
                 {} bytes left of this file's budget ({ZIP_EXPANSION}x its size + {} MiB): \
                 a decompression bomb or a corrupt archive",
                budget.0,
                ZIP_SLACK >> 20
            ),
        });
    }
    budget.0 -= declared;
    let mut buf = Vec::new();
    entry
        .take(declared)
        .read_to_end(&mut buf)
        .map_err(|source| FormatError::Io {
            path: path.to_path_buf(),
            op: "reading a zip entry",
            source,
        })?;
    Ok(buf)
}

fn load_zip(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(zip_err(path))?;
    let mut budget = ZipBudget::for_file(bytes.len());
    let pkl_name = zip
        .file_names()
        .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| (n.len(), n.to_string()))
        .map(str::to_string)
        .ok_or_else(|| FormatError::NotAStateDict {
            path: path.to_path_buf(),
            reason: "zip archive has no `<archive>/data.pkl` entry (not a torch.save file)".into(),
        })?;
    let prefix = pkl_name
        .strip_suffix("data.pkl")
        .unwrap_or_default()
        .to_string();
    let big_endian = match zip.index_for_name(&format!("{prefix}byteorder")) {
        Some(_) => {
            read_entry(&mut zip, &format!("{prefix}byteorder"), path, &mut budget)?.trim_ascii()
                == b"big"
        }
        None => false,
    };
    let pkl = read_entry(&mut zip, &pkl_name, path, &mut budget)?;
    let pkl_path = PathBuf::from(format!("{} (zip entry {pkl_name})", path.display()));
    let top = unpickle(&pkl, 0, &pkl_path)?.value;
    let refs = collect_tensors(&top, path)?;

    // Storages used by several tensors are read once.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, t) in &refs {
        *uses.entry(t.storage.key.as_str()).or_default() += 1;
    }
    let mut cache: HashMap<String, Rc<Vec<u8>>> = HashMap::new();
    let mut sd = StateDict {
        tensors: Vec::with_capacity(refs.len()),
    };
    for (name, t) in &refs {
        let key = &t.storage.key;
        let data = match cache.get(key) {
            Some(d) => Rc::clone(d),
            None => {
                let entry = format!("{prefix}data/{key}");
                if zip.index_for_name(&entry).is_none() {
                    return Err(FormatError::MissingStorage {
                        path: path.to_path_buf(),
                        key: key.clone(),
                        detail: format!(
                            "tensor `{name}` needs zip entry `{entry}`, which is absent"
                        ),
                    });
                }
                let d = Rc::new(read_entry(&mut zip, &entry, path, &mut budget)?);
                if uses.get(key.as_str()).copied().unwrap_or(0) > 1 {
                    cache.insert(key.clone(), Rc::clone(&d));
                }
                d
            }
        };
        let (shape, data) = materialize(path, name, t, &data, big_endian)?;
        sd.push(NamedTensor {
            name: name.clone(),
            shape,
            data,
        });
    }
    Ok(sd)
}

fn load_legacy(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let malformed = |offset: usize, reason: &str| FormatError::MalformedPickle {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.to_string(),
    };
    let magic = unpickle(bytes, 0, path)?;
    if magic.value.as_int() != Some(LEGACY_MAGIC) {
        return Err(FormatError::BadMagic {
            path: path.to_path_buf(),
            detail: "first pickle is not torch.save's magic number 0x1950a86a20f9469cfc6c".into(),
        });
    }
    let proto = unpickle(bytes, magic.end, path)?;
    if proto.value.as_int() != Some(LEGACY_PROTOCOL) {
        return Err(FormatError::UnsupportedProtocol {
            path: path.to_path_buf(),
            what: "legacy torch.save protocol",
            version: proto.value.as_int().unwrap_or(-1),
        });
    }
    let sys_info = unpickle(bytes, proto.end, path)?;
    let sys_info_end = sys_info.end;
    let Value::Dict(sys_info) = sys_info.value else {
        return Err(malformed(proto.end, "sys_info is not a dict"));
    };
    // Only byte order matters: LongStorage is 8 bytes even where type_sizes says long=4.
    let big_endian = sys_info
        .items
        .iter()
        .any(|(k, v)| k.as_str() == Some("little_endian") && matches!(v, Value::Bool(false)));
    let state = unpickle(bytes, sys_info_end, path)?;
    let keys_pos = state.end;
    let key_list = unpickle(bytes, keys_pos, path)?;
    let mut pos = key_list.end;
    let keys = key_list
        .value
        .as_seq()
        .ok_or_else(|| malformed(keys_pos, "storage key list is not a list"))?;
    let refs = collect_tensors(&state.value, path)?;

    // Element sizes come from the persistent ids, including storages of
    // tensors we skip (e.g. optimizer state next to a wrapped state dict).
    let mut kinds: HashMap<&str, StorageKind> = HashMap::new();
    for s in &state.storages {
        kinds.entry(s.key.as_str()).or_insert(s.kind);
    }
    // Data section: for each key, i64 LE element count then the raw elements.
    let mut regions: HashMap<&str, &[u8]> = HashMap::with_capacity(keys.len());
    for key in keys {
        let key = key
            .as_str()
            .ok_or_else(|| malformed(keys_pos, "storage key is not a string"))?;
        let truncated = |what: String, offset: usize| FormatError::Truncated {
            path: path.to_path_buf(),
            what,
            offset: offset as u64,
        };
        let count = bytes
            .get(pos..pos.saturating_add(8))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_le_bytes)
            .ok_or_else(|| truncated(format!("element count of storage `{key}`"), pos))?;
        let kind = kinds.get(key).copied().ok_or_else(|| FormatError::MissingStorage {
            path: path.to_path_buf(),
            key: key.to_string(),
            detail: "listed in the data section but used by no tensor, so its element size is unknown"
                .into(),
        })?;
        let nbytes = u64::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(kind.elem_size() as u64))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed(pos, "invalid storage element count"))?;
        let start = pos + 8;
        let region = start
            .checked_add(nbytes)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| {
                truncated(format!("data of storage `{key}` ({count} elements)"), start)
            })?;
        regions.insert(key, region);
        pos = start + nbytes;
    }

    let mut sd = StateDict {
        tensors: Vec::with_capacity(refs.len()),
    };
    for (name, t) in &refs {
        let key = t.storage.key.as_str();
        let mut region = *regions
            .get(key)
            .ok_or_else(|| FormatError::MissingStorage {
                path: path.to_path_buf(),
                key: key.to_string(),
                detail: format!("tensor `{name}` uses it but the data section does not list it"),
            })?;
        if let Some((off, size)) = t.storage.view {
            let es = t.storage.kind.elem_size() as u64;
            let window = off
                .checked_add(size)
                .and_then(|end| end.checked_mul(es))
                .and_then(|end| usize::try_from(end).ok())
                .and_then(|end| region.get(usize::try_from(off * es).ok()?..end));
            region = window.ok_or_else(|| FormatError::OutOfBounds {
                path: path.to_path_buf(),
                tensor: name.clone(),
                detail: format!("storage view [{off}, +{size}) exceeds storage `{key}`"),
            })?;
        }
        let (shape, data) = materialize(path, name, t, region, big_endian)?;
        sd.push(NamedTensor {
            name: name.clone(),
            shape,
            data,
        });
    }
    Ok(sd)
}
