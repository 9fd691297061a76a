//! Opening an evaluation split for a given model: the dataset's own classes when the
//! model has as many, else the model's classes matched by name.

use std::path::Path;

use anyhow::{Context, Result, bail};
use slimdet_data::voc::VocDataset;

/// Opens `split` of the VOC folder `root` for a model whose classes (index 0 =
/// background) are `model_classes`. When the dataset's class list has another length and
/// every class of the model is one of the dataset's (case-insensitive: a person detector on
/// VOC), the dataset is seen through the model's classes and objects of its other classes
/// are ignored; this is said on stderr. Otherwise the class counts must agree.
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
    let find = |c: &String| ds.class_names().iter().find(|d| d.eq_ignore_ascii_case(c));
    let model_named = model_classes.get(1..).unwrap_or_default();
    let missing: Vec<&String> = model_named.iter().filter(|c| find(c).is_none()).collect();
    if !missing.is_empty() || model_named.is_empty() {
        bail!(
            "{} has {} classes (with background) but dataset {} has {}, and the model's \
             {missing:?} are not among the dataset's: pass a class list matching the model",
            model_path.display(),
            model_classes.len(),
            root.display(),
            ds.class_names().len(),
        );
    }
    eprintln!(
        "evaluating the model's classes {model_named:?}, matched by name with the dataset's; \
         objects of its other {} classes are ignored",
        ds.class_names().len() - model_classes.len()
    );
    let names: Vec<String> = std::iter::once("BACKGROUND".to_string())
        .chain(model_named.iter().filter_map(|c| find(c).cloned()))
        .collect();
    Ok(VocDataset::open(root, split, Some(names))
        .with_context(|| format!("opening dataset {}", root.display()))?
        .with_skip_unknown(true))
}
