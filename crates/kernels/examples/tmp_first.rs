use slimdet_kernels::quant::*;
use slimdet_kernels::reference::ConvGeom;
fn main() {
    let g = ConvGeom {
        in_c: 3,
        in_h: 300,
        in_w: 300,
        out_c: 32,
        kh: 3,
        kw: 3,
        stride_h: 2,
        stride_w: 2,
        pad_h: 1,
        pad_w: 1,
        dil_h: 1,
        dil_w: 1,
        groups: 1,
    };
    let x: Vec<u8> = (0..300 * 300 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let w: Vec<i8> = (0..32 * 27).map(|i| (i % 17) as i8 - 8).collect();
    let b = PackedB::from_oihw_padded(&w, 32, 3, 3, 3);
    let rq = Requant::new(vec![100; 32], &[QMul::from_real(0.003)], 0, 0, 255);
    let rows = g.out_h() * g.out_w();
    let k = b.k();
    let mut cols = vec![0u8; rows * k];
    let mut out = vec![0u8; rows * 32];
    let tier = slimdet_kernels::tier();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        for _ in 0..20 {
            im2col_u8_rows(&g, &x, 5, 0..g.out_h(), k, &mut cols);
        }
        let t1 = t.elapsed().as_secs_f64() * 1e3 / 20.0;
        let t = std::time::Instant::now();
        for _ in 0..20 {
            qgemm_u8i8_i32_requant(
                tier,
                QGemmShape {
                    m: rows,
                    lda: k,
                    ldc: 32,
                },
                &cols,
                &b,
                &rq,
                &mut out,
            );
        }
        let t2 = t.elapsed().as_secs_f64() * 1e3 / 20.0;
        println!("im2col {t1:.3} ms gemm {t2:.3} ms");
    }
}
