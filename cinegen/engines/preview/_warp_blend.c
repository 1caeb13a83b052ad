/* The preview engine's first + last frame render, fused: both images warped back along
   their flows, blended by trust, written as RGB, in one pass over the frame (see warp.py's
   `warp_blend` for what it computes). Image to video calls it for one image, with the other
   weighted zero.

   OpenCV does this as two remaps, two field and one weight upscales, a blend and a narrowing to
   RGB, each a pass over full-size arrays; here it is one pass. Per 8 pixels: the flows and
   where each splat landed are interpolated between two rows that are already at full width
   (cv2.resize made them) and scaled to this frame's time, each image is sampled at its 8
   points with AVX2 gathers of pixel pairs, and the arithmetic is 16-bit fixed point
   (positions to 1/64 pixel, weights to 1/32768). Where neither image moves at 8 pixels by
   half a step of the sample positions (a still background), their pixels are loaded instead,
   which is cheaper than gathering them; an image weighted under 1/512 at all 8 pixels is not
   sampled.

   x86-64 with AVX2 and FMA only (a second build of the same code runs where the CPU also has
   AVX-512); elsewhere the module refuses to import and warp.py uses OpenCV. Called with the
   GIL released, by two threads that share the frame band by band. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma")))
#define BAND 16 /* rows a thread takes at a time */
#define PREFETCH_ROWS 4

/* Each pixel's 16-bit weight w, repeated over its four channels (64 bits per pixel):
   pixels 0..3 in *lo, 4..7 in *hi. */
TARGET static inline void per_channel(__m256i w, __m256i *lo, __m256i *hi) {
    w = _mm256_or_si256(w, _mm256_slli_epi32(w, 16));
    __m256i a = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(w));
    __m256i b = _mm256_cvtepu32_epi64(_mm256_extracti128_si256(w, 1));
    *lo = _mm256_or_si256(a, _mm256_slli_epi64(a, 32));
    *hi = _mm256_or_si256(b, _mm256_slli_epi64(b, 32));
}

/* Bilinear samples of an RGBA image at 8 points (edges repeated), as 16-bit channels scaled
   by 64: pixels 0..3 in *lo, 4..7 in *hi. */
TARGET static inline void sample8(const uint32_t *src, int W, int H, __m256 X, __m256 Y,
                                  __m256i *lo, __m256i *hi) {
    X = _mm256_min_ps(_mm256_max_ps(X, _mm256_setzero_ps()), _mm256_set1_ps((float)(W - 1)));
    Y = _mm256_min_ps(_mm256_max_ps(Y, _mm256_setzero_ps()), _mm256_set1_ps((float)(H - 1)));
    __m256i ix = _mm256_min_epi32(_mm256_cvttps_epi32(X), _mm256_set1_epi32(W - 2));
    __m256i iy = _mm256_min_epi32(_mm256_cvttps_epi32(Y), _mm256_set1_epi32(H - 2));
    __m256 c64 = _mm256_set1_ps(64.0f);
    __m256i ax = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(X, _mm256_cvtepi32_ps(ix)), c64));
    __m256i ay = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(Y, _mm256_cvtepi32_ps(iy)), c64));
    __m256i idx = _mm256_add_epi32(_mm256_mullo_epi32(iy, _mm256_set1_epi32(W)), ix);
    /* Fetch now what the output rows PREFETCH_ROWS below will sample here (each row below
       samples a row further down). Where the vertical flow changes along the row, every 8
       pixels start on another source row, a place the hardware prefetcher cannot foresee, and
       the gathers would wait on memory (most where the flow turns across the frame). */
    int first = _mm256_cvtsi256_si32(idx), last = _mm256_extract_epi32(idx, 7);
    int ahead = PREFETCH_ROWS * W, end = W * H - 1;
    _mm_prefetch((const char *)(src + (first + ahead < end ? first + ahead : end)), _MM_HINT_T0);
    _mm_prefetch((const char *)(src + (last + 1 + ahead < end ? last + 1 + ahead : end)), _MM_HINT_T0);
    const long long *base = (const long long *)src;
    __m128i i0 = _mm256_castsi256_si128(idx), i1 = _mm256_extracti128_si256(idx, 1);
    __m128i below = _mm_set1_epi32(W);
    /* each 64-bit item: a pixel and its right neighbour */
    __m256i t0 = _mm256_i32gather_epi64(base, i0, 4), t1 = _mm256_i32gather_epi64(base, i1, 4);
    __m256i b0 = _mm256_i32gather_epi64(base, _mm_add_epi32(i0, below), 4);
    __m256i b1 = _mm256_i32gather_epi64(base, _mm_add_epi32(i1, below), 4);
    __m256i pairs = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,
                                     0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    __m256i wx0, wx1, wy0, wy1;
    per_channel(_mm256_or_si256(_mm256_sub_epi32(_mm256_set1_epi32(64), ax), _mm256_slli_epi32(ax, 8)),
                &wx0, &wx1);
    per_channel(_mm256_min_epi32(_mm256_slli_epi32(ay, 9), _mm256_set1_epi32(32767)), &wy0, &wy1);
    __m256i top0 = _mm256_maddubs_epi16(_mm256_shuffle_epi8(t0, pairs), wx0);
    __m256i top1 = _mm256_maddubs_epi16(_mm256_shuffle_epi8(t1, pairs), wx1);
    __m256i bot0 = _mm256_maddubs_epi16(_mm256_shuffle_epi8(b0, pairs), wx0);
    __m256i bot1 = _mm256_maddubs_epi16(_mm256_shuffle_epi8(b1, pairs), wx1);
    *lo = _mm256_add_epi16(top0, _mm256_mulhrs_epi16(_mm256_sub_epi16(bot0, top0), wy0));
    *hi = _mm256_add_epi16(top1, _mm256_mulhrs_epi16(_mm256_sub_epi16(bot1, top1), wy1));
}

/* 8 RGBA pixels as sample8 gives them where no pixel moves: channels to 16 bits, scaled
   by 64. */
TARGET static inline void still8(const uint32_t *src, __m256i *lo, __m256i *hi) {
    __m256i pixels = _mm256_loadu_si256((const __m256i *)src);
    *lo = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(pixels)), 6);
    *hi = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(pixels, 1)), 6);
}

TARGET __attribute__((always_inline)) static inline void blend_rows(
    const uint32_t *src0, const uint32_t *src1, int W, int H, const float *planes, int hs,
    const float scales[4], float t, uint8_t *out, int row0, int row1) {
    __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i in_order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    __m256i rgb = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                   0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    size_t plane = (size_t)hs * W;
    __m256 scale[4];
    for (int k = 0; k < 4; k++) scale[k] = _mm256_set1_ps(scales[k]);
    __m256 still_below = _mm256_set1_ps(1.0f / 128.0f);
    __m256 only_below = _mm256_set1_ps(1.0f / 512.0f), only_above = _mm256_set1_ps(1.0f - 1.0f / 512.0f);
    __m256 early = _mm256_set1_ps(1.0f - t), late = _mm256_set1_ps(t), floor_ = _mm256_set1_ps(1e-4f);
    float ry = (float)hs / (float)H;
    for (int y = row0; y < row1; y++) {
        float sy = ((float)y + 0.5f) * ry - 0.5f;
        int j = (int)floorf(sy);
        float g = sy - (float)j;
        if (j < 0) { j = 0; g = 0.0f; }
        if (j >= hs - 1) { j = hs - 1; g = 0.0f; }
        int j1 = j + 1 < hs ? j + 1 : hs - 1;
        __m256 vg = _mm256_set1_ps(g), fy = _mm256_set1_ps((float)y);
        const float *r0 = planes + (size_t)j * W, *r1 = planes + (size_t)j1 * W;
        uint8_t *o = out + (size_t)y * W * 3;
        for (int x0 = 0; x0 < W; x0 += 8) {
            int x = x0 + 8 <= W ? x0 : W - 8;
            __m256 v[6];
            for (int k = 0; k < 6; k++) {
                __m256 a = _mm256_loadu_ps(r0 + k * plane + x), b = _mm256_loadu_ps(r1 + k * plane + x);
                v[k] = _mm256_fmadd_ps(_mm256_sub_ps(b, a), vg, a);
            }
            for (int k = 0; k < 4; k++) v[k] = _mm256_mul_ps(v[k], scale[k]);
            /* each image trusted where its splat landed, and more the nearer it is in time */
            __m256 trust0 = _mm256_fmadd_ps(v[4], early, floor_),
                   trust1 = _mm256_fmadd_ps(v[5], late, floor_);
            __m256 share = _mm256_div_ps(trust0, _mm256_add_ps(trust0, trust1));
            __m256i a0, a1, b0, b1, s0, s1;
            __m256 sign = _mm256_set1_ps(-0.0f);
            __m256 moved = _mm256_max_ps(
                _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
            if (y < H - 1 &&
                _mm256_movemask_ps(_mm256_cmp_ps(moved, still_below, _CMP_LT_OQ)) == 0xff) {
                /* Neither image moves at any of the 8 pixels by as much as half a step of the
                   sample positions (a still background): the samples are the pixels
                   themselves, loaded instead of gathered (at most a 64th of a level apart). */
                still8(src0 + (size_t)y * W + x, &a0, &a1);
                still8(src1 + (size_t)y * W + x, &b0, &b1);
            } else {
                /* An image weighted under 1/512 at all 8 pixels moves none of them by half a
                   level: it is not sampled (the frames nearest either end, and the holes in
                   one image's splat). */
                int first_only = _mm256_movemask_ps(_mm256_cmp_ps(share, only_above, _CMP_GT_OQ)) == 0xff;
                int last_only = _mm256_movemask_ps(_mm256_cmp_ps(share, only_below, _CMP_LT_OQ)) == 0xff;
                __m256 fx = _mm256_add_ps(_mm256_set1_ps((float)x), lane);
                if (!last_only)
                    sample8(src0, W, H, _mm256_add_ps(fx, v[0]), _mm256_add_ps(fy, v[1]), &a0, &a1);
                if (!first_only)
                    sample8(src1, W, H, _mm256_add_ps(fx, v[2]), _mm256_add_ps(fy, v[3]), &b0, &b1);
                if (first_only) b0 = a0, b1 = a1;
                if (last_only) a0 = b0, a1 = b1;
            }
            per_channel(_mm256_cvtps_epi32(_mm256_mul_ps(share, _mm256_set1_ps(32767.0f))), &s0, &s1);
            __m256i r0v = _mm256_add_epi16(b0, _mm256_mulhrs_epi16(_mm256_sub_epi16(a0, b0), s0));
            __m256i r1v = _mm256_add_epi16(b1, _mm256_mulhrs_epi16(_mm256_sub_epi16(a1, b1), s1));
            __m256i half = _mm256_set1_epi16(32);
            r0v = _mm256_srli_epi16(_mm256_add_epi16(r0v, half), 6);
            r1v = _mm256_srli_epi16(_mm256_add_epi16(r1v, half), 6);
            __m256i bytes = _mm256_packus_epi16(r0v, r1v); /* p0 p1 p4 p5 | p2 p3 p6 p7 */
            bytes = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(bytes, in_order), rgb);
            __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
            _mm_storeu_si128((__m128i *)(o + 3 * x), lo);
            _mm_storel_epi64((__m128i *)(o + 3 * x + 12), hi);
            uint32_t last = (uint32_t)_mm_extract_epi32(hi, 2);
            memcpy(o + 3 * x + 20, &last, 4);
        }
    }
}

/* blend_rows compiled twice: for AVX2, and for CPUs that also have AVX-512, where the same
   code gets 32 vector registers instead of 16 and keeps its values off the stack. */
#define ROWS_PARAMETERS                                                                        \
    const uint32_t *src0, const uint32_t *src1, int W, int H, const float *planes, int hs,     \
        const float scales[4], float t, uint8_t *out, int row0, int row1
#define ROWS_ARGUMENTS src0, src1, W, H, planes, hs, scales, t, out, row0, row1
TARGET static void blend_rows_avx2(ROWS_PARAMETERS) { blend_rows(ROWS_ARGUMENTS); }
__attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq"))) static void
blend_rows_avx512(ROWS_PARAMETERS) {
    blend_rows(ROWS_ARGUMENTS);
}
static int have_avx512 = 0;

#endif

static PyObject *warp_blend(PyObject *self, PyObject *args) {
    Py_buffer first, last, planes, out;
    Py_buffer rows_taken;
    int width, height, small_height, avx512 = 1;
    float scales[4], t;
    if (!PyArg_ParseTuple(args, "y*y*y*w*iii(ffff)fw*|p", &first, &last, &planes, &out, &width,
                          &height, &small_height, &scales[0], &scales[1], &scales[2], &scales[3],
                          &t, &rows_taken, &avx512))
        return NULL;
    const char *error = NULL;
    Py_ssize_t pixels = (Py_ssize_t)width * height;
    if (width < 8 || height < 2 || small_height < 1)
        error = "frames must be at least 8 x 2 pixels";
    else if (first.len != 4 * pixels || last.len != 4 * pixels)
        error = "first and last must be height x width RGBA";
    else if (planes.len != (Py_ssize_t)6 * small_height * width * (Py_ssize_t)sizeof(float))
        error = "planes must be 6 x small_height x width float32";
    else if (out.len != 3 * pixels)
        error = "out must be height x width RGB";
    else if (rows_taken.len != sizeof(int))
        error = "rows_taken must be one int32";
    if (error == NULL) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        int *taken = (int *)rows_taken.buf;
        void (*blend_rows_here)(ROWS_PARAMETERS) =
            avx512 && have_avx512 ? blend_rows_avx512 : blend_rows_avx2;
        Py_BEGIN_ALLOW_THREADS
        /* Each caller takes the next band of rows until none is left: threads that share the
           frame finish together, however busy their cores are. */
        for (;;) {
            int row0 = __atomic_fetch_add(taken, BAND, __ATOMIC_RELAXED);
            if (row0 >= height) break;
            int row1 = row0 + BAND < height ? row0 + BAND : height;
            blend_rows_here((const uint32_t *)first.buf, (const uint32_t *)last.buf, width, height,
                       (const float *)planes.buf, small_height, scales, t, (uint8_t *)out.buf,
                       row0, row1);
        }
        Py_END_ALLOW_THREADS
#endif
    }
    PyBuffer_Release(&first);
    PyBuffer_Release(&last);
    PyBuffer_Release(&planes);
    PyBuffer_Release(&out);
    PyBuffer_Release(&rows_taken);
    if (error != NULL) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"warp_blend", warp_blend, METH_VARARGS,
     "warp_blend(first, last, planes, out, width, height, small_height, scales, t, rows_taken, "
     "avx512=True): the in-between frame at time t (see warp.py), band by band, rows_taken "
     "counting the rows that callers sharing the frame have taken; avx512=False runs the AVX2 "
     "build where the CPU has both."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_warp_blend", NULL, -1, methods};

PyMODINIT_FUNC PyInit__warp_blend(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        have_avx512 = 1;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return PyModule_Create(&module);
#endif
    PyErr_SetString(PyExc_ImportError, "the fused warp needs an x86-64 CPU with AVX2 and FMA");
    return NULL;
}
