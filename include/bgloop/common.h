/* bgloop/common.h - export macros, error strings and version.
 *
 * Every function in libbgloop that can fail returns a negative errno value
 * (-EINVAL, -ENOMEM, ...) and 0 or a non-negative count on success.  Nothing
 * in the library aborts on bad input: NULL pointers, unknown handles and
 * out-of-range values are reported, never dereferenced.
 */
#ifndef BGLOOP_COMMON_H
#define BGLOOP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(BGL_BUILDING_DLL)
#  define BGL_EXPORT __declspec(dllexport)
#elif defined(_WIN32)
#  define BGL_EXPORT
#elif defined(__GNUC__) || defined(__clang__)
#  define BGL_EXPORT __attribute__((visibility("default")))
#else
#  define BGL_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Human-readable text for an error code.  Accepts the negative values the
 * library returns as well as positive errno values.  Never returns NULL; the
 * string is static and valid for the life of the process. */
BGL_EXPORT const char *bgl_strerror(int err);

/* Library version as "MAJOR.MINOR.PATCH" (static string). */
BGL_EXPORT const char *bgl_version(void);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_COMMON_H */
