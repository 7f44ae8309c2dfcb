//! The products of a training step, timed on the crate's own paths and on the Rust GEMM
//! libraries it could call instead, `f32`, one table per thread count:
//!
//! - `recurrent`: `Cpu::gemm` (its `matrixmultiply` calls with rows split across threads, or
//!   its unpacked kernels for thin products), and for the recurrence's products (forward
//!   `h W_hh^T`, backward `dG W_hh`) `Cpu::gemm_prepared` on a `W_hh` packed once per sequence
//!   (the crate's register-blocked kernel), as the crate's forward and backward passes call it;
//! - `matrixmultiply`: `sgemm` called directly (one thread: the crate builds it without its
//!   own threading);
//! - `gemm` 0.19 (`Parallelism::Rayon(t)` or `None`) and faer 0.24 (`Par::rayon(t)` or `Seq`).
//!
//! Each entry is the median of 9 timings taken in turns with the other libraries' (see
//! [`per_call_ms`]). The
//! shapes are those of `benches/compare`'s grid (vocabulary 65, sequence 64, batch 32, LSTM
//! hidden 128 / 256 / 512: 4 gates) and of `examples/word_lm` (700 rows, 200 units, 18,328
//! words). `m x k x n` means `C (m x n) = op(A) (m x k) op(B) (k x n)`, `T` a transposed
//! operand as the crate stores it.
//!
//! ```text
//! cargo run --release --manifest-path benches/gemm_peers/Cargo.toml -- 1 2   # thread counts
//! ```

use faer::{Accum, MatMut, MatRef, Par};
use recurrent::backend::{Backend, Transpose};
use recurrent::{Cpu, DenseMatrix};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A product: a name, `(m, k, n)`, whether `A` and `B` are stored transposed.
struct Shape {
    name: String,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    /// Multiplied by the same `B` at every step (`W_hh`): the crate packs it once.
    recurrence: bool,
}

fn shape(name: &str, (m, k, n): (usize, usize, usize), ta: bool, tb: bool) -> Shape {
    let name = name.to_string();
    let recurrence = false;
    Shape {
        name,
        m,
        k,
        n,
        ta,
        tb,
        recurrence,
    }
}

/// A product of the recurrence: by the same `W_hh` at every step, which the crate packs once.
fn recurrence(name: &str, dims: (usize, usize, usize), tb: bool) -> Shape {
    let recurrence = true;
    Shape {
        recurrence,
        ..shape(name, dims, false, tb)
    }
}

fn shapes() -> Vec<Shape> {
    let (rows, vocab) = (64 * 32, 65);
    let mut list = vec![];
    for h in [128, 256, 512] {
        let g = 4 * h;
        list.push(recurrence(
            &format!("h{h} forward h W_hh^T"),
            (32, h, g),
            true,
        ));
        list.push(recurrence(
            &format!("h{h} backward dG W_hh"),
            (32, g, h),
            false,
        ));
        list.push(shape(
            &format!("h{h} dW_hh = dG^T H"),
            (g, rows, h),
            true,
            false,
        ));
        list.push(shape(
            &format!("h{h} logits H W^T"),
            (rows, h, vocab),
            false,
            true,
        ));
        list.push(shape(
            &format!("h{h} dH = dZ W"),
            (rows, vocab, h),
            false,
            false,
        ));
        list.push(shape(
            &format!("h{h} dW = dZ^T H"),
            (vocab, rows, h),
            true,
            false,
        ));
    }
    let (rows, units, words) = (700, 200, 18_328);
    list.push(shape(
        "word X W_ih^T",
        (rows, units, 4 * units),
        false,
        true,
    ));
    list.push(shape(
        "word logits H W^T",
        (rows, units, words),
        false,
        true,
    ));
    list.push(shape("word dH = dZ W", (rows, words, units), false, false));
    list.push(shape("word dW = dZ^T H", (words, rows, units), true, false));
    list
}

/// Median milliseconds per call of each of `fs`, timed in turns (one timing of each, then
/// the next round, with a pause before each) so that a slow spell of the machine falls on all
/// of them alike: 9 rounds,
/// each timing as many calls as fill about 20 ms.
fn per_call_ms(fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let calls: Vec<usize> = (fs.iter_mut())
        .map(|f| {
            let start = Instant::now();
            f();
            let once = start.elapsed().as_secs_f64();
            ((0.02 / once.max(1e-7)) as usize).clamp(1, 100_000)
        })
        .collect();
    let mut times = vec![vec![]; fs.len()];
    for _ in 0..9 {
        for ((f, &n), times) in fs.iter_mut().zip(&calls).zip(&mut times) {
            // The previous library's idle pool threads stop spinning (rayon's sleep after a
            // few milliseconds without work) before this one is timed: on two cores they would
            // take one from it.
            std::thread::sleep(Duration::from_millis(20));
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            times.push(start.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
    }
    (times.into_iter())
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect()
}

/// Deterministic values in [-0.06, 0.06].
fn values(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect()
}

/// A stored operand: `rows x cols` row-major, used as itself or transposed.
fn stored(rows: usize, cols: usize, transposed: bool) -> (usize, usize) {
    if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    }
}

/// `(row stride, column stride)` of op(X) for X stored `rows x cols` row-major.
fn strides(cols: usize, transposed: bool) -> (isize, isize) {
    if transposed {
        (1, cols as isize)
    } else {
        (cols as isize, 1)
    }
}

/// The milliseconds per call of each library on `s`, `threads` threads, in the order of
/// [`LIBRARIES`].
fn time_shape(s: &Shape, threads: usize) -> Vec<f64> {
    let (ar, ac) = stored(s.m, s.k, s.ta);
    let (br, bc) = stored(s.k, s.n, s.tb);
    let (a, b, mut c) = (values(ar * ac), values(br * bc), vec![0f32; s.m * s.n]);
    let ((rsa, csa), (rsb, csb)) = (strides(ac, s.ta), strides(bc, s.tb));
    let cpu = Cpu::<f32>::with_threads(threads);
    let (am, bm) = (matrix(ar, ac, &a), matrix(br, bc, &b));
    let mut cm = DenseMatrix::zeros(s.m, s.n);
    let t = |yes| if yes { Transpose::Yes } else { Transpose::No };
    let prepared = (s.recurrence).then(|| cpu.prepare_rhs(&bm, t(s.tb), s.m));
    let mut ours = || match &prepared {
        Some(prepared) => cpu.gemm_prepared(&mut cm, 1.0, &am, prepared, 0.0),
        None => cpu.gemm(&mut cm, 1.0, &am, t(s.ta), &bm, t(s.tb), 0.0),
    };
    let (m, k, n) = (s.m, s.k, s.n);
    let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut mm = || unsafe {
        // SAFETY: A, B and C hold every element their shapes and strides reach.
        matrixmultiply::sgemm(
            m, k, n, 1.0, pa, rsa, csa, pb, rsb, csb, 0.0, pc, n as isize, 1,
        );
    };
    let parallelism = match threads {
        1 => gemm::Parallelism::None,
        t => gemm::Parallelism::Rayon(t),
    };
    let mut gemm_crate = || unsafe {
        // SAFETY: as above; gemm takes (column stride, row stride) pairs.
        let (one, zero) = (1.0f32, 0.0f32);
        gemm::gemm(
            m,
            n,
            k,
            pc,
            1,
            n as isize,
            false,
            pa,
            csa,
            rsa,
            pb,
            csb,
            rsb,
            zero,
            one,
            false,
            false,
            false,
            parallelism,
        );
    };
    let par = match threads {
        1 => Par::Seq,
        t => Par::rayon(t),
    };
    let mut faer = || {
        let lhs = faer_ref(&a, ar, ac, s.ta);
        let rhs = faer_ref(&b, br, bc, s.tb);
        // SAFETY: `pc` points to the m x n row-major elements of `c`, used by no one else here.
        let dst = unsafe { MatMut::from_raw_parts_mut(pc, m, n, n as isize, 1) };
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, par);
    };
    let ms = per_call_ms(&mut [&mut ours, &mut mm, &mut gemm_crate, &mut faer]);
    black_box(&c);
    ms
}

const LIBRARIES: [&str; 4] = ["recurrent", "matrixmultiply", "gemm", "faer"];

fn matrix(rows: usize, cols: usize, data: &[f32]) -> DenseMatrix<f32> {
    DenseMatrix::from_vec(rows, cols, data.to_vec()).expect("the shape fits")
}

fn faer_ref(data: &[f32], rows: usize, cols: usize, transposed: bool) -> MatRef<'_, f32> {
    let m = MatRef::from_row_major_slice(data, rows, cols);
    if transposed { m.transpose() } else { m }
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1, 2]
    } else {
        counts
    };
    for threads in counts {
        println!("\nthreads {threads} (matrixmultiply: 1); GFLOP/s, best marked *");
        print!("{:28} {:>14}", "product", "m x k x n");
        LIBRARIES.iter().for_each(|l| print!(" {l:>14}"));
        println!();
        for s in shapes() {
            let ms = time_shape(&s, threads);
            let flops = 2.0 * (s.m * s.k * s.n) as f64;
            let best = ms.iter().copied().fold(f64::INFINITY, f64::min);
            let dims = format!("{}x{}x{}", s.m, s.k, s.n);
            print!("{:28} {dims:>14}", s.name);
            for v in &ms {
                let mark = if *v == best { "*" } else { " " };
                print!(" {:>13.1}{mark}", flops / v / 1e6);
            }
            println!();
        }
    }
}
