//! `VocDataset::for_classes`: a model's classes matched by name (case-insensitive) with the
//! dataset's, objects of the other classes skipped; a class the dataset lacks is an error
//! naming the folder and the class.

use std::path::PathBuf;

use slimdet_data::Error;
use slimdet_data::voc::VocDataset;

fn voc() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/voc2007"
    ))
}

#[test]
fn model_classes_are_matched_by_name_and_others_skipped() {
    let ds = VocDataset::open(&voc(), "test_original", None).unwrap();
    let sub = ds
        .for_classes(&["BACKGROUND".into(), "Person".into()])
        .unwrap();
    assert_eq!(sub.class_names(), ["BACKGROUND", "person"]);
    assert!(sub.skip_unknown());
    // 000001 holds a dog and a person: only the person is kept, as class 1.
    let a = sub.annotation("000001").unwrap();
    assert!(!a.objects.is_empty());
    assert!(
        a.objects
            .iter()
            .all(|o| o.class_index == 1 && o.class_name == "person")
    );
}

#[test]
fn a_class_the_dataset_lacks_is_an_error_naming_it() {
    let ds = VocDataset::open(&voc(), "test_original", None).unwrap();
    let e = ds
        .for_classes(&["BACKGROUND".into(), "person".into(), "traffic light".into()])
        .unwrap_err();
    assert!(matches!(e, Error::ClassesNotInDataset { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("traffic light") && msg.contains("voc2007"),
        "{msg}"
    );
    assert!(
        ds.for_classes(&["BACKGROUND".into()]).is_err(),
        "no class at all"
    );
}
