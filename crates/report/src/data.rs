//! Study rows as the report reads them: one JSON object per variant, with the columns
//! that `slimdet study` writes (see the README, "Study output"). Only the columns the
//! report needs are interpreted; every other column is carried along untouched.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One study row (one model variant).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Column name to value, in file order.
    pub fields: Map<String, Value>,
}

/// Parses the study JSON file's text: a list of objects.
pub fn rows_from_json(text: &str) -> Result<Vec<Row>> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Input(e.to_string()))?;
    let Value::Array(items) = v else {
        return Err(Error::Input("expected a JSON list of study rows".into()));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(fields) => Ok(Row { fields }),
            _ => Err(Error::Input(format!("row {i} is not a JSON object"))),
        })
        .collect()
}

impl Row {
    /// A row from `(column, value)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Value)>) -> Self {
        Self {
            fields: pairs.into_iter().collect(),
        }
    }

    /// A string column (`""` when missing or null).
    pub fn text(&self, key: &str) -> String {
        match self.fields.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }

    /// A numeric column; `None` when missing, null or not a finite number.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.fields
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
    }

    /// The variant name.
    pub fn variant(&self) -> String {
        self.text("variant")
    }

    /// Pruning method, `None` for an unpruned variant.
    pub fn prune_method(&self) -> Option<String> {
        Some(self.text("prune_method")).filter(|m| !m.is_empty())
    }

    /// Pruning level as a fraction (0 for unpruned variants).
    pub fn prune_level(&self) -> f64 {
        self.num("prune_level").unwrap_or(0.0)
    }

    /// Precision mode (`fp32` when missing).
    pub fn quant(&self) -> String {
        Some(self.text("quant"))
            .filter(|q| !q.is_empty())
            .unwrap_or_else(|| "fp32".into())
    }

    /// Whether the variant was fine-tuned after compression.
    pub fn finetuned(&self) -> bool {
        matches!(self.fields.get("finetuned"), Some(Value::Bool(true)))
    }

    /// Whether this is the uncompressed reference.
    pub fn is_baseline(&self) -> bool {
        self.prune_method().is_none() && self.quant() == "fp32" && !self.finetuned()
    }

    /// mAP (`None` when NaN or missing).
    pub fn map(&self) -> Option<f64> {
        self.num("map")
    }

    /// `(class, AP)` for every `ap_<class>` column, in column order.
    pub fn class_aps(&self) -> Vec<(String, Option<f64>)> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("ap_")
                    .map(|c| (c.to_string(), v.as_f64().filter(|x| x.is_finite())))
            })
            .collect()
    }

    /// The group the variant is plotted with: the pruning method, the precision mode,
    /// `method+mode` for combinations, `baseline`; ` ft` appended when fine-tuned.
    pub fn family(&self) -> String {
        let base = match (self.prune_method(), self.quant().as_str()) {
            (None, "fp32") => "baseline".to_string(),
            (None, q) => q.to_string(),
            (Some(m), "fp32") => m,
            (Some(m), q) => format!("{m}+{q}"),
        };
        if self.finetuned() {
            format!("{base} ft")
        } else {
            base
        }
    }
}

/// The baseline row: the first unpruned, unquantized, not fine-tuned row.
pub fn baseline(rows: &[Row]) -> Option<&Row> {
    rows.iter().find(|r| r.is_baseline())
}

/// Family names in first-appearance order.
pub fn families(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        let f = r.family();
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_classify() {
        let rows = rows_from_json(
            r#"[{"variant":"baseline","prune_method":"","prune_level":0,"quant":"fp32","finetuned":false,"map":0.5,"ap_cat":0.4,"ap_dog":null},
                {"variant":"l1-0.30+fp16","prune_method":"l1","prune_level":0.3,"quant":"fp16","finetuned":true,"map":0.45}]"#,
        )
        .unwrap();
        assert!(rows[0].is_baseline());
        assert_eq!(
            rows[0].class_aps(),
            vec![("cat".into(), Some(0.4)), ("dog".into(), None)]
        );
        assert_eq!(rows[1].family(), "l1+fp16 ft");
        assert_eq!(rows[1].prune_level(), 0.3);
        assert_eq!(baseline(&rows).unwrap().variant(), "baseline");
        assert_eq!(families(&rows), vec!["baseline", "l1+fp16 ft"]);
        assert!(rows_from_json("{}").is_err());
        assert!(rows_from_json("[1]").is_err());
    }
}
