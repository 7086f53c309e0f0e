/* version.c - the library version, from the Meson project version. */
#include "bgloop/common.h"

#ifndef BGL_VERSION_STRING
#  error "BGL_VERSION_STRING must be defined by the build"
#endif

const char *bgl_version(void)
{
    return BGL_VERSION_STRING;
}
