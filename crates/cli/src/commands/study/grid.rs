//! Expands a study configuration into the ordered list of variants to run.

use anyhow::{Result, bail};

use super::config::StudyConfig;

/// One model variant of the study.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Unique name, also the file stem of its saved model: `baseline`, `l1-0.3`,
    /// `fp16`, `filter-l1-0.25+int8-channel-entropy`, `l1-0.5-ft`.
    pub name: String,
    /// Pruning method and level, if pruned.
    pub prune: Option<(String, f64)>,
    /// Precision mode (`fp32` when not quantized).
    pub quant: String,
    /// Fine-tuned after pruning.
    pub finetuned: bool,
}

impl Variant {
    fn new(prune: Option<(String, f64)>, quant: &str, finetuned: bool) -> Self {
        let p = prune.as_ref().map(|(m, a)| format!("{m}-{a}"));
        let mut name = match (p, quant) {
            (None, "fp32") => "baseline".to_string(),
            (None, q) => q.to_string(),
            (Some(p), "fp32") => p,
            (Some(p), q) => format!("{p}+{q}"),
        };
        if finetuned {
            name += "-ft";
        }
        Self {
            name,
            prune,
            quant: quant.to_string(),
            finetuned,
        }
    }
}

/// The variants of `cfg`, baseline first, without duplicates: pruning (method-major,
/// levels in the given order), quantization, combinations, fine-tuned. Level 0 of every
/// method and mode `fp32` are the baseline itself. Fails on an empty grid.
pub fn expand(cfg: &StudyConfig) -> Result<Vec<Variant>> {
    if !cfg.prune.methods.is_empty() && cfg.prune.levels.is_empty() {
        bail!("prune.methods is set but prune.levels is empty");
    }
    if cfg.combos.prune.is_empty() != cfg.combos.quant.is_empty() {
        bail!("combos.prune and combos.quant must both be set (or both empty)");
    }
    let mut out = vec![Variant::new(None, "fp32", false)];
    let mut push = |v: Variant| {
        if !out.iter().any(|o| o.name == v.name) {
            out.push(v);
        }
    };
    let pruned = |m: &String, l: f64| (l > 0.0).then(|| (m.clone(), l));
    for m in &cfg.prune.methods {
        for &l in &cfg.prune.levels {
            push(Variant::new(pruned(m, l), "fp32", false));
        }
    }
    for q in &cfg.quant.modes {
        push(Variant::new(None, q, false));
    }
    for (m, l) in &cfg.combos.prune {
        for q in &cfg.combos.quant {
            push(Variant::new(pruned(m, *l), q, false));
        }
    }
    for (m, l) in &cfg.finetune.variants {
        push(Variant::new(pruned(m, *l), "fp32", true));
    }
    if out.len() == 1 {
        bail!(
            "the study grid is empty: it holds only the baseline; give prune.methods and \
             prune.levels (> 0), quant.modes, combos or finetune.variants"
        );
    }
    Ok(out)
}

/// Keeps only the variants named in `only` (all must exist).
pub fn select(all: Vec<Variant>, only: &[String]) -> Result<Vec<Variant>> {
    if only.is_empty() {
        return Ok(all);
    }
    for name in only {
        if !all.iter().any(|v| &v.name == name) {
            let names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
            bail!(
                "--only {name}: no such variant in this study's grid ({})",
                names.join(", ")
            );
        }
    }
    Ok(all.into_iter().filter(|v| only.contains(&v.name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_follows_the_reference_study() {
        let v = expand(&StudyConfig::default()).unwrap();
        assert_eq!(v[0].name, "baseline");
        // 3 methods x 11 non-zero levels + 4 modes + 2 x 2 combinations.
        assert_eq!(v.len(), 1 + 33 + 4 + 4);
        assert!(
            v.iter()
                .any(|x| x.name == "filter-l1-0.25+int8-channel-entropy")
        );
        assert!(v.iter().any(|x| x.name == "l1-0.05"));
        let names: std::collections::HashSet<_> = v.iter().map(|x| &x.name).collect();
        assert_eq!(names.len(), v.len());
    }

    #[test]
    fn empty_grids_are_refused() {
        let mut c = StudyConfig::default();
        c.prune.methods.clear();
        c.quant.modes.clear();
        c.combos.prune.clear();
        c.combos.quant.clear();
        assert!(expand(&c).unwrap_err().to_string().contains("empty"));
        c.prune.methods = vec!["l1".into()];
        c.prune.levels = vec![0.0];
        assert!(expand(&c).unwrap_err().to_string().contains("empty"));
        let mut c = StudyConfig::default();
        c.prune.levels.clear();
        assert!(expand(&c).is_err());
    }

    #[test]
    fn selection_and_fine_tuned_names() {
        let mut c = StudyConfig::quick();
        c.finetune.variants = vec![("l1".into(), 0.5)];
        let v = expand(&c).unwrap();
        assert!(v.iter().any(|x| x.name == "l1-0.5-ft" && x.finetuned));
        let s = select(v.clone(), &["l1-0.25".into()]).unwrap();
        assert_eq!(s.len(), 1);
        assert!(select(v, &["nope".into()]).is_err());
    }

    #[test]
    fn bad_configs_fail_validation() {
        let c = StudyConfig::from_toml("[prune]\nmethods = [\"magic\"]\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("magic"));
        let c = StudyConfig::from_toml("[prune]\nlevels = [0.1, 1.0]\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("outside [0, 1)")
        );
        assert!(StudyConfig::from_toml("[prune]\nlevelz = [0.1]\n").is_err());
        let c = StudyConfig::from_toml("[quant]\nmodes = [\"int3\"]\n").unwrap();
        assert!(c.validate().is_err());
        let c = StudyConfig::from_toml("[combos]\nprune = [[\"l1\", 0.5]]\nquant = [\"fp16\"]\n")
            .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.combos.prune, vec![("l1".to_string(), 0.5)]);
        assert!(StudyConfig::quick().validate().is_ok());
        assert!(StudyConfig::default().validate().is_ok());
    }
}
