//! Opening an evaluation split for a given model: the dataset's own classes when the
//! model has as many, else the model's classes matched by name.

use std::path::Path;

use anyhow::{Context, Result};
use slimdet_data::voc::VocDataset;

/// Opens `split` of the VOC folder `root` for a model whose classes (index 0 =
/// background) are `model_classes`. When the dataset's class list has another length, the
/// dataset is seen through the model's classes matched by name
/// ([`VocDataset::for_classes`]: a person detector on VOC evaluates `person`), which is
/// said on stderr; it fails when a class of the model is not one of the dataset's.
pub fn open_for_model(
    root: &Path,
    split: &str,
    model_classes: &[String],
    model_path: &Path,
) -> Result<VocDataset> {
    let ds = VocDataset::open(root, split, None)
        .with_context(|| format!("opening dataset {}", root.display()))?;
    if ds.class_names().len() == model_classes.len() {
        return Ok(ds);
    }
    let sub = ds.for_classes(model_classes).with_context(|| {
        format!(
            "{} has {} classes (with background) but dataset {} has {}: pass a class list \
             matching the model",
            model_path.display(),
            model_classes.len(),
            root.display(),
            ds.class_names().len()
        )
    })?;
    eprintln!(
        "evaluating the model's classes {:?}, matched by name with the dataset's; objects of \
         its other {} classes are ignored",
        &sub.class_names()[1..],
        ds.class_names().len() - sub.class_names().len()
    );
    Ok(sub)
}
