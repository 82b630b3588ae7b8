/*
 * A structural check of a DICOM Part 10 file before GDCM parses it: every element's
 * declared length must fit in what contains it (the file, or the sequence or item of
 * defined length around it), and an explicit VR file must carry real VRs. Debian's GDCM is
 * built with assertions and abort()s on such files (and allocates whatever length an
 * element claims); dakd reports them instead, cheaply, and parses what passes in a child
 * process (dicom_isolate.c) in case GDCM still asserts. Handles explicit/implicit VR little
 * endian and explicit big endian, nested sequences and encapsulated pixel data of undefined
 * length. A deflated dataset is inflated (up to the volume size limit) and walked as GDCM
 * would walk it. Files without the Part 10 header must be a bare dataset that fills the file
 * exactly.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dicom_internal.h"

typedef struct {
    const unsigned char *b;
    size_t n, at;
    size_t end;         /* end of the innermost container of defined length (<= n) */
    int explicit_vr, big;
    int fragments;      /* inside encapsulated pixel data: items hold bytes, not elements */
    const char *why;    /* what broke, for the message ("" = ran past the end) */
} walker;

static unsigned u16(const walker *w, size_t at) {
    const unsigned char *p = w->b + at;
    return w->big ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[0] | p[1] << 8);
}

static uint32_t u32(const walker *w, size_t at) {
    const unsigned char *p = w->b + at;
    return w->big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                  : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int long_vr(const unsigned char *vr) {
    static const char *l[] = {"OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV",
                              "SV", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (!memcmp(vr, l[i], 2)) return 1;
    return 0;
}

/* One of the VRs of PS3.5 table 6.2-1. */
static int known_vr(const unsigned char *vr) {
    static const char all[] =
        "AEASATCSDADSDTFDFLISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
    for (size_t i = 0; i + 1 < sizeof all; i += 2)
        if (vr[0] == all[i] && vr[1] == all[i + 1]) return 1;
    return 0;
}

static int step(walker *w, int depth);

/* Items/elements of undefined length up to their delimiter. */
static int walk_undefined(walker *w, int depth) {
    for (;;) {
        int r = step(w, depth + 1);
        if (r) return r < 0 ? -1 : 0;
    }
}

/* The content of a sequence or item of defined length `len`: it must hold whole elements
 * (items, for a sequence) and end exactly at its own end. */
static int walk_defined(walker *w, uint32_t len, int depth) {
    size_t outer = w->end;
    w->end = w->at + len;
    int r = 0;
    while (r == 0 && w->at < w->end) r = step(w, depth + 1);
    if (r == 0 && w->at != w->end) r = -1;
    if (r) w->why = "an element runs past the end of the sequence or item holding it";
    w->end = outer;
    return r ? -1 : 0;
}

/* One element at w->at, nested content included: 0 ok, 1 a delimiter, -1 broken. */
static int step(walker *w, int depth) {
    if (w->at + 8 > w->end || depth > 64) return -1;
    unsigned g = u16(w, w->at), e = u16(w, w->at + 2);
    uint32_t len;
    int un = 0, sq = 0; /* VR UN of undefined length: its content is implicit VR (PS3.5 6.2.2) */
    if (g == 0xFFFE) { /* items and delimiters are always in the implicit form */
        len = u32(w, w->at + 4);
        w->at += 8;
        /* a delimiter's length is 0 (PS3.5 7.5); GDCM allocates and reads whatever one
         * claims (a fuzzed 6 kB file: 1.4 GB), so it must at least fit in the file */
        if ((e == 0xE00D || e == 0xE0DD) && len > w->n - w->at) {
            w->why = "an item or sequence delimiter claims more bytes than the file holds";
            return -1;
        }
        if (e == 0xE00D || e == 0xE0DD) return 1;
        sq = e == 0xE000 && !w->fragments; /* an item of a sequence: its content is elements */
    } else if (w->explicit_vr) {
        const unsigned char *vr = w->b + w->at + 4;
        /* GDCM asserts on these in the meta group; in the dataset it reads on from them
         * with other lengths (one file made it allocate 1 GB, another assert) */
        if (!known_vr(vr)) {
            w->why = g == 0x0002 ? "the file meta group holds an element without a valid VR"
                                 : "an element without a valid VR in an explicit VR dataset";
            return -1;
        }
        if (long_vr(vr)) {
            if (w->at + 12 > w->end) return -1;
            len = u32(w, w->at + 8);
            un = !memcmp(vr, "UN", 2);
            sq = !memcmp(vr, "SQ", 2);
            w->at += 12;
        } else {
            len = u16(w, w->at + 6);
            w->at += 8;
        }
    } else {
        len = u32(w, w->at + 4);
        w->at += 8;
    }
    /* PS3.5 7.1.2: only sequences, UN and encapsulated pixel data may have an undefined
     * length; GDCM asserts `VRField == VR::UN' on any other */
    if (len == 0xFFFFFFFFu && w->explicit_vr && g != 0xFFFE && !sq && !un &&
        !(g == 0x7FE0 && e == 0x0010)) {
        w->why = "an element of undefined length that is neither a sequence nor the pixel data";
        return -1;
    }
    if (len == 0xFFFFFFFFu && un) {
        w->explicit_vr = 0;
        int r = walk_undefined(w, depth);
        w->explicit_vr = 1;
        return r;
    }
    if (len == 0xFFFFFFFFu && (sq || g == 0xFFFE)) return walk_undefined(w, depth);
    if (len == 0xFFFFFFFFu) { /* encapsulated pixel data (implicit VR: any such element) */
        int outer = w->fragments;
        w->fragments = 1;
        int r = walk_undefined(w, depth);
        w->fragments = outer;
        return r;
    }
    if (len > w->end - w->at) return -1;
    if (sq) return walk_defined(w, len, depth);
    w->at += len;
    return 0;
}

/* A file without the Part 10 header is taken as DICOM only when it is a bare little-endian
 * dataset (explicit or implicit VR) starting with a group <= 0008 that fills the file
 * exactly; anything else never reaches GDCM, whose parser asserts on arbitrary bytes. */
static dk_status raw_dataset(const char *path, unsigned char *b, size_t n) {
    int ok = 0;
    for (int ex = 1; ex >= 0 && !ok && n >= 8; ex--) {
        walker w = {b, n, 0, n, ex, 0, 0, ""};
        if (u16(&w, 0) > 0x0008 || u16(&w, 0) % 2) break;
        int bad = 0;
        while (!bad && w.at < w.n) bad = step(&w, 0) != 0;
        ok = !bad && w.at == w.n;
    }
    free(b);
    return ok ? DK_OK : dk_fail(DK_ERR_FORMAT, "%s: not a DICOM file (no \"DICM\" at byte 128 "
                                "and not a bare DICOM dataset)", path);
}

/* The whole file in memory (malloc'd), or NULL with the failure recorded. */
static unsigned char *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        dk_fail(DK_ERR_IO, "%s: cannot open", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    unsigned char *b = *size > 0 ? malloc((size_t)*size) : NULL;
    int ok = b && fseek(f, 0, SEEK_SET) == 0 && fread(b, 1, (size_t)*size, f) == (size_t)*size;
    fclose(f);
    if (ok) return b;
    free(b);
    dk_fail(DK_ERR_IO, "%s: cannot read", path);
    return NULL;
}

/* The deflated dataset b[0..n) (transfer syntax 1.2.840.10008.1.2.1.99: raw deflate)
 * inflated into a malloc'd buffer of *len bytes, for the walk: GDCM walks what zlib gives
 * it. NULL when the stream is corrupt, cut short, or inflates beyond the volume size limit. */
static unsigned char *inflate_dataset(const unsigned char *b, size_t n, size_t *len) {
    uint64_t limit = DK_VOLUME_LIMIT_DEFAULT;
    if (dk_volume_limit(&limit) != DK_OK) dk_clear_error(); /* the readers report that */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (n > UINT_MAX || inflateInit2(&z, -MAX_WBITS) != Z_OK) return NULL;
    z.next_in = (Bytef *)b;
    z.avail_in = (uInt)n;
    size_t cap = 0;
    unsigned char *out = NULL;
    int r = Z_OK;
    *len = 0;
    while (r == Z_OK) {
        if (*len == cap) { /* grow, never past the limit: a small file may inflate to GBs */
            size_t want = cap * 2 + 65536 < limit ? cap * 2 + 65536 : (size_t)limit;
            unsigned char *grown = cap < want ? realloc(out, want) : NULL;
            if (!grown) break;
            out = grown, cap = want;
        }
        size_t room = cap - *len < UINT_MAX ? cap - *len : UINT_MAX;
        z.next_out = out + *len;
        z.avail_out = (uInt)room;
        r = inflate(&z, Z_NO_FLUSH);
        *len += room - z.avail_out;
    }
    inflateEnd(&z);
    if (r == Z_STREAM_END) return out;
    free(out);
    return NULL;
}

/* Walk the dataset of a deflated file, from byte `at` of b: 0 ok, else -1 with the reason. */
static int walk_deflated(const unsigned char *b, size_t n, size_t *at, const char **why) {
    size_t len = 0;
    unsigned char *d = inflate_dataset(b + *at, n - *at, &len);
    if (!d) {
        *why = "its deflated dataset does not inflate (corrupt, cut short, or beyond the "
               "volume size limit)";
        return -1;
    }
    walker w = {d, len, 0, len, 1, 0, 0, "an element of the inflated dataset runs past its end"};
    int bad = 0;
    while (!bad && w.at < w.n) bad = step(&w, 0) != 0;
    *why = w.why;
    *at += w.at; /* a place in the inflated dataset, counted from where it starts */
    free(d);
    return bad ? -1 : 0;
}

dk_status dk_dcm_check_structure(const char *path, int *damaged) {
    if (damaged) *damaged = 0;
    long size = 0;
    unsigned char *b = slurp(path, &size);
    if (!b) return DK_ERR_IO;
    if (size < 132 || memcmp(b + 128, "DICM", 4)) return raw_dataset(path, b, (size_t)size);
    walker w = {b, (size_t)size, 132, (size_t)size, 1, 0, 0, ""};
    int bad = 0, explicit_vr = 1, big = 0, deflated = 0;
    /* the file meta group (0002): explicit VR little endian; it names the transfer syntax */
    while (!bad && w.at + 8 <= w.n && u16(&w, w.at) == 0x0002) {
        size_t start = w.at;
        bad = step(&w, 0) != 0;
        if (!bad && u16(&w, start + 2) == 0x0002 && u16(&w, start + 6) >= 20 &&
            !memcmp(b + start + 8, "1.2.840.10008.1.3.10", 20)) {
            free(b); /* GDCM asserts on some DICOMDIRs; they hold no image anyway */
            return dk_fail(DK_ERR_FORMAT, "%s: a DICOMDIR (media index), not an image", path);
        }
        if (bad || u16(&w, start + 2) != 0x0010) continue;
        char ts[65];
        snprintf(ts, sizeof ts, "%.*s", (int)u16(&w, start + 6), (const char *)b + start + 8);
        explicit_vr = strcmp(ts, "1.2.840.10008.1.2") != 0 && strcmp(ts, "1.2.840.10008.1.2 ");
        big = !strncmp(ts, "1.2.840.10008.1.2.2", 19) && (ts[19] == 0 || ts[19] == ' ');
        deflated = !strncmp(ts, "1.2.840.10008.1.2.1.99", 22);
    }
    w.explicit_vr = explicit_vr, w.big = big;
    if (!bad && deflated) bad = walk_deflated(b, w.n, &w.at, &w.why) != 0;
    while (!bad && !deflated && w.at < w.n) bad = step(&w, 0) != 0;
    size_t at = w.at;
    free(b);
    if (!bad) return DK_OK;
    if (damaged) *damaged = 1;
    if (w.why[0])
        return dk_fail(DK_ERR_FORMAT, "%s: corrupt: %s (near byte %zu)", path, w.why, at);
    return dk_fail(DK_ERR_FORMAT, "%s: file cut short or corrupt: the element at byte %zu "
                   "runs past the end of the file (%ld bytes)", path, at, size);
}
