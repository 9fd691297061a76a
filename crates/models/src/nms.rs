//! Hard NMS exactly as pytorch-ssd's `hard_nms` (spec §9).

use crate::box_coding::iou;

/// Hard non-maximum suppression over `(box, score)` candidates of one class.
///
/// Sorts by score descending (ties keep input order), keeps the first `candidate_size`,
/// then repeatedly picks the best remaining box and drops every other with
/// `IoU > iou_threshold`. Stops after `top_k` picks when `top_k > 0`. Returns the indices
/// into `boxes`, in pick order.
pub fn hard_nms(
    boxes: &[[f32; 4]],
    scores: &[f32],
    iou_threshold: f32,
    top_k: usize,
    candidate_size: usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(candidate_size);
    let mut picked = Vec::new();
    let mut alive = vec![true; order.len()];
    for i in 0..order.len() {
        if !alive[i] {
            continue;
        }
        let cur = order[i];
        picked.push(cur);
        if top_k > 0 && picked.len() == top_k {
            break;
        }
        for j in i + 1..order.len() {
            if alive[j] && iou(&boxes[order[j]], &boxes[cur]) > iou_threshold {
                alive[j] = false;
            }
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_overlaps_and_keeps_order() {
        let boxes = [
            [0.0, 0.0, 1.0, 1.0],
            [0.05, 0.0, 1.05, 1.0],
            [2.0, 2.0, 3.0, 3.0],
            [0.0, 0.0, 1.0, 1.0],
        ];
        let scores = [0.6, 0.9, 0.5, 0.1];
        assert_eq!(hard_nms(&boxes, &scores, 0.45, 0, 200), vec![1, 2]);
        assert_eq!(hard_nms(&boxes, &scores, 0.45, 1, 200), vec![1]);
        assert_eq!(hard_nms(&boxes, &scores, 0.45, 0, 1), vec![1]);
        // IoU exactly at the threshold is kept (strict `>` suppresses).
        assert_eq!(hard_nms(&boxes, &scores, 1.0, 0, 200).len(), 4);
    }
}
