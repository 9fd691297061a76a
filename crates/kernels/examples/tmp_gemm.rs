use slimdet_kernels::quant::*;
fn main() {
    let tier = slimdet_kernels::tier();
    let m = 22500;
    for &(k, n) in &[
        (4usize, 32usize),
        (28, 32),
        (112, 32),
        (16, 96),
        (32, 96),
        (64, 96),
        (16, 16),
        (16, 64),
    ] {
        let a: Vec<u8> = (0..m * k).map(|i| (i * 7 % 251) as u8).collect();
        let w: Vec<i8> = (0..k * n).map(|i| (i % 17) as i8 - 8).collect();
        let b = PackedB::pack(&w, k, n);
        let rq = Requant::new(vec![100; n], &[QMul::from_real(0.003)], 0, 0, 255);
        let mut out = vec![0u8; m * n];
        let mut best = f64::MAX;
        for _ in 0..30 {
            let t = std::time::Instant::now();
            qgemm_u8i8_i32_requant(
                tier,
                QGemmShape { m, lda: k, ldc: n },
                &a,
                &b,
                &rq,
                &mut out,
            );
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        let vecs = (m * n / 16) as f64;
        println!(
            "k{k} n{n}: {best:.3} ms, {:.2} ns/vector, {:.1} GMAC/s",
            best * 1e6 / vecs,
            (m * n * k) as f64 / best / 1e6
        );
    }
}
