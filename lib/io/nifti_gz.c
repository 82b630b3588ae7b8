/*
 * The fast path for compressed voxel data: read a .nii.gz / .img.gz whole and inflate its
 * gzip members with libdeflate, which decodes a whole buffer faster than zlib's stream
 * (gzread, through znz) decodes the same bytes: 1.7-1.9x on noisy float32 voxels, where
 * nearly every symbol is a literal, more where long matches dominate (tests/bench/README.md).
 *
 * zlib's stream stays the reference and the only place an error is worded. This path fills
 * the output only when every gzip member up to the last byte asked for is whole and checks
 * out (deflate data, CRC-32, ISIZE); in every other case it returns 0, records nothing, and
 * nifti_read.c streams the file with zlib as before, so a file that is damaged, cut short or
 * unusual reads, or fails with the status and message, exactly as it did, only slower:
 *  - not gzip at all (zlib reads such a file as it is), bytes after the members that are no
 *    gzip member (zlib stops there), a member with a header CRC (FHCRC, which libdeflate
 *    skips unchecked where zlib checks it);
 *  - a member that inflates past the bytes asked for (more data than the header implies:
 *    libdeflate cannot stop inside a member; zlib stops at the last byte asked for and
 *    never reads the rest, whose trailer may even be missing or wrong);
 *  - any libdeflate error: corrupt data, a wrong CRC-32 or ISIZE, a cut member.
 * Members after the one holding the last byte asked for are never looked at, as in zlib.
 * ISIZE is never used to size anything: libdeflate checks it against what it inflated
 * (mod 2^32), and the buffer is sized by the header.
 * One difference remains: libdeflate accepts a few codes zlib refuses (literal/length
 * symbols 286 and 287, distance codes 30 and 31, a precode of one codeword), which no
 * compressor emits. A stream that uses them and still matches its CRC-32, so made that way
 * on purpose, now reads where zlib reported a corrupt stream; damage is caught by the CRC.
 *
 * Memory: the compressed file is held while it inflates, so the peak is the volume plus
 * the file (256^3 float32, 57 MB compressed: 84 -> 138 MB peak RSS). Above WHOLE_MAX
 * compressed bytes, or when that buffer cannot be had, zlib's stream (peak: the volume) is
 * used instead.
 */
#include "nifti_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* Compressed files above 1 GiB stream: holding one whole would add over a GiB to the peak. */
#define WHOLE_MAX ((uint64_t)1 << 30)

enum { GZ_ID1 = 0x1f, GZ_ID2 = 0x8b, GZ_FHCRC = 0x02, GZ_MIN_MEMBER = 18 };

/* The whole file in a buffer from dk_alloc_large (dk_free it); NULL when it cannot be read,
 * is too short for one member, or exceeds WHOLE_MAX. Read, not mapped: a file that another
 * process cuts short meanwhile then reads short (and goes to the stream) instead of killing
 * the process with SIGBUS; huge pages keep the first touch of the buffer cheap. */
static unsigned char *read_whole(const char *path, size_t *n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat sb;
    unsigned char *b = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= GZ_MIN_MEMBER &&
        (uint64_t)sb.st_size <= WHOLE_MAX) {
        *n = (size_t)sb.st_size;
        b = dk_alloc_large(*n, 1);
    }
    for (size_t at = 0; b && at < *n;) {
        ssize_t got = read(fd, b + at, *n - at);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) { /* an error, or the file shrank since fstat */
            dk_free(b);
            b = NULL;
        } else {
            at += (size_t)got;
        }
    }
    close(fd);
    return b;
}

/* Inflate the members of in[0..n) one after another into out[0..cap): 1 when exactly cap
 * bytes came out of whole, checked members (see the banner for when it declines). */
static int inflate_members(unsigned char *out, size_t cap, const unsigned char *in, size_t n) {
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    int ok = d != NULL;
    size_t pos = 0;
    while (ok && pos < cap) {
        /* zlib goes on to another member only where gzip's magic follows */
        ok = n >= GZ_MIN_MEMBER && in[0] == GZ_ID1 && in[1] == GZ_ID2 && !(in[3] & GZ_FHCRC);
        size_t used = 0, got = 0;
        if (ok)
            ok = libdeflate_gzip_decompress_ex(d, in, n, out + pos, cap - pos, &used, &got) ==
                     LIBDEFLATE_SUCCESS &&
                 used > 0 && used <= n;
        if (ok) pos += got, in += used, n -= used;
    }
    libdeflate_free_decompressor(d);
    return ok;
}

int dk_nifti_gz_inflate(void *out, size_t cap, const char *path) {
    size_t n = 0;
    unsigned char *in = read_whole(path, &n);
    int done = in && inflate_members(out, cap, in, n);
    dk_free(in);
    return done;
}
