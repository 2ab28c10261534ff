// Optional native accelerator: single-precision GEMM and 1-D convolution through a system CBLAS
// (OpenBLAS on Debian: libopenblas-dev). Every function works in place on Float32Array views the
// caller provides — typically views into the tfjs wasm heap — so no tensor data is copied.
// Plain N-API (node_api.h), no node-addon-api, so it builds offline from the Node headers alone.
#define _GNU_SOURCE // syscall(), for the AMX permission request
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <immintrin.h>
#include <node_api.h>

// OpenBLAS extensions (declared in its cblas.h; weak so other CBLAS implementations also link).
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, NULL, "audiox_blas: N-API call failed");    \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static int get_f32(napi_env env, napi_value v, float **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr;
  size_t length, offset;
  napi_value buf;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &buf, &offset) != napi_ok ||
      type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "audiox_blas: expected a Float32Array");
    return 0;
  }
  *data = (float *)ptr;
  *len = length;
  return 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

// Integer arguments argv[0..n) into *outs[i]; on a non-number throws "<fn>: bad scalar argument".
static int get_i64s(napi_env env, const napi_value *argv, size_t n, int64_t *const *outs, const char *fn) {
  for (size_t i = 0; i < n; i++)
    if (!get_i64(env, argv[i], outs[i])) {
      char msg[96];
      snprintf(msg, sizeof msg, "%s: bad scalar argument", fn);
      napi_throw_type_error(env, NULL, msg);
      return 0;
    }
  return 1;
}

static int get_bool(napi_env env, napi_value v, bool *out, const char *fn) {
  if (napi_get_value_bool(env, v, out) == napi_ok) return 1;
  char msg[96];
  snprintf(msg, sizeof msg, "%s: expected a boolean", fn);
  napi_throw_type_error(env, NULL, msg);
  return 0;
}

// Declares argc/argv for up to `max` arguments and throws unless at least `min` arrived.
#define GET_ARGS(fn, max, min)                                                     \
  size_t argc = (max);                                                             \
  napi_value argv[(max)];                                                          \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                     \
  if (argc < (min)) {                                                              \
    napi_throw_type_error(env, NULL, fn ": expected at least " #min " arguments"); \
    return NULL;                                                                   \
  }

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

// Epilogue codes, shared with the TypeScript side (src/backend/blas.ts).
enum { ACT_LINEAR = 0, ACT_RELU = 1, ACT_RELU6 = 2, ACT_ELU = 3, ACT_LEAKY = 4, ACT_SIGMOID = 5 };

static void epilogue(float *c, size_t rows, size_t n, const float *bias, size_t bias_len, int act,
                     float alpha) {
  for (size_t r = 0; r < rows; r++) {
    float *row = c + r * n;
    if (bias) {
      if (bias_len == n)
        for (size_t j = 0; j < n; j++) row[j] += bias[j];
      else
        for (size_t j = 0; j < n; j++) row[j] += bias[0];
    }
    switch (act) {
      case ACT_RELU:
        for (size_t j = 0; j < n; j++) row[j] = row[j] > 0 ? row[j] : 0;
        break;
      case ACT_RELU6:
        for (size_t j = 0; j < n; j++) row[j] = row[j] < 0 ? 0 : (row[j] > 6 ? 6 : row[j]);
        break;
      case ACT_ELU:
        for (size_t j = 0; j < n; j++) row[j] = row[j] > 0 ? row[j] : expm1f(row[j]);
        break;
      case ACT_LEAKY:
        for (size_t j = 0; j < n; j++) row[j] = row[j] > 0 ? row[j] : alpha * row[j];
        break;
      case ACT_SIGMOID:
        for (size_t j = 0; j < n; j++) row[j] = 1.0f / (1.0f + expf(-row[j]));
        break;
      default:
        break;
    }
  }
}

// ---- bf16 GEMM on AMX (opt-in reduced precision) -----------------------------------------------
// C = op(A)·op(B) with both operands rounded to bfloat16 (round to nearest even) and fp32 accumulation
// in the AMX tile unit. Operands are packed per call: A into 16×32 row tiles, B into the VNNI layout
// (pairs of consecutive k per column), both zero-padded to whole 32×32 blocks.
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_tilecfg;

static int amx_usable(void) {
  static int known = -1;
  if (known < 0) {
    __builtin_cpu_init();
    known = __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("amx-tile") &&
            __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    // Linux (≥ 5.16) grants a process the AMX tile state only on request.
    if (known && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) != 0) known = 0;
  }
  return known;
}

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static inline __mmask16 first_lanes(int64_t n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

// op(A) [m, k] → tiles [Mp/16][Kp/32], each 16 rows × 32 bf16.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void pack_a(const float *a, int64_t m, int64_t k, int ta,
                                                                          int64_t Mp, int64_t Kp, uint16_t *ap) {
  const int64_t kb_n = Kp / 32;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < Mp; i++) {
    for (int64_t kb = 0; kb < kb_n; kb++) {
      uint16_t *dst = ap + ((i / 16) * kb_n + kb) * 512 + (i % 16) * 32;
      const int64_t k0 = kb * 32;
      __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
      if (i < m && !ta) {
        lo = _mm512_maskz_loadu_ps(first_lanes(k - k0), a + i * k + k0);
        hi = _mm512_maskz_loadu_ps(first_lanes(k - k0 - 16), a + i * k + k0 + 16);
      } else if (i < m) {
        float t[32];
        for (int j = 0; j < 32; j++) t[j] = k0 + j < k ? a[(k0 + j) * m + i] : 0.0f;
        lo = _mm512_loadu_ps(t);
        hi = _mm512_loadu_ps(t + 16);
      }
      _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
}

// op(B) [k, n] → tiles [Np/16][Kp/32], each 16 rows (k pairs) × 16 columns × 2 bf16 (the VNNI layout).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void pack_b(const float *b, int64_t k, int64_t n, int tb,
                                                                          int64_t Np, int64_t Kp, uint16_t *bp) {
  const int64_t kb_n = Kp / 32, jb_n = Np / 16;
  // (x0 as 16 bf16 | x1 as 16 bf16) → x0[0], x1[0], x0[1], x1[1], …
  const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
#pragma omp parallel for schedule(static)
  for (int64_t jb = 0; jb < jb_n; jb++) {
    const int64_t j0 = jb * 16;
    const __mmask16 mc = first_lanes(n - j0);
    for (int64_t kb = 0; kb < kb_n; kb++) {
      uint16_t *tile = bp + (jb * kb_n + kb) * 512;
      for (int r = 0; r < 16; r++) {
        const int64_t k0 = kb * 32 + 2 * r;
        __m512 x0 = _mm512_setzero_ps(), x1 = _mm512_setzero_ps();
        if (!tb) {
          if (k0 < k) x0 = _mm512_maskz_loadu_ps(mc, b + k0 * n + j0);
          if (k0 + 1 < k) x1 = _mm512_maskz_loadu_ps(mc, b + (k0 + 1) * n + j0);
        } else {
          float t0[16], t1[16];
          for (int c = 0; c < 16; c++) {
            const int64_t j = j0 + c;
            t0[c] = j < n && k0 < k ? b[j * k + k0] : 0.0f;
            t1[c] = j < n && k0 + 1 < k ? b[j * k + k0 + 1] : 0.0f;
          }
          x0 = _mm512_loadu_ps(t0);
          x1 = _mm512_loadu_ps(t1);
        }
        _mm512_storeu_si512(tile + r * 32, _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(x1, x0)));
      }
    }
  }
}

// C[m, n] (row stride n) = packed A · packed B in 32×32 blocks of four accumulator tiles.
__attribute__((target("amx-tile,amx-bf16,avx512f"))) static void amx_blocks(const uint16_t *ap, const uint16_t *bp,
                                                                             float *c, int64_t m, int64_t n, int64_t Mp,
                                                                             int64_t Np, int64_t Kp) {
  const int64_t kb_n = Kp / 32, ib_n = Mp / 32, jb_n = Np / 32;
#pragma omp parallel
  {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
      cfg.rows[t] = 16;
      cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    float out[4][256] __attribute__((aligned(64)));
#pragma omp for schedule(static) collapse(2)
    for (int64_t jb = 0; jb < jb_n; jb++) {
      for (int64_t ib = 0; ib < ib_n; ib++) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const uint16_t *a0 = ap + (2 * ib) * kb_n * 512, *a1 = a0 + kb_n * 512;
        const uint16_t *b0 = bp + (2 * jb) * kb_n * 512, *b1 = b0 + kb_n * 512;
        for (int64_t kb = 0; kb < kb_n; kb++) {
          _tile_loadd(4, a0 + kb * 512, 64);
          _tile_loadd(5, a1 + kb * 512, 64);
          _tile_loadd(6, b0 + kb * 512, 64);
          _tile_loadd(7, b1 + kb * 512, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, out[0], 64);
        _tile_stored(1, out[1], 64);
        _tile_stored(2, out[2], 64);
        _tile_stored(3, out[3], 64);
        for (int q = 0; q < 4; q++) {
          const int64_t i0 = ib * 32 + (q >> 1) * 16, j0 = jb * 32 + (q & 1) * 16;
          const int64_t cols = n - j0 >= 16 ? 16 : n - j0;
          if (cols <= 0) continue;
          for (int r = 0; r < 16 && i0 + r < m; r++) memcpy(c + (i0 + r) * n + j0, out[q] + r * 16, sizeof(float) * cols);
        }
      }
    }
    _tile_release();
  }
}

// C[m, n] = op(A)·op(B) in bf16 with fp32 accumulation; 0 when the packing buffers cannot be allocated.
static int gemm_bf16(const float *a, const float *b, float *c, int64_t m, int64_t n, int64_t k, int ta, int tb) {
  const int64_t Mp = round_up(m > 0 ? m : 1, 32), Np = round_up(n > 0 ? n : 1, 32), Kp = round_up(k > 0 ? k : 1, 32);
  uint16_t *ap = aligned_alloc(64, (size_t)(Mp * Kp * 2));
  uint16_t *bp = aligned_alloc(64, (size_t)(Np * Kp * 2));
  if (!ap || !bp) {
    free(ap);
    free(bp);
    return 0;
  }
  pack_a(a, m, k, ta, Mp, Kp, ap);
  pack_b(b, k, n, tb, Np, Kp, bp);
  amx_blocks(ap, bp, c, m, n, Mp, Np, Kp);
  free(ap);
  free(bp);
  return 1;
}

// GEMM precision of gemm(): 0 = fp32 (cblas_sgemm), 1 = bf16 operands with fp32 accumulation (AMX).
static int gemm_precision = 0;

// gemm(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, bias|null, act, alpha)
// Row-major C[i] = op(A[i]) · op(B[i]) (+ bias, activation) for i < batch; a stride of 0
// broadcasts that operand over the batch. op(A) is [m, k], op(B) is [k, n], C[i] is [m, n].
static napi_value Gemm(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.gemm", 14, 11)
  float *a, *b, *c, *bias = NULL;
  size_t la, lb, lc, lbias = 0;
  int64_t batch, m, n, k, sa, sb, act = ACT_LINEAR;
  double alpha = 0;
  bool ta, tb;
  if (!get_f32(env, argv[0], &a, &la) || !get_f32(env, argv[1], &b, &lb) || !get_f32(env, argv[2], &c, &lc))
    return NULL;
  const char *fn = "audiox_blas.gemm";
  if (!get_i64s(env, argv + 3, 4, (int64_t *const[]){&batch, &m, &n, &k}, fn) || !get_bool(env, argv[7], &ta, fn) ||
      !get_bool(env, argv[8], &tb, fn) || !get_i64s(env, argv + 9, 2, (int64_t *const[]){&sa, &sb}, fn))
    return NULL;
  if (argc > 11 && !is_nullish(env, argv[11]) && !get_f32(env, argv[11], &bias, &lbias)) return NULL;
  if (argc > 12) get_i64(env, argv[12], &act);
  if (argc > 13) napi_get_value_double(env, argv[13], &alpha);
  if (batch < 1 || m < 0 || n < 0 || k < 0 || sa < 0 || sb < 0 ||
      (size_t)((batch - 1) * sa + m * k) > la || (size_t)((batch - 1) * sb + k * n) > lb ||
      (size_t)(batch * m * n) > lc || (bias && lbias != (size_t)n && lbias != 1)) {
    napi_throw_range_error(env, NULL, "audiox_blas.gemm: sizes exceed the given arrays");
    return NULL;
  }
  for (int64_t i = 0; i < batch; i++) {
    float *ci = c + i * m * n;
    if (k == 0) {
      memset(ci, 0, sizeof(float) * m * n);
    } else if (gemm_precision == 1) {
      if (!gemm_bf16(a + i * sa, b + i * sb, ci, m, n, k, ta, tb)) {
        napi_throw_error(env, NULL, "audiox_blas.gemm: out of memory for the bf16 packing buffers");
        return NULL;
      }
    } else {
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
                  (int)n, (int)k, 1.0f, a + i * sa, ta ? (int)m : (int)k, b + i * sb, tb ? (int)k : (int)n,
                  0.0f, ci, (int)n);
    }
  }
  if (bias || act != ACT_LINEAR) epilogue(c, (size_t)(batch * m), (size_t)n, bias, lbias, (int)act, (float)alpha);
  return NULL;
}

// conv1d(x, w, y, batch, win, cin, cout, kw, stride, dilation, padLeft, wout)
// Channels-last: x [batch, win, cin], w [kw, cin, cout] (tfjs' HWIO with H = 1), y [batch, wout, cout].
// im2col into row blocks of bounded size, then one GEMM per block.
static napi_value Conv1d(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.conv1d", 12, 12)
  float *x, *w, *y;
  size_t lx, lw, ly;
  int64_t p[9];
  if (!get_f32(env, argv[0], &x, &lx) || !get_f32(env, argv[1], &w, &lw) || !get_f32(env, argv[2], &y, &ly))
    return NULL;
  if (!get_i64s(env, argv + 3, 9, (int64_t *const[]){&p[0], &p[1], &p[2], &p[3], &p[4], &p[5], &p[6], &p[7], &p[8]},
                "audiox_blas.conv1d"))
    return NULL;
  const int64_t batch = p[0], win = p[1], cin = p[2], cout = p[3], kw = p[4], stride = p[5], dil = p[6],
                pad = p[7], wout = p[8];
  if ((size_t)(batch * win * cin) > lx || (size_t)(kw * cin * cout) > lw || (size_t)(batch * wout * cout) > ly ||
      stride < 1 || dil < 1) {
    napi_throw_range_error(env, NULL, "audiox_blas.conv1d: sizes exceed the given arrays");
    return NULL;
  }
  const int64_t kdim = kw * cin;
  if (kw == 1 && stride == 1 && pad == 0 && wout == win) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(batch * win), (int)cout, (int)cin, 1.0f, x,
                (int)cin, w, (int)cout, 0.0f, y, (int)cout);
    return NULL;
  }
  // Rows per block: keep the patch buffer around 64 MiB.
  int64_t block = (16 << 20) / (kdim > 0 ? kdim : 1);
  if (block < 1) block = 1;
  float *cols = (float *)malloc(sizeof(float) * (size_t)(block < wout ? block : wout) * (size_t)kdim);
  if (!cols) {
    napi_throw_error(env, NULL, "audiox_blas.conv1d: out of memory");
    return NULL;
  }
  for (int64_t bi = 0; bi < batch; bi++) {
    const float *xb = x + bi * win * cin;
    for (int64_t t0 = 0; t0 < wout; t0 += block) {
      const int64_t rows = (wout - t0 < block) ? wout - t0 : block;
      for (int64_t r = 0; r < rows; r++) {
        float *dst = cols + r * kdim;
        const int64_t base = (t0 + r) * stride - pad;
        for (int64_t j = 0; j < kw; j++) {
          const int64_t t = base + j * dil;
          if (t < 0 || t >= win)
            memset(dst + j * cin, 0, sizeof(float) * cin);
          else
            memcpy(dst + j * cin, xb + t * cin, sizeof(float) * cin);
        }
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cout, (int)kdim, 1.0f, cols,
                  (int)kdim, w, (int)cout, 0.0f, y + (bi * wout + t0) * cout, (int)cout);
    }
  }
  free(cols);
  return NULL;
}

// biasAct(y, rows, n, bias|null, act, alpha): y[r, :] = act(y[r, :] + bias) in place.
static napi_value BiasAct(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *y, *bias = NULL;
  size_t ly, lbias = 0;
  int64_t rows, n, act = ACT_LINEAR;
  double alpha = 0;
  if (argc < 3 || !get_f32(env, argv[0], &y, &ly)) return NULL;
  if (!get_i64(env, argv[1], &rows) || !get_i64(env, argv[2], &n)) {
    napi_throw_type_error(env, NULL, "audiox_blas.biasAct: bad scalar argument");
    return NULL;
  }
  if (argc > 3 && !is_nullish(env, argv[3]) && !get_f32(env, argv[3], &bias, &lbias)) return NULL;
  if (argc > 4) get_i64(env, argv[4], &act);
  if (argc > 5) napi_get_value_double(env, argv[5], &alpha);
  if (rows < 0 || n < 0 || (size_t)(rows * n) > ly || (bias && lbias != (size_t)n && lbias != 1)) {
    napi_throw_range_error(env, NULL, "audiox_blas.biasAct: sizes exceed the given arrays");
    return NULL;
  }
  epilogue(y, (size_t)rows, (size_t)n, bias, lbias, (int)act, (float)alpha);
  return NULL;
}

// sin(x, y, n): y = sin(x) elementwise (tfjs' wasm Sin is a scalar libm loop compiled to wasm).
static napi_value Sin(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *y;
  size_t lx, ly;
  int64_t n;
  if (argc < 3 || !get_f32(env, argv[0], &x, &lx) || !get_f32(env, argv[1], &y, &ly)) return NULL;
  if (!get_i64(env, argv[2], &n) || n < 0 || (size_t)n > lx || (size_t)n > ly) {
    napi_throw_range_error(env, NULL, "audiox_blas.sin: sizes exceed the given arrays");
    return NULL;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = sinf(x[i]);
  return NULL;
}

// snakeBeta(x, a, invB, y, rows, channels): channels-last SnakeBeta in one pass,
// y = x + invB[c] · sin(a[c]·x)² (a = exp(alpha), invB = 1/(exp(beta) + 1e-9) folded by the caller).
static napi_value SnakeBeta(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *a, *ib, *y;
  size_t lx, la, lb, ly;
  int64_t rows, ch;
  if (argc < 6 || !get_f32(env, argv[0], &x, &lx) || !get_f32(env, argv[1], &a, &la) ||
      !get_f32(env, argv[2], &ib, &lb) || !get_f32(env, argv[3], &y, &ly))
    return NULL;
  if (!get_i64(env, argv[4], &rows) || !get_i64(env, argv[5], &ch) || rows < 0 || ch < 1 ||
      (size_t)(rows * ch) > lx || (size_t)(rows * ch) > ly || (size_t)ch > la || (size_t)ch > lb) {
    napi_throw_range_error(env, NULL, "audiox_blas.snakeBeta: sizes exceed the given arrays");
    return NULL;
  }
#pragma omp parallel for schedule(static) if (rows * ch > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * ch;
    float *yr = y + r * ch;
    for (int64_t c = 0; c < ch; c++) {
      const float s = sinf(a[c] * xr[c]);
      yr[c] = xr[c] + ib[c] * s * s;
    }
  }
  return NULL;
}

// Half → float over a contiguous run: the F16C instruction where the CPU has it (exact for every value;
// NaNs come out quiet, as from any hardware conversion), else the caller's table.
__attribute__((target("f16c,avx"))) static void widen_f16c(const uint16_t *src, float *dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

static int has_f16c(void) {
  static int known = -1;
  if (known < 0) {
    __builtin_cpu_init();
    known = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  }
  return known;
}

static void widen_row(const uint16_t *src, float *dst, int64_t n, const float *table, int f16c) {
  if (f16c) {
    widen_f16c(src, dst, n);
    return;
  }
  for (int64_t i = 0; i < n; i++) dst[i] = table[src[i]];
}

// relayout(src, dst, cols, rowStart, rowCount, transpose, table): rows [rowStart, rowStart + rowCount) of a
// row-major [rows, cols] tensor into dst, transposed to [cols, rowCount] when `transpose`. src is a
// Float32Array, or a Uint16Array of IEEE half bits, widened by F16C where the CPU has it, else through
// `table` (65536 floats, the caller's own widening table); both equal the caller's widening except in
// NaN payloads. Used to load weights straight into the
// layout a layer derives (nn/residency.ts), without a torch-layout copy; blocked for the cache.
#define RELAYOUT_TILE 64
static napi_value Relayout(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.relayout", 7, 7)
  napi_typedarray_type type;
  void *sp;
  size_t slen, off;
  napi_value buf;
  if (napi_get_typedarray_info(env, argv[0], &type, &slen, &sp, &buf, &off) != napi_ok ||
      (type != napi_float32_array && type != napi_uint16_array)) {
    napi_throw_type_error(env, NULL, "audiox_blas.relayout: src must be a Float32Array or a Uint16Array");
    return NULL;
  }
  const int half = type == napi_uint16_array;
  float *dst, *table = NULL;
  size_t dlen, tlen = 0;
  int64_t cols, r0, nr;
  bool tr;
  if (!get_f32(env, argv[1], &dst, &dlen)) return NULL;
  const char *fn = "audiox_blas.relayout";
  if (!get_i64s(env, argv + 2, 3, (int64_t *const[]){&cols, &r0, &nr}, fn) || !get_bool(env, argv[5], &tr, fn))
    return NULL;
  if (half && (!get_f32(env, argv[6], &table, &tlen) || tlen != 65536)) {
    if (!table) return NULL;
    napi_throw_range_error(env, NULL, "audiox_blas.relayout: the half table must hold 65536 floats");
    return NULL;
  }
  if (cols < 1 || r0 < 0 || nr < 0 || (size_t)((r0 + nr) * cols) > slen || (size_t)(nr * cols) > dlen) {
    napi_throw_range_error(env, NULL, "audiox_blas.relayout: sizes exceed the given arrays");
    return NULL;
  }
  const float *sf = (const float *)sp + (half ? 0 : r0 * cols);
  const uint16_t *sh = (const uint16_t *)sp + (half ? r0 * cols : 0);
  const int f16c = half && has_f16c();
  if (!tr) {
    const int64_t n = nr * cols;
    if (!half) {
      memcpy(dst, sf, (size_t)n * sizeof(float));
      return NULL;
    }
    const int64_t chunk = 1 << 16;
#pragma omp parallel for schedule(static) if (n > 2 * chunk)
    for (int64_t b = 0; b < n; b += chunk) {
      const int64_t e = b + chunk < n ? b + chunk : n;
      widen_row(sh + b, dst + b, e - b, table, f16c);
    }
    return NULL;
  }
  // dst[c * nr + r] = src[r * cols + c], tile by tile: widen a tile's rows into a local buffer, then write
  // its columns out.
  const int64_t tilesR = (nr + RELAYOUT_TILE - 1) / RELAYOUT_TILE;
  const int64_t tilesC = (cols + RELAYOUT_TILE - 1) / RELAYOUT_TILE;
#pragma omp parallel for schedule(static) if (nr * cols > 65536)
  for (int64_t t = 0; t < tilesR * tilesC; t++) {
    float tile[RELAYOUT_TILE][RELAYOUT_TILE];
    const int64_t rb = (t / tilesC) * RELAYOUT_TILE, cb = (t % tilesC) * RELAYOUT_TILE;
    const int64_t re = rb + RELAYOUT_TILE < nr ? rb + RELAYOUT_TILE : nr;
    const int64_t ce = cb + RELAYOUT_TILE < cols ? cb + RELAYOUT_TILE : cols;
    for (int64_t r = rb; r < re; r++) {
      if (half)
        widen_row(sh + r * cols + cb, tile[r - rb], ce - cb, table, f16c);
      else
        memcpy(tile[r - rb], sf + r * cols + cb, (size_t)(ce - cb) * sizeof(float));
    }
    for (int64_t c = cb; c < ce; c++) {
      float *d = dst + c * nr;
      for (int64_t r = rb; r < re; r++) d[r] = tile[r - rb][c - cb];
    }
  }
  return NULL;
}

// misalignment(a): bytes past the last 64-byte boundary at which typed array `a`'s data starts. TensorFlow
// adopts a buffer without copying only when it is 64-byte aligned (TF_NewTensor copies anything else).
static napi_value Misalignment(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  void *p;
  size_t len, off;
  napi_value buf;
  if (argc < 1 || napi_get_typedarray_info(env, argv[0], &type, &len, &p, &buf, &off) != napi_ok) {
    napi_throw_type_error(env, NULL, "audiox_blas.misalignment: expected a typed array");
    return NULL;
  }
  CHECK(napi_create_int32(env, (int32_t)((uintptr_t)p % 64), &out));
  return out;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc > 0 && get_i64(env, argv[0], &n) && n > 0 && openblas_set_num_threads) openblas_set_num_threads((int)n);
  return NULL;
}

// setGemmPrecision(p): 0 = fp32, 1 = bf16 (AMX); returns the precision now in effect (1 is refused → 0
// on a CPU or kernel without AMX-BF16).
static napi_value SetGemmPrecision(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.setGemmPrecision", 1, 1)
  int64_t p;
  if (!get_i64s(env, argv, 1, (int64_t *const[]){&p}, "audiox_blas.setGemmPrecision")) return NULL;
  gemm_precision = p == 1 && amx_usable() ? 1 : 0;
  napi_value out;
  CHECK(napi_create_int32(env, gemm_precision, &out));
  return out;
}

static napi_value Info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj, threads, config;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_int32(env, openblas_get_num_threads ? openblas_get_num_threads() : 1, &threads));
  const char *cfg = openblas_get_config ? openblas_get_config() : "CBLAS";
  CHECK(napi_create_string_utf8(env, cfg, NAPI_AUTO_LENGTH, &config));
  CHECK(napi_set_named_property(env, obj, "threads", threads));
  CHECK(napi_set_named_property(env, obj, "config", config));
  return obj;
}

// ---- transformer passes outside the GEMMs (attention, layer norm, GELU) --------------------------
// tfjs' wasm kernels run these as chains of generic element-wise, slice, tile and transpose kernels;
// here each is one pass over the data (OpenMP across rows), with AVX2 exp/erf where the CPU has them.

static int has_avx2_fma(void) {
  static int known = -1;
  if (known < 0) {
    __builtin_cpu_init();
    known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return known;
}

// exp on 8 lanes (Cephes' expf: range reduction by ln 2 in two parts, degree-5 polynomial; ≈ 1 ulp).
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365447504f)), _mm256_set1_ps(88.3762626647949f));
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) static float hsum8(__m256 v) {
  float l[8];
  _mm256_storeu_ps(l, v);
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

// row[0..n) = softmax(row) in place (max subtracted first, as tf.softmax).
__attribute__((target("avx2,fma"))) static void softmax_row_avx2(float *row, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
  const __m256 m8 = _mm256_set1_ps(mx);
  __m256 s8 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), m8));
    _mm256_storeu_ps(row + j, e);
    s8 = _mm256_add_ps(s8, e);
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, s8);
  float sum = 0;
  for (int i = 0; i < 8; i++) sum += lanes[i];
  for (; j < n; j++) {
    row[j] = expf(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
  for (j = 0; j < n; j++) row[j] *= inv;
}

static void softmax_row(float *row, int64_t n) {
  if (has_avx2_fma()) {
    softmax_row_avx2(row, n);
    return;
  }
  float mx = -INFINITY, sum = 0;
  for (int64_t j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
  for (int64_t j = 0; j < n; j++) sum += (row[j] = expf(row[j] - mx));
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) row[j] *= inv;
}

// Groups smaller than this run as plain loops (one group per OpenMP iteration); larger ones through CBLAS.
#define DIVIDED_BLAS_MIN 32

// One small group of divided attention: S queries (rows q + i·rs), keys/values the CLS row (kc, vc) and the
// group's rows (k + j·rs, v + j·rs); outputs at o + i·ro; s: S + 1 floats of scratch.
static void small_group(const float *q, const float *k, const float *v, const float *kc, const float *vc, float *o,
                        int64_t S, int64_t hd, int64_t rs, int64_t ro, float sc, float *s) {
  for (int64_t i = 0; i < S; i++) {
    const float *qi = q + i * rs;
    for (int64_t j = -1; j < S; j++) {
      const float *kj = j < 0 ? kc : k + j * rs;
      float acc = 0;
      for (int64_t c = 0; c < hd; c++) acc += qi[c] * kj[c];
      s[1 + j] = acc * sc;
    }
    softmax_row(s, S + 1);
    float *oi = o + i * ro;
    for (int64_t c = 0; c < hd; c++) oi[c] = s[0] * vc[c];
    for (int64_t j = 0; j < S; j++) {
      const float *vj = v + j * rs;
      const float p = s[1 + j];
      for (int64_t c = 0; c < hd; c++) oi[c] += p * vj[c];
    }
  }
}

__attribute__((target("avx2,fma"))) static void small_group_avx2(const float *q, const float *k, const float *v, const float *kc,
                                                                 const float *vc, float *o, int64_t S, int64_t hd, int64_t rs,
                                                                 int64_t ro, float sc, float *s) {
  const int64_t h8 = hd / 8 * 8;
  for (int64_t i = 0; i < S; i++) {
    const float *qi = q + i * rs;
    for (int64_t j = -1; j < S; j++) {
      const float *kj = j < 0 ? kc : k + j * rs;
      __m256 a8 = _mm256_setzero_ps();
      for (int64_t c = 0; c < h8; c += 8) a8 = _mm256_fmadd_ps(_mm256_loadu_ps(qi + c), _mm256_loadu_ps(kj + c), a8);
      float acc = hsum8(a8);
      for (int64_t c = h8; c < hd; c++) acc += qi[c] * kj[c];
      s[1 + j] = acc * sc;
    }
    softmax_row_avx2(s, S + 1);
    float *oi = o + i * ro;
    for (int64_t c = 0; c < h8; c += 8) {
      __m256 a8 = _mm256_mul_ps(_mm256_set1_ps(s[0]), _mm256_loadu_ps(vc + c));
      for (int64_t j = 0; j < S; j++) a8 = _mm256_fmadd_ps(_mm256_set1_ps(s[1 + j]), _mm256_loadu_ps(v + j * rs + c), a8);
      _mm256_storeu_ps(oi + c, a8);
    }
    for (int64_t c = h8; c < hd; c++) {
      float a = s[0] * vc[c];
      for (int64_t j = 0; j < S; j++) a += s[1 + j] * v[j * rs + c];
      oi[c] = a;
    }
  }
}

// dividedAttention(qkv, out, n, frames, positions, heads, headDim, time, scale): MotionFormer's divided
// space-time attention read straight from the packed qkv projection and written with the heads merged.
// qkv [n, L, 3·D] (L = 1 + frames·positions, D = heads·headDim; q, k, v blocks of D, head h at h·headDim),
// out [n, L, D]. Token 0 (CLS) attends to all L tokens; patch token (f, p) = 1 + f·positions + p attends to
// the CLS token and the tokens of its group: the same p over all frames (time) or the same f over all
// positions (space). Scores are q·k·scale.
static napi_value DividedAttention(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.dividedAttention", 9, 9)
  float *qkv, *out;
  size_t lq, lo;
  int64_t n, frames, positions, heads, hd;
  bool time;
  double scale;
  const char *fn = "audiox_blas.dividedAttention";
  if (!get_f32(env, argv[0], &qkv, &lq) || !get_f32(env, argv[1], &out, &lo)) return NULL;
  if (!get_i64s(env, argv + 2, 5, (int64_t *const[]){&n, &frames, &positions, &heads, &hd}, fn) ||
      !get_bool(env, argv[7], &time, fn) || napi_get_value_double(env, argv[8], &scale) != napi_ok) {
    napi_throw_type_error(env, NULL, "audiox_blas.dividedAttention: bad scalar argument");
    return NULL;
  }
  const int64_t L = 1 + frames * positions, D = heads * hd, ld = 3 * D;
  if (n < 0 || frames < 1 || positions < 1 || heads < 1 || hd < 1 || (size_t)(n * L * ld) > lq || (size_t)(n * L * D) > lo) {
    napi_throw_range_error(env, NULL, "audiox_blas.dividedAttention: sizes exceed the given arrays");
    return NULL;
  }
  const float sc = (float)scale;
  // Groups: G of S tokens; member i of group g is row r0(g) + i·step.
  const int64_t G = time ? positions : frames, S = time ? frames : positions, step = time ? positions : 1;
  const int64_t bh_n = n * heads;
  // One (item, head) CLS query or one (item, head, group) per OpenMP iteration, each with single-threaded
  // CBLAS calls on its own scratch: OpenBLAS' own threads are slow to wake for products this small.
  const int blas_threads = openblas_get_num_threads ? openblas_get_num_threads() : 1;
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  int failed = 0;
  const int avx = has_avx2_fma();
#pragma omp parallel
  {
    float *scratch = malloc(sizeof(float) * (size_t)(L > S * (S + 1) ? L : S * (S + 1)));
    if (!scratch) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < bh_n * (1 + G); t++) {
      if (!scratch) continue;
      const int64_t bh = t / (1 + G), g = t % (1 + G) - 1, b = bh / heads, h = bh % heads;
      const float *x = qkv + b * L * ld;
      const float *q = x + h * hd, *k = x + D + h * hd, *v = x + 2 * D + h * hd;
      float *o = out + b * L * D + h * hd;
      if (g < 0) { // the CLS query over all L keys
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)L, (int)hd, sc, k, (int)ld, q, 1, 0.0f, scratch, 1);
        softmax_row(scratch, L);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)L, (int)hd, 1.0f, v, (int)ld, scratch, 1, 0.0f, o, 1);
        continue;
      }
      const int64_t r0 = time ? 1 + g : 1 + g * positions;
      if (S >= DIVIDED_BLAS_MIN) { // scores [S, 1 + S] (column 0: the CLS key), then P·V into the merged output
        const int lg = (int)(step * ld), ls = (int)(S + 1), lo_g = (int)(step * D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)S, (int)S, (int)hd, sc, q + r0 * ld, lg, k + r0 * ld, lg, 0.0f, scratch + 1, ls);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)S, (int)hd, sc, q + r0 * ld, lg, k, 1, 0.0f, scratch, ls);
        for (int64_t r = 0; r < S; r++) softmax_row(scratch + r * (S + 1), S + 1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)S, (int)hd, (int)S, 1.0f, scratch + 1, ls, v + r0 * ld, lg, 0.0f, o + r0 * D, lo_g);
        cblas_sger(CblasRowMajor, (int)S, (int)hd, 1.0f, scratch, ls, v, 1, o + r0 * D, lo_g);
        continue;
      }
      const float *qg = q + r0 * ld, *kg = k + r0 * ld, *vg = v + r0 * ld;
      if (avx)
        small_group_avx2(qg, kg, vg, k, v, o + r0 * D, S, hd, step * ld, step * D, sc, scratch);
      else
        small_group(qg, kg, vg, k, v, o + r0 * D, S, hd, step * ld, step * D, sc, scratch);
    }
    free(scratch);
  }
  if (openblas_set_num_threads) openblas_set_num_threads(blas_threads);
  if (failed) napi_throw_error(env, NULL, "audiox_blas.dividedAttention: out of memory");
  return NULL;
}

static void layer_norm_row(const float *xr, float *yr, int64_t ch, const float *w, const float *bb, float eps) {
  float sum = 0;
  for (int64_t c = 0; c < ch; c++) sum += xr[c];
  const float mean = sum / (float)ch;
  float var = 0;
  for (int64_t c = 0; c < ch; c++) {
    const float d = xr[c] - mean;
    var += d * d;
  }
  const float inv = 1.0f / sqrtf(var / (float)ch + eps);
  for (int64_t c = 0; c < ch; c++) {
    float t = (xr[c] - mean) * inv;
    if (w) t *= w[c];
    if (bb) t += bb[c];
    yr[c] = t;
  }
}


__attribute__((target("avx2,fma"))) static void layer_norm_row_avx2(const float *xr, float *yr, int64_t ch, const float *w,
                                                                    const float *bb, float eps) {
  const int64_t n8 = ch / 8 * 8;
  __m256 s8 = _mm256_setzero_ps();
  float sum = 0;
  for (int64_t c = 0; c < n8; c += 8) s8 = _mm256_add_ps(s8, _mm256_loadu_ps(xr + c));
  for (int64_t c = n8; c < ch; c++) sum += xr[c];
  const float mean = (hsum8(s8) + sum) / (float)ch;
  const __m256 m8 = _mm256_set1_ps(mean);
  __m256 v8 = _mm256_setzero_ps();
  float var = 0;
  for (int64_t c = 0; c < n8; c += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + c), m8);
    v8 = _mm256_fmadd_ps(d, d, v8);
  }
  for (int64_t c = n8; c < ch; c++) var += (xr[c] - mean) * (xr[c] - mean);
  const float inv = 1.0f / sqrtf((hsum8(v8) + var) / (float)ch + eps);
  const __m256 i8 = _mm256_set1_ps(inv);
  for (int64_t c = 0; c < n8; c += 8) {
    __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), m8), i8);
    if (w) t = _mm256_mul_ps(t, _mm256_loadu_ps(w + c));
    if (bb) t = _mm256_add_ps(t, _mm256_loadu_ps(bb + c));
    _mm256_storeu_ps(yr + c, t);
  }
  for (int64_t c = n8; c < ch; c++) {
    float t = (xr[c] - mean) * inv;
    if (w) t *= w[c];
    if (bb) t += bb[c];
    yr[c] = t;
  }
}

// layerNorm(x, y, rows, ch, weight|null, bias|null, eps): y = (x − mean)/√(var + eps) (· weight) (+ bias)
// over the last axis (two-pass mean and variance per row, as tf.moments).
static napi_value LayerNorm(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.layerNorm", 7, 7)
  float *x, *y, *w = NULL, *bb = NULL;
  size_t lx, ly, lw = 0, lb = 0;
  int64_t rows, ch;
  double eps;
  const char *fn = "audiox_blas.layerNorm";
  if (!get_f32(env, argv[0], &x, &lx) || !get_f32(env, argv[1], &y, &ly)) return NULL;
  if (!get_i64s(env, argv + 2, 2, (int64_t *const[]){&rows, &ch}, fn)) return NULL;
  if (!is_nullish(env, argv[4]) && !get_f32(env, argv[4], &w, &lw)) return NULL;
  if (!is_nullish(env, argv[5]) && !get_f32(env, argv[5], &bb, &lb)) return NULL;
  if (napi_get_value_double(env, argv[6], &eps) != napi_ok) {
    napi_throw_type_error(env, NULL, "audiox_blas.layerNorm: bad scalar argument");
    return NULL;
  }
  if (rows < 0 || ch < 1 || (size_t)(rows * ch) > lx || (size_t)(rows * ch) > ly || (w && lw != (size_t)ch) ||
      (bb && lb != (size_t)ch)) {
    napi_throw_range_error(env, NULL, "audiox_blas.layerNorm: sizes exceed the given arrays");
    return NULL;
  }
  const int avx = has_avx2_fma();
  // Memory-bound and ≈ 1 ms for [1569, 768] on one core: threads only pay beyond a few million values (an
  // OpenMP barrier on a busy 2-core machine can cost more than the whole pass).
#pragma omp parallel for schedule(static) if (rows * ch > (1 << 22))
  for (int64_t r = 0; r < rows; r++) {
    if (avx)
      layer_norm_row_avx2(x + r * ch, y + r * ch, ch, w, bb, (float)eps);
    else
      layer_norm_row(x + r * ch, y + r * ch, ch, w, bb, (float)eps);
  }
  return NULL;
}

// erf on 8 lanes: Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), the approximation tfjs' own Erf uses.
__attribute__((target("avx2,fma"))) static inline __m256 erf8(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
  const __m256 r = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(r, sign);
}

__attribute__((target("avx2,fma"))) static void gelu_avx2(const float *x, float *y, int64_t n) {
  const __m256 h = _mm256_set1_ps(0.5f), r2 = _mm256_set1_ps((float)M_SQRT1_2), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(h, v), _mm256_add_ps(one, erf8(_mm256_mul_ps(v, r2)))));
  }
  for (; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

// gelu(x, y, n): exact GELU y = 0.5·x·(1 + erf(x/√2)) (erf as above; glibc's erff without AVX2).
static napi_value Gelu(napi_env env, napi_callback_info info) {
  GET_ARGS("audiox_blas.gelu", 3, 3)
  float *x, *y;
  size_t lx, ly;
  int64_t n;
  if (!get_f32(env, argv[0], &x, &lx) || !get_f32(env, argv[1], &y, &ly)) return NULL;
  if (!get_i64(env, argv[2], &n) || n < 0 || (size_t)n > lx || (size_t)n > ly) {
    napi_throw_range_error(env, NULL, "audiox_blas.gelu: sizes exceed the given arrays");
    return NULL;
  }
  const int64_t chunk = 1 << 14;
  const int avx = has_avx2_fma();
#pragma omp parallel for schedule(static) if (n > 4 * chunk)
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = b + chunk < n ? b + chunk : n;
    if (avx)
      gelu_avx2(x + b, y + b, e - b);
    else
      for (int64_t i = b; i < e; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
  }
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gemm", NULL, Gemm, NULL, NULL, NULL, napi_default, NULL},
      {"conv1d", NULL, Conv1d, NULL, NULL, NULL, napi_default, NULL},
      {"biasAct", NULL, BiasAct, NULL, NULL, NULL, napi_default, NULL},
      {"sin", NULL, Sin, NULL, NULL, NULL, napi_default, NULL},
      {"snakeBeta", NULL, SnakeBeta, NULL, NULL, NULL, napi_default, NULL},
      {"relayout", NULL, Relayout, NULL, NULL, NULL, napi_default, NULL},
      {"misalignment", NULL, Misalignment, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"setGemmPrecision", NULL, SetGemmPrecision, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, Info, NULL, NULL, NULL, napi_default, NULL},
      {"dividedAttention", NULL, DividedAttention, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, LayerNorm, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, Gelu, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
