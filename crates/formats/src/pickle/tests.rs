//! Opcode-level tests of the safe pickle VM on hand-built pickles.

use super::value::{Global, StorageKind, Value};
use super::{MAX_DEPTH, unpickle};
use crate::error::FormatError;
use std::path::Path;

fn run(bytes: &[u8]) -> Result<Value, FormatError> {
    unpickle(bytes, 0, Path::new("t.pkl")).map(|u| u.value)
}

/// SHORT_BINUNICODE
fn s(text: &str) -> Vec<u8> {
    let mut v = vec![0x8c, text.len() as u8];
    v.extend_from_slice(text.as_bytes());
    v
}

fn items(v: &Value) -> &[Value] {
    v.as_seq().expect("sequence")
}

#[test]
fn integers_of_every_width() {
    let v = run(b"\x80\x02(K\xffM\x34\x12J\xfe\xff\xff\xff\x8a\x01\xff\x8a\x00t.").unwrap();
    let ints: Vec<_> = items(&v).iter().map(|x| x.as_int().unwrap()).collect();
    assert_eq!(ints, vec![255, 0x1234, -2, -1, 0]);
    // torch.save's magic number is wider than i64.
    let v = run(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.").unwrap();
    assert_eq!(v.as_int(), Some(0x1950a86a20f9469cfc6c));
}

#[test]
fn floats_bools_none_and_strings() {
    let mut p = b"\x80\x02(G\x3f\xf8\x00\x00\x00\x00\x00\x00\x88\x89N".to_vec();
    p.extend(s("hi"));
    p.extend(b"X\x03\x00\x00\x00abcC\x02xyt.");
    let v = run(&p).unwrap();
    let it = items(&v);
    assert!(matches!(it[0], Value::Float(f) if f == 1.5));
    assert!(matches!(it[1], Value::Bool(true)) && matches!(it[2], Value::Bool(false)));
    assert!(matches!(it[3], Value::None));
    assert_eq!((it[4].as_str(), it[5].as_str()), (Some("hi"), Some("abc")));
    assert!(matches!(&it[6], Value::Bytes(b) if &b[..] == b"xy"));
}

#[test]
fn containers_and_memo() {
    // d = {}; memo[0] = d; d.update(a=[1, 2], b=(memo[0]-free tuple)); list via APPEND
    let mut p = b"\x80\x02}q\x00(".to_vec();
    p.extend(s("a"));
    p.extend(b"]q\x01(K\x01K\x02eK\x03a");
    p.extend(s("b"));
    p.extend(b"K\x07K\x08\x86u");
    p.extend(s("c"));
    p.extend(b"h\x01s.");
    let v = run(&p).unwrap();
    let Value::Dict(d) = v else {
        panic!("dict expected")
    };
    assert_eq!(d.items.len(), 3);
    let list: Vec<_> = items(&d.items[0].1)
        .iter()
        .map(|x| x.as_int().unwrap())
        .collect();
    assert_eq!(list, vec![1, 2, 3]);
    assert_eq!(items(&d.items[1].1).len(), 2);
    // memo[1] was stored before the appends; like Python, it sees them.
    assert_eq!(items(&d.items[2].1).len(), 3);
}

#[test]
fn protocol4_frame_memoize_stack_global() {
    let mut p = b"\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00".to_vec();
    p.extend(s("collections"));
    p.push(0x94);
    p.extend(s("OrderedDict"));
    p.extend(b"\x94\x93\x94)R\x94.");
    let v = run(&p).unwrap();
    assert!(matches!(v, Value::Dict(ref d) if d.items.is_empty()));
}

#[test]
fn rebuild_tensor_with_persistent_id() {
    let mut p = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
    p.extend(s("storage"));
    p.extend(b"ctorch\nLongStorage\n");
    p.extend(s("7"));
    p.extend(s("cpu"));
    p.extend(b"K\x06tQK\x01K\x02K\x03\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)RtR.");
    let v = run(&p).unwrap();
    let Value::Tensor(t) = v else {
        panic!("tensor expected, got {v:?}")
    };
    assert_eq!(
        (t.storage.kind, t.storage.key.as_str(), t.storage.numel),
        (StorageKind::I64, "7", 6)
    );
    assert_eq!(
        (t.offset, t.size.clone(), t.stride.clone()),
        (1, vec![2, 3], vec![3, 1])
    );
}

#[test]
fn allowed_globals_resolve() {
    let v = run(b"\x80\x02ctorch\nHalfStorage\n.").unwrap();
    assert!(matches!(
        v,
        Value::Global(Global::Storage(StorageKind::F16))
    ));
}

#[test]
fn forbidden_globals_are_refused_before_anything_runs() {
    let err = run(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.").unwrap_err();
    let FormatError::ForbiddenGlobal { module, name, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((module.as_str(), name.as_str()), ("os", "system"));
    let msg = err.to_string();
    assert!(
        msg.contains("t.pkl") && msg.contains("os") && msg.contains("system"),
        "{msg}"
    );

    let mut p = b"\x80\x04".to_vec();
    p.extend(s("builtins"));
    p.extend(s("eval"));
    p.extend(b"\x93.");
    assert!(matches!(run(&p), Err(FormatError::ForbiddenGlobal { .. })));
    let err = run(b"\x80\x02ctorch.storage\n_load_from_bytes\n.").unwrap_err();
    assert!(matches!(err, FormatError::ForbiddenGlobal { .. }), "{err}");
}

#[test]
fn unknown_opcode_reports_offset() {
    let err = run(b"\x80\x02K\x01\xff.").unwrap_err();
    match err {
        FormatError::MalformedPickle {
            offset, ref reason, ..
        } => {
            assert_eq!(offset, 4);
            assert!(reason.contains("0xff"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn truncation_and_underflow_are_errors() {
    assert!(matches!(
        run(b"\x80\x02X\xff\x00\x00\x00ab"),
        Err(FormatError::Truncated { .. })
    ));
    assert!(matches!(
        run(b"\x80\x02K"),
        Err(FormatError::Truncated { .. })
    ));
    assert!(matches!(run(b""), Err(FormatError::Truncated { .. })));
    assert!(matches!(
        run(b"\x80\x02."),
        Err(FormatError::MalformedPickle { .. })
    ));
    assert!(matches!(
        run(b"\x80\x02(K\x01s."),
        Err(FormatError::MalformedPickle { .. })
    ));
    assert!(matches!(
        run(b"\x80\x02h\x05."),
        Err(FormatError::MalformedPickle { .. })
    ));
    assert!(matches!(
        run(b"\x80\x09."),
        Err(FormatError::UnsupportedProtocol { version: 9, .. })
    ));
}

#[test]
fn deep_nesting_is_capped() {
    let n = 100_000;
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b'(', n));
    p.push(b')');
    p.extend(std::iter::repeat_n(b't', n));
    p.push(b'.');
    let err = run(&p).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("deeper than {MAX_DEPTH}")),
        "{err}"
    );
}

#[test]
fn copy_on_write_work_is_capped() {
    // A 3000-item list in the memo, then fetched, duplicated and appended to
    // 2000 times: the second stack reference forces a copy each time.
    let mut p = b"\x80\x02]q\x00(".to_vec();
    p.extend(std::iter::repeat_n(b'N', 3000));
    p.push(b'e');
    for _ in 0..2000 {
        p.extend(b"h\x002Na00");
    }
    p.push(b'.');
    let Err(err) = run(&p) else {
        panic!("hostile copy-on-write pickle was accepted")
    };
    assert!(err.to_string().contains("copy-on-write"), "{err}");
}
