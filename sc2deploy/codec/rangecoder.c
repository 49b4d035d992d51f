/*
 * sc2deploy portable range coder (C99, no dependencies).
 *
 * Writes the same uint32 words as constriction 0.5's stream.queue.RangeEncoder
 * with stream.model.Categorical(pmf, perfect=False): 32-bit words, 64-bit
 * state, 24-bit probabilities. Written from the algorithm's description in
 * constriction's public sources; no code was copied.
 *
 * Floating point appears only in s2c_quantize: one division, then per entry a
 * multiplication and an addition, each rounded to binary64 in this exact order
 * (build with -ffp-contract=off; on 32-bit x86 also -msse2 -mfpmath=sse), so
 * every IEEE-754 platform gives the same tables.
 *
 *   pmf (float64) --s2c_quantize--> cdf (uint32, n+1 entries, cdf[n] = 2^24)
 *   symbols + cdfs --s2c_encode--> words          words --s2c_decode--> symbols
 */
#include <stddef.h>
#include <stdint.h>

#define PRECISION 24
#define TOTAL ((uint32_t)1 << PRECISION)
#define WORD_BITS 32
#define RENORM ((uint64_t)1 << WORD_BITS)

enum { S2C_OK = 0, S2C_BAD_PMF = 1, S2C_BAD_SYMBOL = 2, S2C_OUT_OF_SPACE = 3,
       S2C_INVALID_DATA = 4 };

static uint32_t saturating_u32(double x)
{
    if (!(x > 0.0)) return 0; /* also NaN */
    if (x >= 4294967296.0) return UINT32_MAX;
    return (uint32_t)x;
}

/* Fixed-point CDF of a float64 pmf with n >= 2 entries; cdf must hold n + 1. */
int s2c_quantize(const double *pmf, int64_t n, uint32_t *cdf)
{
    volatile double norm = 0.0, cum = 0.0, scaled;
    double scale;
    int64_t i;
    if (n < 2 || n >= (int64_t)TOTAL - 1) return S2C_BAD_PMF;
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
    const uint32_t *words;
    int64_t n, pos;
} s2c_decoder;

int64_t s2c_decoder_size(void) { return (int64_t)sizeof(s2c_decoder); }

/* Start decoding `n` words (the caller keeps them alive while decoding). */
void s2c_decoder_init(s2c_decoder *d, const uint32_t *words, int64_t n)
{
    int read = 0;
    d->lower = 0;
    d->range = UINT64_MAX;
    d->point = 0;
    d->words = words;
    d->n = n;
    d->pos = 0;
    while (d->pos < n && read < 2) {
        d->point = (d->point << WORD_BITS) | words[d->pos++];
        read++;
    }
    if (read == 1) d->point <<= WORD_BITS;
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

#define LUT_BITS 8
#define LUT_SIZE (1 << LUT_BITS)

/* lut[b] = the symbol whose bin holds quantile b << (24 - LUT_BITS). */
void s2c_build_lut(const uint32_t *cdf, int32_t size, uint32_t *lut)
{
    int32_t b, s = 0;
    for (b = 0; b < LUT_SIZE; b++) {
        uint32_t q = (uint32_t)b << (PRECISION - LUT_BITS);
        while (s + 1 < size && cdf[s + 1] <= q) s++;
        lut[b] = (uint32_t)s;
    }
}

/* Largest s with cdf[s] <= quantile, from a lookup table or by binary search. */
static int32_t find_symbol(const uint32_t *cdf, int32_t size, const uint32_t *lut,
                           uint64_t quantile)
{
    const uint32_t *base = cdf;
    int32_t left = size;
    if (lut) {
        int32_t s = (int32_t)lut[quantile >> (PRECISION - LUT_BITS)];
        while (s + 1 < size && cdf[s + 1] <= quantile) s++;
        return s;
    }
    while (left > 1) { /* branch-free halving */
        int32_t half = left / 2;
        base = base[half] <= quantile ? base + half : base;
        left -= half;
    }
    return (int32_t)(base - cdf);
}

static int decode_symbols(s2c_decoder *d, const uint32_t *cdf, int32_t size,
                          const uint32_t *lut, int32_t *out, int64_t count)
{
    int64_t i;
    for (i = 0; i < count; i++) {
        uint64_t scale = d->range >> PRECISION;
        uint64_t quantile = quotient(d->point - d->lower, scale);
        int32_t s;
        if (quantile >= TOTAL) return S2C_INVALID_DATA;
        s = find_symbol(cdf, size, lut, quantile);
        out[i] = s;
        d->lower += scale * cdf[s];
        d->range = scale * (uint64_t)(cdf[s + 1] - cdf[s]);
        if (d->range < RENORM) {
            d->lower <<= WORD_BITS;
            d->range <<= WORD_BITS;
            d->point <<= WORD_BITS;
            if (d->pos < d->n) d->point |= d->words[d->pos++];
        }
    }
    return S2C_OK;
}

/*
 * Decode `count` symbols with a cdf of `size` symbols. Garbage input either
 * decodes to some symbols or returns S2C_INVALID_DATA; it never reads past
 * the words and always stops after `count` symbols.
 */
int s2c_decode(s2c_decoder *d, const uint32_t *cdf, int32_t size, int32_t *out, int64_t count)
{
    return decode_symbols(d, cdf, size, NULL, out, count);
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
 * Inverse of s2c_encode_latent; luts holds one s2c_build_lut table per channel. Refuses (S2C_INVALID_DATA) streams that leave
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
        if (decode_symbols(&d, cdfs + cdf_start[c], n[c] + 1, luts + (int64_t)c * LUT_SIZE, row,
                           per_channel))
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
