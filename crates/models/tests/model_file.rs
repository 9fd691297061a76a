//! The model file carries its graph (format version 2, `slimdet_models::file`): a file
//! loads without any architecture name, also when no graph builder could make its
//! network; version 1 files still load; an unknown op, a newer version or a head that
//! disagrees with the graph is refused naming the file and the cause.

use std::collections::BTreeMap;
use std::path::Path;

use slimdet_models::{Detector, weights};

fn mb2() -> Detector {
    Detector::load(&slimdet_testkit::mb2_model(), None).unwrap()
}

/// Saves `det`'s weights under `meta` (edited by the caller).
fn save_with(det: &Detector, meta: &BTreeMap<String, String>, path: &Path) {
    slimdet_formats::save_safetensors(path, &weights::to_state_dict(&det.graph), meta).unwrap();
}

fn load_err(path: &Path) -> String {
    Detector::load(path, None).unwrap_err().to_string()
}

#[test]
fn the_file_is_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let det = mb2();
    let meta = det.metadata();
    assert_eq!(meta["slimdet.model.version"], "2");
    assert!(meta.contains_key("slimdet.graph") && meta.contains_key("slimdet.head"));

    // Every node renamed (and its state_dict keys with it): no builder recognises the
    // keys any more, and no architecture is named anywhere.
    let mut renamed = det.clone();
    for n in &mut renamed.graph.nodes {
        n.name = format!("net.{}", n.name.replace('.', "_"));
    }
    renamed.name = "my-detector".into();
    let p = dir.path().join("renamed.safetensors");
    let mut meta = renamed.metadata();
    meta.remove("slimdet.arch");
    meta.remove("slimdet.classes");
    save_with(&renamed, &meta, &p);
    let back = Detector::load(&p, None).unwrap();
    assert_eq!(back.graph, renamed.graph, "graph and weights");
    assert_eq!(back.priors, det.priors);
    assert_eq!(back.config, det.config);
    assert_eq!(back.class_names, det.class_names);
    assert_eq!(back.name, "my-detector");

    // The same network as a version-1 file (architecture from the keys) fails: the
    // test can fail when the graph is not read from the file.
    let mut v1 = BTreeMap::new();
    v1.insert("slimdet.classes".to_string(), det.class_names.join(","));
    let p1 = dir.path().join("renamed-v1.safetensors");
    save_with(&renamed, &v1, &p1);
    assert!(load_err(&p1).contains("cannot recognise"));

    // A version-1 file of the original keys still loads, to the same model.
    let p1 = dir.path().join("v1.safetensors");
    save_with(&det, &v1, &p1);
    let old = Detector::load(&p1, None).unwrap();
    assert_eq!(old.graph, det.graph);
    assert_eq!(old.name, "mb2-ssd-lite");

    // An --arch hint must agree with the file.
    let e = Detector::load(&p, Some("ultraface-slim"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ultraface-slim") && e.contains("my-detector"),
        "{e}"
    );
}

/// A model of almost only zeros is far smaller than one byte per parameter in the sparse
/// layout; the bound on declared parameters must still admit it.
#[test]
fn a_very_sparse_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut det = mb2();
    for (k, t) in det.graph.params_mut() {
        if k.ends_with(".weight") {
            t.data_mut().iter_mut().skip(1).for_each(|v| *v = 0.0);
        }
    }
    let p = dir.path().join("sparse.safetensors");
    det.save_safetensors_sparse(&p).unwrap();
    let params: usize = det.graph.params().iter().map(|(_, t)| t.numel()).sum();
    let bytes = std::fs::metadata(&p).unwrap().len() as usize;
    assert!(bytes < params, "{bytes} bytes for {params} parameters");
    assert_eq!(Detector::load(&p, None).unwrap().graph, det.graph);
}

#[test]
fn bad_graph_metadata_is_refused_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let det = mb2();
    let edit = |name: &str, f: &dyn Fn(&mut BTreeMap<String, String>)| {
        let mut meta = det.metadata();
        f(&mut meta);
        let p = dir.path().join(format!("{name}.safetensors"));
        save_with(&det, &meta, &p);
        let e = load_err(&p);
        assert!(e.contains(&format!("{name}.safetensors")), "{name}: {e}");
        e
    };
    let replace = |key: &'static str, from: &'static str, to: &'static str| {
        move |m: &mut BTreeMap<String, String>| {
            let v = m.get_mut(key).unwrap();
            assert!(v.contains(from), "{key} has no {from}");
            *v = v.replacen(from, to, 1);
        }
    };
    let e = edit(
        "unknown-op",
        &replace("slimdet.graph", r#""op":"Concat""#, r#""op":"Frobnicate""#),
    );
    assert!(e.contains("Frobnicate"), "{e}");
    let e = edit("newer", &|m| {
        m.insert("slimdet.model.version".into(), "7".into());
    });
    assert!(e.contains("version 7") && e.contains("newer"), "{e}");
    let e = edit("no-head", &|m| {
        m.remove("slimdet.head");
    });
    assert!(e.contains("slimdet.head"), "{e}");
    let e = edit(
        "unknown-act",
        &replace("slimdet.graph", r#""relu6""#, r#""gelu""#),
    );
    assert!(e.contains("gelu"), "{e}");
    let e = edit(
        "dangling",
        &replace("slimdet.graph", r#""inputs":[0]"#, r#""inputs":[99999]"#),
    );
    assert!(e.contains("reads value 99999"), "{e}");
    let e = edit("classes", &replace("slimdet.head", r#""BACKGROUND","#, ""));
    assert!(e.contains("20 classes"), "{e}");
    let e = edit(
        "input",
        &replace("slimdet.head", r#""input":[300,300]"#, r#""input":[300,2]"#),
    );
    assert!(e.contains("does not fit") || e.contains("priors"), "{e}");
    // A declared weight far larger than the file: refused before it is allocated.
    let e = edit(
        "huge",
        &replace(
            "slimdet.graph",
            r#""weight":[32,3,3,3]"#,
            r#""weight":[16777216,16777216,3,3]"#,
        ),
    );
    assert!(e.contains("parameter values"), "{e}");
    let e = edit(
        "stride",
        &replace(
            "slimdet.graph",
            r#""stride":[2,2]"#,
            r#""stride":[99999,2]"#,
        ),
    );
    assert!(e.contains("stride, padding or dilation"), "{e}");
    // A declared parameter the file lacks: the strict state_dict report.
    let e = edit(
        "bias",
        &replace(
            "slimdet.graph",
            r#""weight":[32,3,3,3],"bias":false"#,
            r#""weight":[32,3,3,3],"bias":true"#,
        ),
    );
    assert!(e.contains("missing key: base_net.0.0.bias"), "{e}");
    // Declared shapes that do not chain: shape inference names the node.
    let e = edit(
        "shape",
        &replace(
            "slimdet.graph",
            r#""weight":[32,3,3,3]"#,
            r#""weight":[16,3,3,3]"#,
        ),
    );
    assert!(
        e.contains("base_net.0.1") && e.contains("32 channels"),
        "{e}"
    );
}

/// A reshape whose declared sizes multiply past `usize` is an error, not an overflow.
#[test]
fn overflowing_reshape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let det = mb2();
    let mut meta = det.metadata();
    let g = meta.get_mut("slimdet.graph").unwrap();
    let from = r#""shape":[0,-1,21]"#;
    assert!(g.contains(from));
    *g = g.replacen(
        from,
        r#""shape":[16777216,16777216,16777216,16777216,-1]"#,
        1,
    );
    let p = dir.path().join("reshape.safetensors");
    save_with(&det, &meta, &p);
    let e = load_err(&p);
    assert!(e.contains("overflows"), "{e}");
}

/// The new operators (max pooling with ceil mode, h-swish, squeeze-and-excite) and a
/// per-channel input mean survive the file: VGG16-SSD and MobileNetV3-SSD-Lite saved as
/// version-2 files load, from the file alone, to the same graph and configuration.
#[test]
fn new_operators_and_a_per_channel_mean_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for net in ["vgg16-ssd", "mb3-small-ssd-lite", "sq-ssd-lite"] {
        let det = Detector::load(
            &slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth")),
            None,
        )
        .unwrap();
        let p = dir.path().join(format!("{net}.safetensors"));
        save_with(&det, &det.metadata(), &p);
        let back = Detector::load(&p, None).unwrap();
        assert_eq!(back.graph, det.graph, "{net}: graph");
        assert_eq!(back.config, det.config, "{net}: configuration");
        assert_eq!(back.priors, det.priors, "{net}: priors");
    }
    let vgg = Detector::load(&dir.path().join("vgg16-ssd.safetensors"), None).unwrap();
    assert_eq!(vgg.config.mean, [123.0, 117.0, 104.0]);
    assert_eq!(vgg.config.std, 1.0);
}

/// A hostile description of the new operators is refused naming the file and the cause:
/// a pooling window past the geometry bound, one larger than its input, a padding over
/// half the window, and a squeeze-and-excite multiply of mismatched shapes.
#[test]
fn bad_pooling_and_gating_descriptions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (net, from, to, cause) in [
        (
            "sq-ssd-lite",
            r#""kernel":[3,3]"#,
            r#""kernel":[99999,3]"#,
            "pooling window",
        ),
        (
            "sq-ssd-lite",
            r#""kernel":[3,3]"#,
            r#""kernel":[200,3]"#,
            "does not fit",
        ),
        (
            "sq-ssd-lite",
            r#""kernel":[3,3],"stride":[2,2],"pad":[0,0]"#,
            r#""kernel":[3,3],"stride":[2,2],"pad":[2,0]"#,
            "does not fit",
        ),
        (
            "mb3-small-ssd-lite",
            r#""inputs":[11,18]"#,
            r#""inputs":[11,11]"#,
            "channel multiply",
        ),
    ] {
        let det = Detector::load(
            &slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth")),
            None,
        )
        .unwrap();
        let mut meta = det.metadata();
        let g = meta.get_mut("slimdet.graph").unwrap();
        assert!(g.contains(from), "{net}: no {from}");
        *g = g.replacen(from, to, 1);
        let p = dir.path().join(format!("{net}.safetensors"));
        save_with(&det, &meta, &p);
        let e = load_err(&p);
        assert!(
            e.contains(&format!("{net}.safetensors")) && e.contains(cause),
            "{to}: {e}"
        );
    }
}
