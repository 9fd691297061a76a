//! Detection files: the golden `detections.csv`, CSV/JSON edge cases,
//! round trips, and the micro VOC split evaluated end to end.

use std::path::{Path, PathBuf};

use slimdet_data::voc::{VocDataset, default_classes};
use slimdet_eval::detections_io::{
    image_key, parse_csv, parse_json, read_csv, read_detections, write_csv, write_json,
};
use slimdet_eval::{
    ApMetric, Detection, Error, NanPolicy, RowProblem, evaluate, ground_truth_from_voc,
};

fn golden_csv() -> PathBuf {
    slimdet_testkit::path("golden/mb2-ssd-lite-voc21-seed0/detections.csv")
}

fn voc_dir() -> PathBuf {
    slimdet_testkit::voc2007()
}

fn classes() -> Vec<String> {
    default_classes()
}

#[test]
fn golden_csv_parses() {
    let r = read_csv(&golden_csv(), &classes(), false).unwrap();
    assert_eq!(r.detections.len(), 6907);
    assert!(r.skipped.is_empty());
    let d = &r.detections[0];
    assert_eq!(d.image, "000002");
    assert_eq!(d.class_index, 1);
    assert_eq!(d.score, 0.372653);
    assert_eq!(d.bbox, [64.6105, 403.0148, 132.4164, 545.1995]);
    let imgs: std::collections::BTreeSet<&str> =
        r.detections.iter().map(|d| d.image.as_str()).collect();
    assert_eq!(
        imgs.into_iter().collect::<Vec<_>>(),
        ["000002", "000003", "000004", "000005"]
    );
    // Same through the extension dispatch.
    let r2 = read_detections(&golden_csv(), &classes(), false).unwrap();
    assert_eq!(r2.detections, r.detections);
}

#[test]
fn image_keys() {
    assert_eq!(image_key("000002"), "000002");
    assert_eq!(image_key("000002.jpg"), "000002");
    assert_eq!(image_key("VOC2007/JPEGImages/000002.JPG"), "000002");
    assert_eq!(image_key(r"C:\data\000002.png"), "000002");
    assert_eq!(image_key("img.v2"), "img.v2");
    assert_eq!(image_key(" a/b "), "b");
}

const BAD_CSV: &str = "image,label,score,x1,y1,x2,y2\n\
    a.jpg,cat,0.5,1,2,3,4\n\
    a,unicorn,0.5,1,2,3,4\n\
    a,cat,high,1,2,3,4\n\
    a,cat,0.5,1,2\n\
    a,cat,NaN,1,2,3,4\n\
    ,cat,0.5,1,2,3,4\n\
    b,dog,0.25,1,2,3,4\n";

#[test]
fn bad_csv_rows_error_with_line() {
    let err = parse_csv(BAD_CSV.as_bytes(), Path::new("d.csv"), &classes(), false).unwrap_err();
    match &err {
        Error::BadRow {
            path,
            line,
            problem: RowProblem::UnknownLabel(l),
        } => {
            assert_eq!(
                (path.as_path(), *line, l.as_str()),
                (Path::new("d.csv"), 3, "unicorn")
            );
        }
        e => panic!("wrong error {e}"),
    }
    assert!(
        err.to_string().starts_with("d.csv:3: unknown label"),
        "{err}"
    );
}

#[test]
fn bad_csv_rows_skipped_and_counted() {
    let r = parse_csv(BAD_CSV.as_bytes(), Path::new("d.csv"), &classes(), true).unwrap();
    assert_eq!(r.detections.len(), 2);
    assert_eq!(r.detections[0].image, "a");
    assert_eq!(r.detections[1].class_index, 12);
    let lines: Vec<u64> = r.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    assert!(matches!(
        r.skipped[1].problem,
        RowProblem::BadNumber {
            column: "score",
            ..
        }
    ));
    assert!(matches!(
        r.skipped[2].problem,
        RowProblem::FieldCount {
            expected: 7,
            got: 5
        }
    ));
    assert!(matches!(r.skipped[3].problem, RowProblem::BadNumber { .. }));
    assert!(matches!(r.skipped[4].problem, RowProblem::EmptyImage));
}

#[test]
fn csv_header_problems() {
    let err = parse_csv(
        b"image,label,score,x1,y1,x2\n",
        Path::new("h.csv"),
        &classes(),
        true,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::MissingColumn { column: "y2", .. }),
        "{err}"
    );
    let err = parse_csv(b"", Path::new("e.csv"), &classes(), true).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingColumn {
                column: "image",
                ..
            }
        ),
        "{err}"
    );
    // Columns in another order, extra columns, upper case.
    let text = "SCORE,extra,image,x1,y1,x2,y2,label\n0.5,z,p/q.jpg,1,2,3,4,dog\n";
    let r = parse_csv(text.as_bytes(), Path::new("o.csv"), &classes(), false).unwrap();
    assert_eq!(r.detections[0].image, "q");
    assert_eq!(r.detections[0].class_index, 12);
    assert_eq!(r.detections[0].bbox, [1.0, 2.0, 3.0, 4.0]);
}

const JSON: &str = r#"[
  {"image": "x/000002.jpg", "label": "cat", "label_index": 8, "score": 0.5, "box": [1, 2, 3, 4]},
  {"image": "000003", "label_index": 12, "score": 0.25, "box": [1.5, 2, 3, 4]},
  {"image": "000003", "label": "cat", "label_index": 9, "score": 0.5, "box": [1, 2, 3, 4]},
  {"image": "000003", "label": "unicorn", "score": 0.5, "box": [1, 2, 3, 4]},
  {"image": "000003", "score": 0.5, "box": [1, 2, 3, 4]},
  {"image": "000003", "label_index": 21, "score": 0.5, "box": [1, 2, 3, 4]},
  {"image": "000003", "label": "cat",
   "score": 0.5, "box": [1, 2, 3]},
  {"image": "000003", "label": "cat", "score": 1e40, "box": [1, 2, 3, 4]},
  {"image": "a\"b", "label": "cat", "score": 0.5, "box": [1, 2, 3, 4]}
]"#;

#[test]
fn json_rows() {
    let err = parse_json(JSON, Path::new("d.json"), &classes(), false).unwrap_err();
    match &err {
        Error::BadRow { line, problem, .. } => {
            assert_eq!(*line, 4);
            assert!(matches!(
                problem,
                RowProblem::LabelMismatch {
                    expected: 8,
                    index: 9,
                    ..
                }
            ));
        }
        e => panic!("wrong error {e}"),
    }
    let r = parse_json(JSON, Path::new("d.json"), &classes(), true).unwrap();
    assert_eq!(r.detections.len(), 3);
    assert_eq!(r.detections[0].image, "000002");
    assert_eq!(r.detections[0].class_index, 8);
    assert_eq!(r.detections[1].class_index, 12);
    assert_eq!(r.detections[1].bbox, [1.5, 2.0, 3.0, 4.0]);
    assert_eq!(r.detections[2].image, "a\"b");
    let lines: Vec<u64> = r.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8, 10]);
    assert!(matches!(r.skipped[1].problem, RowProblem::UnknownLabel(_)));
    assert!(matches!(r.skipped[2].problem, RowProblem::MissingLabel));
    assert!(matches!(
        r.skipped[3].problem,
        RowProblem::LabelIndexOutOfRange { index: 21, .. }
    ));
    assert!(matches!(r.skipped[4].problem, RowProblem::Json(_)));
    assert!(matches!(
        r.skipped[5].problem,
        RowProblem::BadNumber {
            column: "score",
            ..
        }
    ));
}

#[test]
fn malformed_json_is_an_error_even_when_skipping() {
    let err = parse_json("[\n{\"image\": 1,\n", Path::new("m.json"), &classes(), true).unwrap_err();
    match err {
        Error::Json { path, line, .. } => {
            assert_eq!(path, PathBuf::from("m.json"));
            assert_eq!(line, 3);
        }
        e => panic!("wrong error {e}"),
    }
    assert!(parse_json("{}", Path::new("o.json"), &classes(), true).is_err());
}

#[test]
fn write_then_read_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let dets = vec![
        Detection {
            image: "000002".into(),
            class_index: 1,
            score: 0.372_653_1,
            bbox: [64.61053, -1.5e-3, 132.41641, 545.2],
        },
        Detection {
            image: "a,b".into(),
            class_index: 20,
            score: 1e-7,
            bbox: [0.0, 1.0, 2.0, 3.0],
        },
    ];
    for name in ["d.csv", "d.json"] {
        let path = dir.path().join(name);
        match name {
            "d.csv" => write_csv(&path, &dets, &classes()).unwrap(),
            _ => write_json(&path, &dets, &classes()).unwrap(),
        }
        let r = read_detections(&path, &classes(), false).unwrap();
        assert_eq!(r.detections, dets, "{name}");
    }
    let bad = [Detection {
        class_index: 21,
        ..dets[0].clone()
    }];
    let err = write_csv(&dir.path().join("x.csv"), &bad, &classes()).unwrap_err();
    assert!(
        matches!(err, Error::ClassIndexOutOfRange { index: 21, .. }),
        "{err}"
    );
    let err = read_detections(&dir.path().join("d.txt"), &classes(), false).unwrap_err();
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err}");
    let err = read_detections(&dir.path().join("none.csv"), &classes(), false).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

/// Per-class APs of the golden detections on the 4-image fixture split,
/// recorded with a numpy replica of pytorch-ssd's
/// `compute_average_precision_per_class` (float32 IoU, comp4 round trip,
/// `np.arange` thresholds): `(class, n_gt, voc07, voc10)`.
const MICRO_SPLIT: [(&str, usize, f64, f64); 4] = [
    ("car", 7, 0.0004445432318292954, 0.00034928396786587494),
    ("chair", 4, 0.03363636363636363, 0.03083333333333333),
    ("sofa", 1, 0.0, 0.0),
    ("train", 1, 0.0, 0.0),
];

#[test]
fn micro_voc_split_end_to_end() {
    let ds = VocDataset::open(&voc_dir(), "test", None).unwrap();
    let (items, _) = ds.load_all(false).unwrap();
    let gts = ground_truth_from_voc(&items);
    assert_eq!(gts.len(), 15);
    let dets = read_csv(&golden_csv(), ds.class_names(), false)
        .unwrap()
        .detections;
    for metric in [ApMetric::Voc07, ApMetric::Voc10] {
        let r = evaluate(
            &gts,
            &dets,
            ds.class_names(),
            metric,
            NanPolicy::Strict,
            items.len(),
        );
        assert_eq!(r.images, 4);
        let present: Vec<(&str, usize, f64)> = r
            .per_class
            .iter()
            .zip(&r.num_gt)
            .filter(|(_, n)| **n > 0)
            .map(|((name, ap), n)| (name.as_str(), *n, *ap))
            .collect();
        for (name, n, ap) in &present {
            println!("{metric} {name}: n_gt {n}, AP {ap:?}");
        }
        let want: Vec<(&str, usize, f64)> = MICRO_SPLIT
            .iter()
            .map(|&(c, n, v07, v10)| (c, n, if metric == ApMetric::Voc07 { v07 } else { v10 }))
            .collect();
        assert_eq!(present, want, "{metric}");
        println!("{metric} mAP over all 20 classes {:?}", r.map);
        match metric {
            // Classes without gt score 0 with voc07 ...
            ApMetric::Voc07 => assert_eq!(r.map, 0.0017040453434096464),
            // ... and NaN with voc10 when they have detections.
            ApMetric::Voc10 => assert!(r.map.is_nan()),
        }
    }
}
