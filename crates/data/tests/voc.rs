//! The VOC loader on the four fixture images and on broken datasets built
//! in temporary folders.

use std::path::PathBuf;

use slimdet_data::Error;
use slimdet_data::voc::{VOC_CLASSES, VocDataset};

fn devkit() -> PathBuf {
    slimdet_testkit::vocdevkit()
}

fn year() -> PathBuf {
    devkit().join("VOC2007")
}

#[test]
fn fixture_annotations_parse() {
    let ds = VocDataset::open(&year(), "test", None).unwrap();
    assert_eq!(ds.ids(), ["000002", "000003", "000004", "000005"]);
    assert_eq!(ds.class_names().len(), 21);
    assert_eq!(ds.class_names()[9], "chair");
    let (items, skipped) = ds.load_all(false).unwrap();
    assert_eq!(items.len(), 4);
    assert!(skipped.is_empty());
    for (id, a) in &items {
        assert!(!a.objects.is_empty(), "{id}");
        assert!(a.width > 0 && a.height > 0, "{id}");
    }

    let a = ds.annotation("000005").unwrap();
    assert_eq!((a.width, a.height), (500, 375));
    assert_eq!(a.objects.len(), 5);
    assert!(
        a.objects
            .iter()
            .all(|o| o.class_name == "chair" && o.class_index == 9)
    );
    let difficult: Vec<bool> = a.objects.iter().map(|o| o.difficult).collect();
    assert_eq!(difficult, [false, false, true, false, true]);
    assert_eq!(a.objects.iter().filter(|o| o.difficult).count(), 2);
    assert!(a.objects[2].truncated && !a.objects[0].truncated);
    // <xmin>263 <ymin>211 <xmax>324 <ymax>339, minus 1.
    assert_eq!(a.objects[0].bbox, [262.0, 210.0, 323.0, 338.0]);
}

#[test]
fn fixture_images_load() {
    let ds = VocDataset::open(&year(), "test", None).unwrap();
    for id in ds.ids() {
        let a = ds.annotation(id).unwrap();
        let img = ds.load_image(id).unwrap();
        assert_eq!((img.width, img.height), (a.width, a.height), "{id}");
    }
}

#[test]
fn devkit_folder_is_accepted() {
    let ds = VocDataset::open(&devkit(), "test", None).unwrap();
    assert!(ds.root().ends_with("VOC2007"));
    assert_eq!(ds.len(), 4);
}

/// A VOC year folder in a temp dir with the given XML files and split.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(split: &str, xmls: &[(&str, &str)], jpgs: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("VOC2007");
        for sub in ["Annotations", "ImageSets/Main", "JPEGImages"] {
            std::fs::create_dir_all(y.join(sub)).unwrap();
        }
        std::fs::write(y.join("ImageSets/Main/test.txt"), split).unwrap();
        for (id, xml) in xmls {
            std::fs::write(y.join(format!("Annotations/{id}.xml")), xml).unwrap();
        }
        for id in jpgs {
            std::fs::copy(
                year().join("JPEGImages/000002.jpg"),
                y.join(format!("JPEGImages/{id}.jpg")),
            )
            .unwrap();
        }
        Self { dir }
    }

    fn year(&self) -> PathBuf {
        self.dir.path().join("VOC2007")
    }

    fn open(&self) -> VocDataset {
        VocDataset::open(&self.year(), "test", None).unwrap()
    }
}

fn xml(objects: &str) -> String {
    format!(
        "<annotation>\n<size><width>10</width><height>8</height></size>\n{objects}</annotation>\n"
    )
}

fn object(name: &str, difficult: &str) -> String {
    format!(
        "<object>\n<name>{name}</name>\n<difficult>{difficult}</difficult>\n\
         <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5</xmax><ymax>6</ymax></bndbox>\n</object>\n"
    )
}

#[test]
fn broken_xml_names_file_and_line() {
    let broken = "<annotation>\n<size><width>10</width><height>8</height></size>\n\
                  <object>\n<name>dog</nam>\n</object>\n</annotation>\n";
    let f = Fake::new("a\n", &[("a", broken)], &["a"]);
    let err = f.open().annotation("a").unwrap_err();
    match &err {
        Error::Xml { path, line, .. } => {
            assert!(path.ends_with("Annotations/a.xml"));
            assert_eq!(*line, 4);
        }
        e => panic!("wrong error {e}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("a.xml:4:"), "{msg}");
    assert!(f.open().load_all(false).is_err());
    let (good, skipped) = f.open().load_all(true).unwrap();
    assert!(good.is_empty());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id, "a");
}

#[test]
fn bad_values_and_missing_elements_name_the_line() {
    let bad = xml(&object("dog", "0").replace("<xmin>1</xmin>", "<xmin>abc</xmin>"));
    let no_box = xml("<object>\n<name>dog</name>\n</object>\n");
    let f = Fake::new("a\nb\n", &[("a", &bad), ("b", &no_box)], &["a", "b"]);
    let ds = f.open();
    match ds.annotation("a").unwrap_err() {
        Error::BadValue {
            line,
            element,
            value,
            ..
        } => {
            assert_eq!((line, element.as_str(), value.as_str()), (6, "xmin", "abc"));
        }
        e => panic!("wrong error {e}"),
    }
    match ds.annotation("b").unwrap_err() {
        Error::MissingElement {
            line,
            element,
            path,
            ..
        } => {
            assert_eq!((line, element.as_str()), (3, "bndbox"));
            assert!(path.ends_with("b.xml"));
        }
        e => panic!("wrong error {e}"),
    }
}

#[test]
fn unknown_class_errors_or_is_skipped() {
    let text = xml(&(object("Dog ", "0") + &object("unicorn", "0")));
    let f = Fake::new("a\n", &[("a", &text)], &["a"]);
    let err = f.open().annotation("a").unwrap_err();
    match &err {
        Error::UnknownClass { path, line, class } => {
            assert!(path.ends_with("a.xml"));
            assert_eq!(class, "unicorn");
            assert_eq!(*line, 9);
        }
        e => panic!("wrong error {e}"),
    }
    let (good, skipped) = f.open().load_all(true).unwrap();
    assert!(good.is_empty());
    assert!(matches!(skipped[0].error, Error::UnknownClass { .. }));

    let ds = f.open().with_skip_unknown(true);
    let a = ds.annotation("a").unwrap();
    assert_eq!(a.objects.len(), 1);
    // Name lower-cased and trimmed, box minus 1.
    assert_eq!(a.objects[0].class_name, "dog");
    assert_eq!(a.objects[0].bbox, [0.0, 1.0, 4.0, 5.0]);
}

#[test]
fn difficult_flag_forms() {
    let text = xml(&(object("cat", "1") + &object("cat", "") + &object("cat", " 0 ")));
    let f = Fake::new("a\n", &[("a", &text)], &["a"]);
    let a = f.open().annotation("a").unwrap();
    let d: Vec<bool> = a.objects.iter().map(|o| o.difficult).collect();
    assert_eq!(d, [true, false, false]);
}

#[test]
fn missing_jpeg() {
    let text = xml(&object("cat", "0"));
    let f = Fake::new("a\nb\n", &[("a", &text), ("b", &text)], &["b"]);
    let ds = f.open();
    match ds.load_image("a").unwrap_err() {
        Error::MissingImage { path } => assert!(path.ends_with("JPEGImages/a.jpg")),
        e => panic!("wrong error {e}"),
    }
    assert!(matches!(
        ds.load_all(false).unwrap_err(),
        Error::MissingImage { .. }
    ));
    let (good, skipped) = ds.load_all(true).unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].0, "b");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id, "a");
}

#[test]
fn empty_and_missing_split() {
    let f = Fake::new("\n  \n", &[], &[]);
    match VocDataset::open(&f.year(), "test", None).unwrap_err() {
        Error::EmptySplit { path } => assert!(path.ends_with("test.txt")),
        e => panic!("wrong error {e}"),
    }
    match VocDataset::open(&f.year(), "trainval", None).unwrap_err() {
        Error::MissingSplit { path } => assert!(path.ends_with("trainval.txt")),
        e => panic!("wrong error {e}"),
    }
}

#[test]
fn root_resolution_errors() {
    let f = Fake::new("a\n", &[], &[]);
    std::fs::create_dir_all(f.dir.path().join("VOC2012/Annotations")).unwrap();
    let err = VocDataset::open(f.dir.path(), "test", None).unwrap_err();
    assert!(matches!(err, Error::NotVocRoot { .. }), "{err}");
    assert!(err.to_string().contains("VOC2007, VOC2012"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = VocDataset::open(empty.path(), "test", None).unwrap_err();
    assert!(matches!(err, Error::NotVocRoot { .. }), "{err}");
    let err = VocDataset::open(&empty.path().join("nope"), "test", None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn class_lists() {
    let text = xml(&object("face", "0"));
    let f = Fake::new("a\n", &[("a", &text)], &["a"]);
    // Default list: face is unknown.
    assert_eq!(f.open().class_names().len(), VOC_CLASSES.len());
    // labels.txt, comma separated, spaces removed, BACKGROUND prepended.
    std::fs::write(f.year().join("labels.txt"), "face, hand\nfoot\n").unwrap();
    let ds = f.open();
    assert_eq!(ds.class_names(), ["BACKGROUND", "face", "hand", "foot"]);
    assert_eq!(ds.annotation("a").unwrap().objects[0].class_index, 1);
    // A --classes file in model-labels form (BACKGROUND first, one per line).
    let cls = f.dir.path().join("classes.txt");
    std::fs::write(&cls, "BACKGROUND\nhand\nface\n").unwrap();
    let ds = VocDataset::open_with_class_file(&f.year(), "test", &cls).unwrap();
    assert_eq!(ds.class_names(), ["BACKGROUND", "hand", "face"]);
    assert_eq!(ds.annotation("a").unwrap().objects[0].class_index, 2);
    // Duplicates and empty lists are errors.
    std::fs::write(&cls, "a,b,a").unwrap();
    let err = VocDataset::open_with_class_file(&f.year(), "test", &cls).unwrap_err();
    assert!(matches!(err, Error::DuplicateClass { .. }), "{err}");
    std::fs::write(&cls, " ,\n").unwrap();
    let err = VocDataset::open_with_class_file(&f.year(), "test", &cls).unwrap_err();
    assert!(matches!(err, Error::EmptyClassList { .. }), "{err}");
    let err = VocDataset::open(&f.year(), "test", Some(vec![])).unwrap_err();
    assert!(matches!(err, Error::EmptyClassList { .. }), "{err}");
}

fn annotation_with_objects(n: usize) -> String {
    let mut x = String::from("<annotation><size><width>10</width><height>10</height></size>");
    for _ in 0..n {
        x.push_str(
            "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>\
             <xmax>5</xmax><ymax>5</ymax></bndbox></object>",
        );
    }
    x.push_str("</annotation>");
    x
}

/// Annotations with more objects than any dataset has are refused with the limit named:
/// 20,000 objects by the object count, 10^6 by the parser's node budget (before the
/// whole document is built).
#[test]
fn object_counts_beyond_the_limits_are_refused() {
    use slimdet_data::voc::{MAX_OBJECTS, default_classes, parse_annotation_text};
    let classes = default_classes();
    let path = std::path::Path::new("many.xml");
    let ok = parse_annotation_text(&annotation_with_objects(3), path, &classes, false).unwrap();
    assert_eq!(ok.objects.len(), 3);
    for n in [2 * MAX_OBJECTS, 1_000_000] {
        let err =
            parse_annotation_text(&annotation_with_objects(n), path, &classes, false).unwrap_err();
        assert!(matches!(err, Error::Limit { .. }), "{n}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("many.xml") && msg.contains("refused"), "{msg}");
    }
}
