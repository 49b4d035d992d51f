/*
 * sc2deploy portable range coder (C99, no dependencies).
 *
 * Writes the same uint32 words as constriction 0.5's stream.queue.RangeEncoder
 * with stream.model.Categorical(pmf, perfect=False): 32-bit words, 64-bit
 * state, 24-bit probabilities. Written from the algorithm's description in
 * constriction's public sources; no code was copied.
 *
 * Floating point appears only in quantization: one division, then per entry a
 * multiplication and an addition, each rounded to binary64 in this exact order
 * (build with -ffp-contract=off; on 32-bit x86 also -msse2 -mfpmath=sse), so
 * every IEEE-754 platform gives the same tables.
 *
 *   pmf (float64) --s2c_quantize--> cdf (uint32, n+1 entries, cdf[n] = 2^24)
 *   symbols + cdfs --s2c_encode--> words          words --s2c_decode--> symbols
 *   pmfs + symbols --s2c_encode_channels--> words  (tables made on the fly, one call)
 */
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PRECISION 24
#define TOTAL ((uint32_t)1 << PRECISION)
#define WORD_BITS 32
#define RENORM ((uint64_t)1 << WORD_BITS)

enum { S2C_OK = 0, S2C_BAD_PMF = 1, S2C_BAD_SYMBOL = 2, S2C_OUT_OF_SPACE = 3,
       S2C_INVALID_DATA = 4 };

/*
 * Where every double operation already rounds to binary64 (FLT_EVAL_METHOD 0:
 * SSE2, NEON, ...) plain variables give the exact bits; elsewhere volatile
 * forces each intermediate result through memory.
 */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
typedef double f64;
#else
typedef volatile double f64;
#endif

/* Values at any alignment in a packed byte buffer (one plain load where allowed). */
static double f64_at(const unsigned char *p, int64_t i)
{
    double v;
    memcpy(&v, p + 8 * i, sizeof v);
    return v;
}

static int64_t i64_at(const unsigned char *p, int64_t i)
{
    int64_t v;
    memcpy(&v, p + 8 * i, sizeof v);
    return v;
}

static int32_t i32_at(const unsigned char *p, int64_t i)
{
    int32_t v;
    memcpy(&v, p + 4 * i, sizeof v);
    return v;
}

static uint32_t u32_at(const unsigned char *p, int64_t i)
{
    uint32_t v;
    memcpy(&v, p + 4 * i, sizeof v);
    return v;
}

static uint32_t saturating_u32(double x)
{
    if (!(x > 0.0)) return 0; /* also NaN */
    if (x >= 4294967296.0) return UINT32_MAX;
    return (uint32_t)x;
}

static int valid_size(int64_t n) { return n >= 2 && n < (int64_t)TOTAL - 1; }

/* Fixed-point CDF of a float64 pmf with n >= 2 entries; cdf must hold n + 1. */
int s2c_quantize(const double *pmf, int64_t n, uint32_t *cdf)
{
    f64 norm = 0.0, cum = 0.0, scaled;
    double scale;
    int64_t i;
    if (!valid_size(n)) return S2C_BAD_PMF;
    for (i = 0; i < n; i++) norm = norm + pmf[i]; /* strictly left to right */
    if (!(norm >= 2.2250738585072014e-308 && norm <= 1.7976931348623157e308))
        return S2C_BAD_PMF; /* must be a positive normal number */
    scale = (double)(TOTAL - (uint32_t)n) / norm;
    for (i = 0; i < n; i++) {
        scaled = cum * scale;
        cdf[i] = saturating_u32(scaled) + (uint32_t)i;
        cum = cum + pmf[i];
    }
    cdf[n] = TOTAL;
    return S2C_OK;
}

/*
 * The raw path's tables. For a pmf that sc2deploy's raw_encode checks would
 * also accept (finite, non-negative entries summing to at least
 * MIN_CHECKED_SUM: above the checks' 1e-300, whose numpy sum rounds
 * differently) sum_checked keeps the left-to-right partial sums; any cdf entry
 * then follows on its own by s2c_quantize's very operations. One dependency
 * chain per table instead of two, and an encoder computes only the entries of
 * the symbols it codes. Whatever this refuses, the binding checks channel by
 * channel to name the problem.
 */
#define MIN_CHECKED_SUM 2e-300

typedef struct {
    const double *sums; /* sums[i] = pmf[0] + ... + pmf[i - 1], rounded in that order */
    double scale;
    int64_t n;
} sum_table;

static int sum_checked(const unsigned char *pmf, int64_t n, double *sums, sum_table *t)
{
    f64 cum = 0.0;
    int64_t i;
    if (!valid_size(n)) return S2C_BAD_PMF;
    for (i = 0; i < n; i++) {
        double x = f64_at(pmf, i);
        if (!(x >= 0.0 && x <= DBL_MAX)) return S2C_BAD_PMF; /* negative, infinite or NaN */
        sums[i] = cum;
        cum = cum + x;
    }
    if (!(cum >= MIN_CHECKED_SUM && cum <= DBL_MAX)) return S2C_BAD_PMF;
    t->sums = sums;
    t->scale = (double)(TOTAL - (uint32_t)n) / cum;
    t->n = n;
    return S2C_OK;
}

/* cdf[i] of the table, 0 <= i <= n, as s2c_quantize computes it. */
static uint32_t cdf_entry(const sum_table *t, int64_t i)
{
    f64 scaled;
    if (i == t->n) return TOTAL;
    scaled = t->sums[i] * t->scale;
    return saturating_u32(scaled) + (uint32_t)i;
}

typedef struct {
    uint64_t lower, range;
    int inverted;
    int64_t num_inverted;
    uint32_t first_inverted;
    uint32_t *out;
    int64_t len, cap;
} encoder;

static int emit(encoder *e, uint32_t word)
{
    if (e->len >= e->cap) return S2C_OUT_OF_SPACE;
    e->out[e->len++] = word;
    return S2C_OK;
}

/* Release the words held back while the interval straddled a word boundary. */
static int flush_inverted(encoder *e, int carry)
{
    uint32_t fill = carry ? 0u : UINT32_MAX;
    int64_t k;
    if (emit(e, carry ? e->first_inverted + 1u : e->first_inverted)) return S2C_OUT_OF_SPACE;
    for (k = 1; k < e->num_inverted; k++)
        if (emit(e, fill)) return S2C_OUT_OF_SPACE;
    e->inverted = 0;
    return S2C_OK;
}

static int encode_one(encoder *e, uint32_t left, uint32_t prob)
{
    uint64_t scale = e->range >> PRECISION;
    uint64_t new_range = scale * prob;
    uint64_t new_lower = e->lower + scale * left;
    if (e->inverted && new_lower + new_range > new_lower)
        if (flush_inverted(e, new_lower < e->lower)) return S2C_OUT_OF_SPACE;
    e->lower = new_lower;
    e->range = new_range;
    if (e->range < RENORM) {
        uint32_t word = (uint32_t)(e->lower >> WORD_BITS);
        e->range <<= WORD_BITS;
        e->lower <<= WORD_BITS;
        if (e->inverted) {
            e->num_inverted++;
        } else if (e->lower + e->range > e->lower) {
            if (emit(e, word)) return S2C_OUT_OF_SPACE;
        } else {
            e->inverted = 1;
            e->num_inverted = 1;
            e->first_inverted = word;
        }
    }
    return S2C_OK;
}

static int finish(encoder *e)
{
    uint64_t point;
    uint32_t point_word;
    if (e->range == UINT64_MAX) return S2C_OK; /* nothing was encoded */
    point = e->lower + (RENORM - 1);
    if (e->inverted && flush_inverted(e, point < e->lower)) return S2C_OUT_OF_SPACE;
    point_word = (uint32_t)(point >> WORD_BITS);
    if (emit(e, point_word)) return S2C_OUT_OF_SPACE;
    if ((uint32_t)((e->lower + e->range) >> WORD_BITS) == point_word) return emit(e, 0);
    return S2C_OK;
}

/*
 * Encode nseg segments in order; segment k holds seg_len[k] symbols coded with
 * model seg_model[k], whose cdf starts at cdfs[cdf_start[m]] and has
 * cdf_size[m] symbols. At most (number of symbols + 3) words are written.
 * On S2C_BAD_SYMBOL, *bad_index is the symbol's position in `symbols`.
 */
int s2c_encode(const int32_t *symbols, const int64_t *seg_len, const int32_t *seg_model,
               int64_t nseg, const uint32_t *cdfs, const int64_t *cdf_start,
               const int32_t *cdf_size, uint32_t *out, int64_t cap, int64_t *out_len,
               int64_t *bad_index)
{
    encoder e = {0, UINT64_MAX, 0, 0, 0, out, 0, cap};
    int64_t k, i, pos = 0;
    for (k = 0; k < nseg; k++) {
        const uint32_t *cdf = cdfs + cdf_start[seg_model[k]];
        int32_t n = cdf_size[seg_model[k]];
        for (i = 0; i < seg_len[k]; i++, pos++) {
            int32_t s = symbols[pos];
            if (s < 0 || s >= n) {
                *bad_index = pos;
                return S2C_BAD_SYMBOL;
            }
            if (encode_one(&e, cdf[s], cdf[s + 1] - cdf[s])) return S2C_OUT_OF_SPACE;
        }
    }
    if (finish(&e)) return S2C_OUT_OF_SPACE;
    *out_len = e.len;
    return S2C_OK;
}

typedef struct {
    uint64_t lower, range, point;
    const unsigned char *words; /* n uint32 words, at any alignment */
    int64_t n, pos;
} s2c_decoder;

int64_t s2c_decoder_size(void) { return (int64_t)sizeof(s2c_decoder); }

static void decoder_init(s2c_decoder *d, const unsigned char *words, int64_t n)
{
    int read = 0;
    d->lower = 0;
    d->range = UINT64_MAX;
    d->point = 0;
    d->words = words;
    d->n = n;
    d->pos = 0;
    while (d->pos < n && read < 2) {
        d->point = (d->point << WORD_BITS) | u32_at(words, d->pos++);
        read++;
    }
    if (read == 1) d->point <<= WORD_BITS;
}

/* Start decoding `n` words (the caller keeps them alive while decoding). */
void s2c_decoder_init(s2c_decoder *d, const uint32_t *words, int64_t n)
{
    decoder_init(d, (const unsigned char *)words, n);
}

/*
 * floor(num / den) where it matters (< 2^24), or some value >= 2^24 otherwise.
 * A double estimate (relative error < 2^-51) is off by at most one there and is
 * corrected with exact integer arithmetic; it avoids a slow 64-bit division.
 */
static uint64_t quotient(uint64_t num, uint64_t den)
{
    uint64_t q = (uint64_t)((double)num / (double)den);
    uint64_t prod;
    if (q > TOTAL) return q;
    prod = q * den; /* q <= 2^24 and den < 2^40: no overflow */
    if (prod > num) return q - 1;
    if (num - prod >= den) return q + 1;
    return q;
}

/*
 * Decoding's lookup table of 2^bits + 1 entries for a cdf of `size` symbols:
 * lut[b] = the largest s with cdf[s] <= b << (24 - bits), so the symbol of a
 * quantile q lies between lut[q >> (24 - bits)] and the entry after it. Built
 * by counting, in time linear in size + 2^bits and without unpredictable branches.
 */
static void fill_lut(const uint32_t *cdf, int32_t size, int bits, uint32_t *lut)
{
    int shift = PRECISION - bits;
    uint32_t up = ((uint32_t)1 << shift) - 1;
    int64_t b, buckets = (int64_t)1 << bits;
    int32_t s;
    for (b = 0; b <= buckets; b++) lut[b] = 0;
    for (s = 1; s < size; s++) lut[(cdf[s] + up) >> shift]++; /* least b: cdf[s] <= b << shift */
    for (b = 1; b <= buckets; b++) lut[b] += lut[b - 1];
}

#define LUT_BITS 8 /* the latent coder's tables: LUT_SIZE entries per channel */
#define LUT_SIZE ((1 << LUT_BITS) + 1)

void s2c_build_lut(const uint32_t *cdf, int32_t size, uint32_t *lut)
{
    fill_lut(cdf, size, LUT_BITS, lut);
}

/*
 * Largest s < size with cdf[s] * scale <= offset, i.e. cdf[s] <= the quantile
 * offset / scale: a branch-free binary search that multiplies instead of dividing.
 */
static int32_t find_scaled(const uint32_t *cdf, int32_t size, uint64_t scale, uint64_t offset)
{
    const uint32_t *base = cdf;
    int32_t left = size;
    while (left > 1) {
        int32_t half = left / 2;
        base = scale * base[half] <= offset ? base + half : base;
        left -= half;
    }
    return (int32_t)(base - cdf);
}

/*
 * Decode `count` symbols with a cdf of `size` symbols, searched whole or, where
 * lut is not NULL, between two entries of its fill_lut table of 2^bits + 1.
 */
static int decode_symbols(s2c_decoder *d, const uint32_t *cdf, int32_t size,
                          const uint32_t *lut, int bits, int32_t *out, int64_t count)
{
    uint64_t lower = d->lower, range = d->range, point = d->point; /* kept in registers */
    int64_t i;
    for (i = 0; i < count; i++) {
        uint64_t scale = range >> PRECISION, offset = point - lower;
        int32_t s;
        if (offset >= scale << PRECISION) break; /* the quantile offset / scale >= 2^24 */
        if (lut) {
            const uint32_t *bucket = lut + (quotient(offset, scale) >> (PRECISION - bits));
            s = (int32_t)bucket[0] + find_scaled(cdf + bucket[0],
                                                 (int32_t)(bucket[1] - bucket[0]) + 1, scale,
                                                 offset);
        } else {
            s = find_scaled(cdf, size, scale, offset);
        }
        out[i] = s;
        lower += scale * cdf[s];
        range = scale * (uint64_t)(cdf[s + 1] - cdf[s]);
        if (range < RENORM) {
            lower <<= WORD_BITS;
            range <<= WORD_BITS;
            point <<= WORD_BITS;
            if (d->pos < d->n) point |= u32_at(d->words, d->pos++);
        }
    }
    d->lower = lower;
    d->range = range;
    d->point = point;
    return i == count ? S2C_OK : S2C_INVALID_DATA;
}

/*
 * Decode `count` symbols with a cdf of `size` symbols. Garbage input either
 * decodes to some symbols or returns S2C_INVALID_DATA; it never reads past
 * the words and always stops after `count` symbols.
 */
int s2c_decode(s2c_decoder *d, const uint32_t *cdf, int32_t size, int32_t *out, int64_t count)
{
    return decode_symbols(d, cdf, size, NULL, 0, out, count);
}

/*
 * Raw channels in one call each way, each table made on the fly at a cost
 * linear in its pmf's size (nothing per call): channel c's pmf (n[c] entries)
 * is summed (sum_checked), then its m[c] symbols are coded, channel after
 * channel. The input comes packed in one byte buffer, read at any alignment,
 * so that a binding passes a single pointer:
 *
 *   encode: in = k | n[0..k) | m[0..k) | pmfs | symbols      (int64, float64, int32)
 *   decode: in = k | n[0..k) | m[0..k) | w | pmfs | words    (w uint32 words)
 *
 * pmfs are the k float64 pmfs one after the other (n[0] + ... + n[k-1] entries).
 * `scratch` holds 2 max(n) + 2 doubles: a channel's partial sums, then its cdf
 * and, when decoding many symbols, a lookup table; channels of up to
 * STACK_TABLE entries use the stack instead (no scratch needed when all are
 * that small). s2c_encode_channels writes at most m[0] + ... + m[k-1] + 3
 * words to `out` and returns their number; s2c_decode_channels writes the
 * symbols to `out` and returns 0. Failures
 * return -S2C_BAD_PMF (see sum_checked), -S2C_BAD_SYMBOL (a symbol outside
 * [0, n), or a negative count) or, when decoding, -S2C_INVALID_DATA; garbage
 * words never make the decoder read past them.
 *
 * channels_header returns k (or a failure), the symbols' total, and where the
 * pmfs and what follows them start.
 */
static int64_t channels_header(const unsigned char *in, int64_t extra, int64_t *total,
                               const unsigned char **pmfs, const unsigned char **tail)
{
    int64_t k = i64_at(in, 0), c, entries = 0;
    *total = 0;
    if (k < 0) return -S2C_BAD_SYMBOL;
    for (c = 0; c < k; c++) {
        int64_t n = i64_at(in, 1 + c), m = i64_at(in, 1 + k + c);
        if (!valid_size(n)) return -S2C_BAD_PMF;
        if (m < 0) return -S2C_BAD_SYMBOL;
        entries += n;
        *total += m;
    }
    *pmfs = in + 8 * (1 + 2 * k + extra);
    *tail = *pmfs + 8 * entries;
    return k;
}

#define STACK_TABLE 64

int64_t s2c_encode_channels(const unsigned char *in, double *scratch, uint32_t *out)
{
    double local[2 * STACK_TABLE + 2];
    const unsigned char *pmf, *symbols;
    int64_t total, pos = 0, c, i;
    int64_t k = channels_header(in, 0, &total, &pmf, &symbols);
    encoder e = {0, UINT64_MAX, 0, 0, 0, out, 0, 0};
    if (k < 0) return k;
    e.cap = total + 3;
    for (c = 0; c < k; c++) {
        int64_t n = i64_at(in, 1 + c), m = i64_at(in, 1 + k + c);
        double *sums = n <= STACK_TABLE ? local : scratch;
        uint32_t *cdf = (uint32_t *)(sums + n), *table = NULL;
        sum_table t;
        if (sum_checked(pmf, n, sums, &t)) return -S2C_BAD_PMF;
        if (m > n) { /* more symbols than entries: the whole cdf once */
            for (i = 0; i <= n; i++) cdf[i] = cdf_entry(&t, i);
            table = cdf;
        }
        for (i = 0; i < m; i++, pos++) {
            int32_t s = i32_at(symbols, pos);
            uint32_t left, right;
            if (s < 0 || s >= n) return -S2C_BAD_SYMBOL;
            left = table ? table[s] : cdf_entry(&t, s);
            right = table ? table[s + 1] : cdf_entry(&t, s + 1);
            if (encode_one(&e, left, right - left)) return -S2C_OUT_OF_SPACE;
        }
        pmf += 8 * n;
    }
    if (finish(&e)) return -S2C_OUT_OF_SPACE;
    return e.len;
}

/*
 * Bits of a lookup table worth making to decode m symbols of n (2^bits <= n),
 * or 0: filling it costs about what it saves on n / LUT_MIN_RATIO symbols.
 */
#define LUT_MIN_SIZE 64
#define LUT_MIN_RATIO 16

static int lut_bits(int64_t n, int64_t m)
{
    int bits = 0;
    if (n < LUT_MIN_SIZE || m * LUT_MIN_RATIO < n) return 0;
    while (((int64_t)2 << bits) <= n) bits++;
    return bits;
}

int64_t s2c_decode_channels(const unsigned char *in, double *scratch, int32_t *out)
{
    double local[2 * STACK_TABLE + 2];
    const unsigned char *pmf, *words;
    s2c_decoder d;
    int64_t total, c, i;
    int64_t k = channels_header(in, 1, &total, &pmf, &words);
    if (k < 0) return k;
    decoder_init(&d, words, i64_at(in, 1 + 2 * k));
    for (c = 0; c < k; c++) {
        int64_t n = i64_at(in, 1 + c), m = i64_at(in, 1 + k + c);
        int bits = lut_bits(n, m);
        double *sums = n <= STACK_TABLE ? local : scratch;
        uint32_t *cdf = (uint32_t *)(sums + n), *lut = bits ? cdf + n + 1 : NULL;
        sum_table t;
        if (sum_checked(pmf, n, sums, &t)) return -S2C_BAD_PMF;
        for (i = 0; i <= n; i++) cdf[i] = cdf_entry(&t, i);
        if (lut) fill_lut(cdf, (int32_t)n, bits, lut);
        if (decode_symbols(&d, cdf, (int32_t)n, lut, bits, out, m)) return -S2C_INVALID_DATA;
        pmf += 8 * n;
        out += m;
    }
    return 0;
}

/*
 * Whole latents with escapes (the layout of docs/bitstream.md), in one call.
 * Channel c's cdf starts at cdfs[cdf_start[c]] and has n[c] + 1 symbols, the
 * last one being the escape bin. count_cdf has 9 symbols, digit_cdf 16.
 */
#define MAX_DIGITS 9

static int digits_of(uint64_t z)
{
    int k = 1;
    while (k < MAX_DIGITS && (z >> (4 * k)) != 0) k++;
    return k;
}

int s2c_encode_latent(const int32_t *latent, int32_t channels, int64_t per_channel,
                      const int32_t *offsets, const int32_t *n, const uint32_t *cdfs,
                      const int64_t *cdf_start, const uint32_t *count_cdf,
                      const uint32_t *digit_cdf, uint64_t *scratch, uint32_t *out, int64_t cap,
                      int64_t *out_len)
{
    encoder e = {0, UINT64_MAX, 0, 0, 0, out, 0, cap};
    int64_t i, escapes = 0;
    int32_t c;
    for (c = 0; c < channels; c++) {
        const uint32_t *cdf = cdfs + cdf_start[c];
        const int32_t *row = latent + (int64_t)c * per_channel;
        for (i = 0; i < per_channel; i++) {
            int64_t idx = (int64_t)row[i] - offsets[c];
            int64_t s = idx;
            if (idx < 0 || idx >= n[c]) {
                s = n[c];
                scratch[escapes++] = idx < 0 ? (uint64_t)(2 * (-idx - 1))
                                             : (uint64_t)(2 * (idx - n[c]) + 1);
            }
            if (encode_one(&e, cdf[s], cdf[s + 1] - cdf[s])) return S2C_OUT_OF_SPACE;
        }
    }
    for (i = 0; i < escapes; i++) {
        int k = digits_of(scratch[i]) - 1;
        if (encode_one(&e, count_cdf[k], count_cdf[k + 1] - count_cdf[k])) return S2C_OUT_OF_SPACE;
    }
    for (i = 0; i < escapes; i++) {
        int j, k = digits_of(scratch[i]);
        for (j = k - 1; j >= 0; j--) {
            int d = (int)((scratch[i] >> (4 * j)) & 15);
            if (encode_one(&e, digit_cdf[d], digit_cdf[d + 1] - digit_cdf[d]))
                return S2C_OUT_OF_SPACE;
        }
    }
    if (finish(&e)) return S2C_OUT_OF_SPACE;
    *out_len = e.len;
    return S2C_OK;
}

/*
 * Inverse of s2c_encode_latent; luts holds one s2c_build_lut table (LUT_SIZE
 * entries) per channel. Refuses (S2C_INVALID_DATA) streams that leave
 * the decoder's interval, claim more escape digits than `max_digits`, or
 * decode to values beyond int32. `scratch` holds channels * per_channel bytes.
 */
int s2c_decode_latent(const uint32_t *words, int64_t n_words, int32_t channels,
                      int64_t per_channel, const int32_t *offsets, const int32_t *n,
                      const uint32_t *cdfs, const int64_t *cdf_start, const uint32_t *count_cdf,
                      const uint32_t *digit_cdf, const uint32_t *luts, int64_t max_digits,
                      uint8_t *scratch, int32_t *out)
{
    s2c_decoder d;
    int64_t i, escapes = 0, digits = 0, pos = 0;
    int32_t c, one;
    s2c_decoder_init(&d, words, n_words);
    for (c = 0; c < channels; c++) {
        int32_t *row = out + (int64_t)c * per_channel;
        if (decode_symbols(&d, cdfs + cdf_start[c], n[c] + 1, luts + (int64_t)c * LUT_SIZE,
                           LUT_BITS, row, per_channel))
            return S2C_INVALID_DATA;
        for (i = 0; i < per_channel; i++) escapes += row[i] == n[c];
    }
    for (i = 0; i < escapes; i++) {
        if (s2c_decode(&d, count_cdf, MAX_DIGITS, &one, 1)) return S2C_INVALID_DATA;
        scratch[i] = (uint8_t)(one + 1);
        digits += one + 1;
    }
    if (digits > max_digits) return S2C_INVALID_DATA;
    for (c = 0; c < channels; c++) {
        int32_t *row = out + (int64_t)c * per_channel;
        int64_t j;
        for (j = 0; j < per_channel; j++) {
            int64_t idx = row[j], value;
            if (idx == n[c]) {
                uint64_t z = 0;
                int k;
                for (k = 0; k < scratch[pos]; k++) {
                    if (s2c_decode(&d, digit_cdf, 16, &one, 1)) return S2C_INVALID_DATA;
                    z = (z << 4) | (uint64_t)one;
                }
                pos++;
                idx = (z & 1) ? n[c] + (int64_t)(z >> 1) : -(int64_t)(z >> 1) - 1;
            }
            value = idx + offsets[c];
            if (value < INT32_MIN || value > INT32_MAX) return S2C_INVALID_DATA;
            row[j] = (int32_t)value;
        }
    }
    return S2C_OK;
}
