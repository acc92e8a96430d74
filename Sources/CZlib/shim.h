#ifndef STARLING_CZLIB_SHIM_H
#define STARLING_CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2/inflateInit2 are macros: wrapped so Swift can call them.
static inline int starling_zlib_deflate_init2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
static inline int starling_zlib_inflate_init2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
