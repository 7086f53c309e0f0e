/* internal.h - conventions for symbols shared between the files of lib/.
 *
 * A function one file of the library defines and another calls is named
 * bgli_<object>_<verb> and declared BGL_INTERNAL, so it never leaks into
 * the shared library's ABI (the public API is bgl_<object>_<verb> and
 * BGL_EXPORT).  Not installed.
 */
#ifndef BGL_INTERNAL_H
#define BGL_INTERNAL_H

#define BGL_INTERNAL __attribute__((visibility("hidden")))

#endif /* BGL_INTERNAL_H */
