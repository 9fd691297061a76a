//! Parsing of one `Annotations/<id>.xml` file into an [`Annotation`],
//! following pytorch-ssd's `VOCDataset._get_annotation` (spec section 12).
//!
//! Kept as the reference: only direct `<object>` children of the root are
//! read (not `<part>`s), the name is lower-cased and trimmed, box corners
//! are the VOC values minus 1, and difficult objects are kept with their
//! flag. Stricter than the reference: unknown classes are an error unless
//! the caller asks to skip them, and a non-finite coordinate is an error.
//! More lenient: a missing `<difficult>` or `<truncated>` means `false`
//! (the reference raises on a missing `<difficult>`).

use std::collections::HashMap;
use std::path::Path;

use roxmltree::{Document, Node, ParsingOptions};

use crate::{Error, Result};

/// Largest annotation file read, in bytes (a VOC annotation is about 1 KiB).
pub const MAX_XML_BYTES: u64 = 16 << 20;
/// Most objects one annotation may hold (VOC2007's largest has 42).
pub const MAX_OBJECTS: usize = 10_000;
/// Most XML nodes parsed, a bound on the parser's memory for hostile files.
const MAX_XML_NODES: u32 = 1 << 20;

/// Parses the annotation XML `text`; `path` names it in errors. `class_names` is the
/// dataset's class list (index 0 the background); objects of other classes are an error
/// unless `skip_unknown`. Refuses more than [`MAX_OBJECTS`] objects.
pub fn parse_annotation_text(
    text: &str,
    path: &Path,
    class_names: &[String],
    skip_unknown: bool,
) -> Result<Annotation> {
    let classes: HashMap<String, usize> = class_names
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    parse_annotation(text, path, &classes, class_names, skip_unknown)
}

/// One annotated object.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// Index into the dataset's class list (never 0, the background).
    pub class_index: usize,
    /// The class name as in the class list.
    pub class_name: String,
    /// `[x1, y1, x2, y2]` in 0-based pixels: the XML's 1-based values minus 1,
    /// as the reference does (so `x2 - x1` is the VOC width minus 1).
    pub bbox: [f32; 4],
    /// `<difficult>` non-zero: ignored by VOC evaluation, dropped for training.
    pub difficult: bool,
    /// `<truncated>` non-zero (informational).
    pub truncated: bool,
}

/// The annotation of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// `<size><width>` in pixels.
    pub width: usize,
    /// `<size><height>` in pixels.
    pub height: usize,
    /// Objects in file order, difficult ones included.
    pub objects: Vec<Object>,
}

/// Parsing context: the XML document and the file name for errors.
struct Ctx<'a, 'input> {
    doc: &'a Document<'input>,
    path: &'a Path,
}

impl<'a, 'input> Ctx<'a, 'input> {
    fn line(&self, node: Node) -> u32 {
        self.doc.text_pos_at(node.range().start).row
    }

    fn child(&self, node: Node<'a, 'input>, name: &str) -> Result<Node<'a, 'input>> {
        node.children()
            .find(|n| n.has_tag_name(name))
            .ok_or_else(|| Error::MissingElement {
                path: self.path.to_path_buf(),
                line: self.line(node),
                parent: node.tag_name().name().to_string(),
                element: name.to_string(),
            })
    }

    fn bad_value(&self, node: Node, text: &str) -> Error {
        Error::BadValue {
            path: self.path.to_path_buf(),
            line: self.line(node),
            element: node.tag_name().name().to_string(),
            value: text.to_string(),
        }
    }

    /// A finite float, like Python's `float(text)` (which trims whitespace).
    fn float(&self, node: Node) -> Result<f64> {
        let text = node.text().unwrap_or("");
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.bad_value(node, text)),
        }
    }

    /// A non-negative whole number; "500" and "500.0" are both accepted.
    fn size(&self, node: Node) -> Result<usize> {
        let text = node.text().unwrap_or("");
        let t = text.trim();
        if let Ok(v) = t.parse::<usize>() {
            return Ok(v);
        }
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e15 => Ok(v as usize),
            _ => Err(self.bad_value(node, text)),
        }
    }

    /// An optional 0/1 flag: missing element or empty text → false, as
    /// `int(text) if text else 0`.
    fn flag(&self, object: Node, name: &str) -> Result<bool> {
        let Some(node) = object.children().find(|n| n.has_tag_name(name)) else {
            return Ok(false);
        };
        let text = node.text().unwrap_or("");
        if text.is_empty() {
            return Ok(false);
        }
        text.trim()
            .parse::<i64>()
            .map(|v| v != 0)
            .map_err(|_| self.bad_value(node, text))
    }
}

/// Parses the XML `text` of `path`. `classes` maps class names to indices;
/// with `skip_unknown` objects of other classes are dropped (the
/// reference's behaviour), otherwise they are an [`Error::UnknownClass`].
pub(crate) fn parse_annotation(
    text: &str,
    path: &Path,
    classes: &HashMap<String, usize>,
    class_names: &[String],
    skip_unknown: bool,
) -> Result<Annotation> {
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    let doc = Document::parse_with_options(text, opts).map_err(|source| match source {
        roxmltree::Error::NodesLimitReached => Error::Limit {
            path: path.to_path_buf(),
            reason: format!(
                "more than {MAX_XML_NODES} XML nodes (at most {MAX_OBJECTS} objects are read)"
            ),
        },
        source => Error::Xml {
            path: path.to_path_buf(),
            line: source.pos().row,
            column: source.pos().col,
            source,
        },
    })?;
    let cx = Ctx { doc: &doc, path };
    let root = doc.root_element();
    let size = cx.child(root, "size")?;
    let width = cx.size(cx.child(size, "width")?)?;
    let height = cx.size(cx.child(size, "height")?)?;

    let mut objects = Vec::new();
    for (i, object) in root
        .children()
        .filter(|n| n.has_tag_name("object"))
        .enumerate()
    {
        if i == MAX_OBJECTS {
            return Err(Error::Limit {
                path: path.to_path_buf(),
                reason: format!("more than {MAX_OBJECTS} <object> elements"),
            });
        }
        let name_node = cx.child(object, "name")?;
        let name = name_node.text().unwrap_or("").to_lowercase();
        let name = name.trim();
        let Some(&class_index) = classes.get(name) else {
            if skip_unknown {
                continue;
            }
            return Err(Error::UnknownClass {
                path: path.to_path_buf(),
                line: cx.line(name_node),
                class: name.to_string(),
            });
        };
        let bndbox = cx.child(object, "bndbox")?;
        let mut bbox = [0f32; 4];
        for (b, tag) in bbox.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            // Python: float(text) - 1 in f64, then stored as float32.
            *b = (cx.float(cx.child(bndbox, tag)?)? - 1.0) as f32;
        }
        objects.push(Object {
            class_index,
            class_name: class_names[class_index].clone(),
            bbox,
            difficult: cx.flag(object, "difficult")?,
            truncated: cx.flag(object, "truncated")?,
        });
    }
    Ok(Annotation {
        width,
        height,
        objects,
    })
}
