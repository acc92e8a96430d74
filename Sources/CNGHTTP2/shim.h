#ifndef STARLING_CNGHTTP2_SHIM_H
#define STARLING_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>
#endif
