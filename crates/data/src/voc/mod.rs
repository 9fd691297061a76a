//! Pascal VOC datasets laid out as `VOCdevkit/VOC2007/{Annotations,
//! ImageSets/Main, JPEGImages}` (spec section 12).
//!
//! [`VocDataset`] owns the id list of one split and the class list, and
//! reads annotations and images on demand. Every failure names the file
//! concerned; [`VocDataset::load_all`] can either stop at the first bad item
//! or skip bad items and report why.

mod annotation;
mod classes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use annotation::{Annotation, MAX_OBJECTS, MAX_XML_BYTES, Object, parse_annotation_text};
pub use classes::{BACKGROUND, VOC_CLASSES, default_classes, parse_class_text, read_class_file};

use crate::{Error, Result, RgbImage, load_rgb};

/// One split of a VOC year folder, with its class list.
#[derive(Clone, Debug)]
pub struct VocDataset {
    root: PathBuf,
    split: String,
    ids: Vec<String>,
    class_names: Vec<String>,
    class_index: HashMap<String, usize>,
    skip_unknown: bool,
}

/// An `(image id, annotation)` pair as returned by [`VocDataset::load_all`].
pub type AnnotatedId = (String, Annotation);

/// An item [`VocDataset::load_all`] skipped, and why.
#[derive(Debug)]
pub struct SkipReport {
    /// The image id from the split file.
    pub id: String,
    /// The error that made the item unusable (names the file).
    pub error: Error,
}

impl VocDataset {
    /// Opens split `split` (`"test"`, `"trainval"`, ... = `ImageSets/Main/<split>.txt`).
    ///
    /// `root` is a year folder (holding `Annotations/`) or a `VOCdevkit`
    /// folder holding exactly one such year folder. Classes, index 0 being
    /// the background: `classes` if given (used as is, must be non-empty
    /// without duplicates), else `<year folder>/labels.txt` if it exists
    /// (see [`parse_class_text`]), else [`VOC_CLASSES`].
    ///
    /// Ids are the split file's lines, trimmed, blank lines skipped.
    /// Errors: [`Error::NotVocRoot`], [`Error::MissingSplit`],
    /// [`Error::EmptySplit`], [`Error::Io`], class-list errors.
    pub fn open(root: &Path, split: &str, classes: Option<Vec<String>>) -> Result<Self> {
        let root = resolve_root(root)?;
        let class_names = match classes {
            Some(c) => c,
            None => {
                let labels = root.join("labels.txt");
                if labels.is_file() {
                    read_class_file(&labels)?
                } else {
                    default_classes()
                }
            }
        };
        let class_index = classes::index_classes(&class_names, &root)?;
        let ids = read_split(&root, split)?;
        Ok(Self {
            root,
            split: split.to_string(),
            ids,
            class_names,
            class_index,
            skip_unknown: false,
        })
    }

    /// [`VocDataset::open`] with the class list read from `class_file`
    /// (a `--classes FILE`; format as [`parse_class_text`]).
    pub fn open_with_class_file(root: &Path, split: &str, class_file: &Path) -> Result<Self> {
        Self::open(root, split, Some(read_class_file(class_file)?))
    }

    /// With `true`, objects whose class is not in the class list are dropped
    /// silently (pytorch-ssd's behaviour); by default they are an
    /// [`Error::UnknownClass`].
    pub fn with_skip_unknown(mut self, skip: bool) -> Self {
        self.skip_unknown = skip;
        self
    }

    /// The same split seen through another class list `classes` (index 0 = background),
    /// every one of which must be a class of this dataset (matched case-insensitively and
    /// renamed to the dataset's spelling): objects of the dataset's other classes are
    /// skipped. This is how a detector of fewer classes (a person detector on VOC) is
    /// evaluated or fine-tuned on the classes it has.
    pub fn for_classes(&self, classes: &[String]) -> Result<Self> {
        let find = |c: &String| {
            self.class_names
                .iter()
                .find(|d| d.eq_ignore_ascii_case(c))
                .cloned()
        };
        let named = classes.get(1..).unwrap_or_default();
        let missing: Vec<String> = named
            .iter()
            .filter(|c| find(c).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() || named.is_empty() {
            return Err(Error::ClassesNotInDataset {
                path: self.root.clone(),
                dataset: self.class_names.len(),
                missing,
            });
        }
        let names: Vec<String> = std::iter::once(BACKGROUND.to_string())
            .chain(named.iter().filter_map(find))
            .collect();
        let class_index = classes::index_classes(&names, &self.root)?;
        Ok(Self {
            class_names: names,
            class_index,
            skip_unknown: true,
            ..self.clone()
        })
    }

    /// Whether unknown classes are skipped (see [`VocDataset::with_skip_unknown`]).
    pub fn skip_unknown(&self) -> bool {
        self.skip_unknown
    }

    /// The year folder (the one holding `Annotations/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The split name given to `open`.
    pub fn split(&self) -> &str {
        &self.split
    }

    /// Image ids in split-file order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Number of ids in the split.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Never true for an opened dataset (an empty split is an error).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Class names; index 0 is the background.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// `Annotations/<id>.xml`.
    pub fn annotation_path(&self, id: &str) -> PathBuf {
        self.root.join("Annotations").join(format!("{id}.xml"))
    }

    /// `JPEGImages/<id>.jpg`.
    pub fn image_path(&self, id: &str) -> PathBuf {
        self.root.join("JPEGImages").join(format!("{id}.jpg"))
    }

    /// Reads and parses the annotation of `id` (difficult objects included).
    pub fn annotation(&self, id: &str) -> Result<Annotation> {
        let path = self.annotation_path(id);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let len = std::fs::metadata(&path).map_err(io)?.len();
        if len > MAX_XML_BYTES {
            return Err(Error::Limit {
                path,
                reason: format!("annotation of {len} bytes, more than {MAX_XML_BYTES}"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        annotation::parse_annotation(
            &text,
            &path,
            &self.class_index,
            &self.class_names,
            self.skip_unknown,
        )
    }

    /// Decodes the image of `id` as RGB `[H, W, 3]`;
    /// [`Error::MissingImage`] if the file does not exist.
    pub fn load_image(&self, id: &str) -> Result<RgbImage> {
        let path = self.image_path(id);
        if !path.is_file() {
            return Err(Error::MissingImage { path });
        }
        load_rgb(&path)
    }

    /// Parses every annotation of the split and checks that every image file
    /// exists (without decoding it).
    ///
    /// With `skip_bad == false` the first bad item is returned as the error;
    /// with `true` bad items are left out and listed in the second vector,
    /// in split order. Returns `(id, annotation)` pairs in split order.
    pub fn load_all(&self, skip_bad: bool) -> Result<(Vec<AnnotatedId>, Vec<SkipReport>)> {
        let mut good = Vec::with_capacity(self.ids.len());
        let mut skipped = Vec::new();
        for id in &self.ids {
            let item = self.annotation(id).and_then(|a| {
                let img = self.image_path(id);
                if img.is_file() {
                    Ok(a)
                } else {
                    Err(Error::MissingImage { path: img })
                }
            });
            match item {
                Ok(a) => good.push((id.clone(), a)),
                Err(error) if skip_bad => skipped.push(SkipReport {
                    id: id.clone(),
                    error,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok((good, skipped))
    }
}

/// The year folder: `root` itself if it holds `Annotations/`, else its only
/// subfolder that does.
fn resolve_root(root: &Path) -> Result<PathBuf> {
    if root.join("Annotations").is_dir() {
        return Ok(root.to_path_buf());
    }
    let entries = std::fs::read_dir(root).map_err(|source| Error::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let mut years = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let p = entry.path();
        if p.join("Annotations").is_dir() {
            years.push(p);
        }
    }
    years.sort();
    match years.len() {
        1 => Ok(years.remove(0)),
        0 => Err(Error::NotVocRoot {
            path: root.to_path_buf(),
            reason: "no Annotations/ folder in it or in any subfolder".to_string(),
        }),
        _ => Err(Error::NotVocRoot {
            path: root.to_path_buf(),
            reason: format!(
                "several year folders ({}); pass one of them",
                years
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Reads `ImageSets/Main/<split>.txt` into ids.
fn read_split(root: &Path, split: &str) -> Result<Vec<String>> {
    let path = root
        .join("ImageSets")
        .join("Main")
        .join(format!("{split}.txt"));
    if !path.is_file() {
        return Err(Error::MissingSplit { path });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Err(Error::EmptySplit { path });
    }
    Ok(ids)
}
