//! Tests of the packed kernels: every instruction set this processor has, against plain sums
//! and against the order of `k`.

use super::*;

/// The kernels this processor can run: the portable one, and AVX2 and AVX-512 where it has
/// them.
fn runnable_isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Portable];
    if Isa::detect() != Isa::Portable {
        isas.push(Isa::Avx2);
    }
    if Isa::detect() == Isa::Avx512 {
        isas.push(Isa::Avx512);
    }
    isas
}

/// Every kernel this processor has, on one row of `A` (several panels at a time) and on two
/// (a panel at a time): the bits of one multiply-add after another in the order of `k`.
#[test]
fn one_row_gives_the_bits_of_one_panel_at_a_time() {
    let isas = runnable_isas();
    let (k, n) = (300, 300);
    let a: Vec<f32> = (0..2 * k)
        .map(|i| ((i * 7919) % 1013) as f32 / 977.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104729) % 997) as f32 / 991.0 - 0.5)
        .collect();
    for isa in isas {
        let operand = Operand {
            data: &b,
            rows: k,
            cols: n,
            transpose: Transpose::No,
        };
        let packed = Packed::for_isa(operand, isa, None);
        assert!(
            n >= 2 * WIDE * blocking(isa, 4).1,
            "the test must take the wide path"
        );
        for m in [1, 2] {
            let mut c = vec![f32::NAN; m * n];
            packed.gemm(&mut c, 0.75, &a[..m * k], 0.0, None);
            for i in 0..m {
                for j in 0..n {
                    let mut sum = 0.0f32;
                    for p in 0..k {
                        let (x, w) = (a[i * k + p], b[p * n + j]);
                        sum = match isa {
                            Isa::Portable => sum + x * w,
                            _ => x.mul_add(w, sum),
                        };
                    }
                    let want = (0.75 * sum).to_bits();
                    assert_eq!(c[i * n + j].to_bits(), want, "{isa:?}, m = {m}");
                }
            }
        }
    }
}

/// Every kernel this processor can run, against plain sums, over ragged shapes.
#[test]
fn every_isa_matches_plain_sums() {
    let isas = runnable_isas();
    for isa in isas {
        for (m, k, n) in [(1, 1, 1), (5, 3, 17), (9, 40, 33), (33, 17, 70), (7, 0, 5)] {
            for transpose in [Transpose::No, Transpose::Yes] {
                let (rows, cols) = transpose.apply((k, n));
                let a: Vec<f64> = (0..m * k).map(|i| (i % 7) as f64 - 3.0).collect();
                let b: Vec<f64> = (0..k * n).map(|i| (i % 5) as f64 - 2.0).collect();
                let operand = Operand {
                    data: &b,
                    rows,
                    cols,
                    transpose,
                };
                let packed = Packed::for_isa(operand, isa, None);
                let mut c = vec![1.0; m * n];
                packed.gemm(&mut c, 2.0, &a, 0.5, None);
                for i in 0..m {
                    for j in 0..n {
                        let sum: f64 = (0..k)
                            .map(|p| {
                                let bv = match transpose {
                                    Transpose::No => b[p * n + j],
                                    Transpose::Yes => b[j * k + p],
                                };
                                a[i * k + p] * bv
                            })
                            .sum();
                        assert_eq!(c[i * n + j], 2.0 * sum + 0.5, "{isa:?} {m}x{k}x{n}");
                    }
                }
            }
        }
    }
}
